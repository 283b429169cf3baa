"""Provider adapters: the only code that knows a provider's wire format."""

from django_txmail.providers.base import (
    Adapter,
    ProviderRequest,
    ProviderResponse,
    Route,
    SendResult,
    load_adapter,
)

__all__ = ["Adapter", "ProviderRequest", "ProviderResponse", "Route", "SendResult", "load_adapter"]
