"""The Django email backend: ``EMAIL_BACKEND = "django_txmail.backends.EmailBackend"``.

Each message is composed into a provider-neutral form and validated, routed
by its From address, checked against what the provider can carry, recorded
in the outbox, and then delivered. Problems with the message itself raise
before anything is recorded or sent.

On Django 6.1+ the backend is configured in ``MAILERS`` with OPTIONS:

* ``provider`` — send only through this account of ``TXMAIL["PROVIDERS"]``;
* ``timeout`` — seconds for one provider request (default ``TXMAIL["TIMEOUT"]``).

Unknown OPTIONS raise Django's ``InvalidMailer``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import requests
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from requests.adapters import HTTPAdapter

from .compose import compose
from .conf import get_settings
from .delivery import deliver
from .exceptions import TxMailError
from .message import TxMailResult
from .outbox import record
from .providers import Adapter, load_adapter
from .routing import resolve

#: Connections kept open per provider host by one backend instance.
POOL_SIZE = 16


class EmailBackend(BaseEmailBackend):
    """Send Django email through providers' HTTP APIs, keeping every message in an outbox."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        provider: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        self.provider = provider or ""
        if self.provider:
            get_settings().account(self.provider)  # unknown account: ImproperlyConfigured
        self.timeout = timeout
        self.session: requests.Session | None = None
        self._adapters: dict[str, Adapter] = {}
        self._lock = threading.RLock()

    def open(self) -> bool:
        """Open the pooled HTTP session; return True if this call opened it."""
        with self._lock:
            if self.session is not None:
                return False
            session = requests.Session()
            pool = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
            session.mount("https://", pool)
            session.mount("http://", pool)
            self.session = session
            return True

    def close(self) -> None:
        with self._lock:
            if self.session is not None:
                self.session.close()
                self.session = None

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message; return how many were accepted for delivery.

        A message that met a transient provider error is still counted: it
        waits in the outbox for its retry and must not be sent again by the
        caller. Its ``msg.txmail.status`` says "queued".
        """
        if not email_messages:
            return 0
        with self._lock:
            opened = self.open()
            try:
                return sum(self._send_one(message) for message in email_messages)
            finally:
                if opened:
                    self.close()

    def _adapter(self, name: str) -> Adapter:
        if name not in self._adapters:
            self._adapters[name] = load_adapter(get_settings().account(name))
        return self._adapters[name]

    def _send_one(self, django_message: EmailMessage) -> int:
        try:
            email = compose(django_message)
            resolved = resolve(email, provider=self.provider)
            adapter = self._adapter(resolved.account.name)
            adapter.check(email, resolved.route)
            message, created = record(email, resolved)
            if created:
                deliver(message, adapter, self._session(), timeout=self.timeout)
        except TxMailError:
            if not self.fail_silently:
                raise
            return 0
        django_message.txmail = TxMailResult(  # type: ignore[attr-defined]
            message_id=message.pk,
            status=message.status,
            provider=message.provider,
            provider_message_ids=[message.provider_message_id]
            if message.provider_message_id
            else [],
            recipients={
                a["email"]: message.status for a in (*message.to, *message.cc, *message.bcc)
            },
        )
        return 1

    def _session(self) -> requests.Session:
        assert self.session is not None
        return self.session
