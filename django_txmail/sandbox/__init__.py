"""A local emulator of the providers' send APIs, for development, tests and
benchmarks with no provider account.

Run it with ``manage.py txmail_sandbox`` (or ``python -m
django_txmail.sandbox`` without Django), or in-process::

    from django_txmail.sandbox import Fault, SandboxServer

    with SandboxServer(nylas_api_keys={"sandbox-nylas-key"}) as sandbox:
        ...  # point the provider's API_URI at sandbox.url and send
        sandbox.messages  # what arrived, attachments byte for byte

It imports nothing from Django, so it also runs where Django is not set up.
"""

from .faults import Fault
from .server import DEFAULT_NYLAS_API_KEY, SandboxServer
from .state import ReceivedAttachment, ReceivedMessage, RequestRecord

__all__ = [
    "DEFAULT_NYLAS_API_KEY",
    "Fault",
    "ReceivedAttachment",
    "ReceivedMessage",
    "RequestRecord",
    "SandboxServer",
]
