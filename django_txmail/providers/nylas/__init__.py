"""nylas: send adapter, webhook parser."""

from django_txmail.providers.nylas.send import NylasAdapter

__all__ = ["NylasAdapter"]
