"""A local emulator of the providers' send APIs, for development, tests and
benchmarks with no provider account.

It is its own distribution, ``django-txmail-sandbox``, so production
installs of django-txmail do without it. Run it with ``manage.py
txmail_sandbox`` (or ``python -m txmail_sandbox`` without Django), or
in-process::

    from txmail_sandbox import Fault, FaultPlan, SandboxServer

    with SandboxServer(nylas_api_keys={"sandbox-nylas-key"}) as sandbox:
        ...  # point the provider's API_URI at sandbox.url and send
        sandbox.messages  # what arrived, attachments byte for byte

    # 30 % of sends fail, the same way on every run:
    SandboxServer(faults=FaultPlan(seed=42, rate=0.3))

It imports nothing from Django or django-txmail, so it also runs where
Django is not set up.
"""

from .fault_plan import FAULT_KINDS, FaultPlan
from .faults import Fault
from .server import (
    DEFAULT_MAILERLOGIC_API_KEY,
    DEFAULT_MAILTRAP_API_TOKEN,
    DEFAULT_NYLAS_API_KEY,
    SandboxServer,
)
from .state import ReceivedAttachment, ReceivedMessage, RequestRecord
from .webhook_values import WebhookDelivery, WebhookOptions

__all__ = [
    "DEFAULT_MAILERLOGIC_API_KEY",
    "DEFAULT_MAILTRAP_API_TOKEN",
    "DEFAULT_NYLAS_API_KEY",
    "FAULT_KINDS",
    "Fault",
    "FaultPlan",
    "ReceivedAttachment",
    "ReceivedMessage",
    "RequestRecord",
    "SandboxServer",
    "WebhookDelivery",
    "WebhookOptions",
]
