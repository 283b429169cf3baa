"""What the sandbox remembers, shared by every emulated provider.

Tests and the demo inspect the sandbox through these values: the messages it
accepted (with their attachments byte for byte) and a log of every request
it saw. Both are appended from many handler threads, so reads return
snapshots taken under a lock.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .faults import FaultQueue
from .idempotency import IdempotencyCache

#: Request headers that carry credentials; never kept in the request log.
CREDENTIAL_HEADERS = frozenset({"authorization", "api-token", "x-api-key"})


@dataclass(frozen=True)
class ReceivedAttachment:
    filename: str
    content_type: str
    content_id: str | None
    content_disposition: str
    content: bytes = field(repr=False)
    size: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", len(self.content))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> dict[str, Any]:
        """Everything but the bytes, for the JSON inspection endpoint."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "content_id": self.content_id,
            "content_disposition": self.content_disposition,
            "size": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class ReceivedMessage:
    """A message the sandbox accepted, as the provider would have seen it.

    ``payload`` is the JSON object as received; for a multipart request it
    is the parsed ``message`` field, and the files are in ``attachments``.
    """

    id: str
    provider: str
    route: str
    payload: dict[str, Any]
    attachments: list[ReceivedAttachment]
    transport: str
    received_at: datetime
    idempotency_key: str | None = None
    domain: str | None = None
    grant_id: str | None = None
    schedule_id: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log. ``duration`` is in seconds, from the
    request line until the response is ready to be written (so it includes
    the body upload, latency and injected delays)."""

    method: str
    path: str
    status: int
    headers: dict[str, str]
    idempotency_key: str | None
    transport: str | None
    duration: float


class SandboxState:
    """Messages, request log, idempotency cache and pending faults.

    ``latency`` (seconds) is added to every send an emulator processes.
    ``on_request`` is called with each :class:`RequestRecord` as it is
    logged, from the handler thread.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        idempotency_ttl: float = 3600.0,
        on_request: Callable[[RequestRecord], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        self.latency = latency
        self.faults = FaultQueue()
        self.idempotency = IdempotencyCache(ttl=idempotency_ttl, clock=clock)
        self._on_request = on_request
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._requests: list[RequestRecord] = []

    def add_message(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def log_request(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests.append(record)
        if self._on_request is not None:
            self._on_request(record)

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    def reset(self) -> None:
        with self._lock:
            self._messages.clear()
            self._requests.clear()
        self.idempotency.clear()
        self.faults.clear()


def loggable_headers(headers: Any) -> dict[str, str]:
    """Request headers without credentials, for the request log."""
    return {
        name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS
    }
