"""The values the sandbox's webhook emission works with.

A provider emulator that wants its accepted messages reported supplies a
:class:`WebhookFormat`: its notifications, their bodies and its signature
header. The emitter (``webhook_emitter.py``) queues and posts them to
webhook targets (:class:`WebhookTarget`) under :class:`WebhookOptions`, and
logs each post as a :class:`WebhookDelivery`. Kept apart so formats and the registration
API can use them without the posting machinery.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from .state import ReceivedMessage


@dataclass(frozen=True)
class WebhookOptions:
    """How notifications are delivered; see the module doc. Times in seconds."""

    delay: float = 0.1
    duplicates: float = 0.0
    reorder: bool = False
    reorder_window: float = 0.5
    seed: int = 0
    max_attempts: int = 3
    #: As providers do, over minutes: an app that is busy or restarting for a
    #: minute still gets its events (attempts at 0, 60 and 180 s after the first).
    retry_delay: float = 60.0
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.duplicates <= 1.0:
            raise ValueError(f"Webhook duplicates must be between 0 and 1, not {self.duplicates}.")
        for name in ("delay", "reorder_window", "retry_delay", "timeout"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ValueError(f"Webhook {name} must be a finite number >= 0 seconds.")
        if self.max_attempts < 1:
            raise ValueError("Webhook max_attempts must be at least 1.")

    def retry_after(self, attempt: int) -> float | None:
        """Seconds from failed ``attempt`` (1, 2, ...) to the next; None after the last."""
        if attempt >= self.max_attempts:
            return None
        return self.retry_delay * 2 ** (attempt - 1)

    def describe(self) -> str:
        """One line for the sandbox's startup message."""
        retries = [self.retry_after(n) for n in range(1, self.max_attempts)]
        parts = [f"delay {self.delay:g} s"]
        if retries:
            parts.append(f"retried after {', '.join(f'{r:g}' for r in retries)} s")
        if self.duplicates:
            parts.append(f"{self.duplicates * 100:g}% duplicated")
        if self.reorder:
            parts.append(f"reordered within {self.reorder_window:g} s")
        if self.duplicates or self.reorder:
            parts.append(f"seed {self.seed}")
        return ", ".join(parts)


@dataclass(frozen=True)
class WebhookTarget:
    """Where one provider's notifications go, and the secret they are signed with.

    ``triggers`` limits the notification types sent (None: all of them);
    ``record`` is the provider's own description of a webhook registered
    through its API (``nylas_webhooks_api.py``), None for a configured one.
    """

    url: str
    secret: str = field(repr=False)
    triggers: frozenset[str] | None = None
    record: Mapping[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"A webhook URL must be an absolute http(s) URL, not {self.url!r}.")
        if not self.secret:
            raise ValueError(f"The webhook for {self.url} needs a secret to sign with.")

    def wants(self, notification_type: str) -> bool:
        return self.triggers is None or notification_type in self.triggers


@dataclass(frozen=True)
class Notification:
    """One provider notification: ``id`` is the same on every attempt."""

    id: str
    type: str
    payload: dict[str, Any]


def payload_identity(payload: Mapping[str, Any], keys: Iterable[str], **more: Any) -> str:
    """A hash of what makes two sends the same message (``WebhookFormat.identity``):
    the payload's ``keys`` and ``more``, never the ids a client generates."""
    stable = {**{key: payload.get(key) for key in keys}, **more}
    encoded = json.dumps(stable, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()


class WebhookFormat(Protocol):
    """What a provider emulator supplies to have its notifications emitted."""

    #: The request header carrying the signature.
    signature_header: str

    def identity(self, message: ReceivedMessage) -> str:
        """What makes two sends the same message, for seeded decisions."""
        ...

    def notifications(self, message: ReceivedMessage, now: float) -> list[Notification]:
        """What the provider reports about ``message``, in the order it happened."""
        ...

    def body(self, notification: Notification, attempt: int) -> bytes:
        """The raw body of one attempt (1, 2, ...) at posting ``notification``."""
        ...


@dataclass(frozen=True)
class WebhookDelivery:
    """One post of a notification and the app's answer. ``status`` is None
    when no answer came (``error`` says why); ``duplicate`` marks the extra
    copy the ``duplicates`` option asked for."""

    provider: str
    notification_id: str
    type: str
    url: str
    attempt: int
    duplicate: bool
    body: bytes = field(repr=False)
    status: int | None
    response: str
    error: str | None
    posted_at: datetime
    duration: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def payload(self) -> Any:
        return json.loads(self.body)

    def describe(self) -> dict[str, Any]:
        """As ``GET /_sandbox/webhooks`` shows it."""
        return {
            "provider": self.provider,
            "id": self.notification_id,
            "type": self.type,
            "url": self.url,
            "attempt": self.attempt,
            "duplicate": self.duplicate,
            "status": self.status,
            "response": self.response,
            "error": self.error,
            "posted_at": self.posted_at.isoformat(),
            "duration": self.duration,
            "payload": self.payload,
        }
