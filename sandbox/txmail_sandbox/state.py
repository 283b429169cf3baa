"""What the sandbox remembers, shared by every emulated provider.

Tests and the demo inspect the sandbox through these values: the messages it
accepted (with their attachments byte for byte) and a log of every request
it saw. Both are appended from many handler threads, so reads return
snapshots taken under a lock. Messages are immutable values; the one change
a provider allows after acceptance (cancelling a scheduled send) replaces
the stored value, compare-and-swap, so two concurrent cancels cannot both
succeed.

Every wait an emulator makes (latency, injected delays, a held answer) goes
through :meth:`SandboxState.pause`, which ``stop()`` interrupts: a server
holding an answer for 30 seconds still stops at once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .account_limits import CREDENTIAL_HEADERS, AccountLimits
from .fault_plan import FaultPlan, PlannedFaults
from .faults import FaultQueue
from .idempotency import IdempotencyCache
from .provider_templates import TemplateStore

#: Request headers that carry credentials; never kept in the request log.


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
    ``cancelled_at`` is set when a scheduled send (``schedule_id``) was
    cancelled through the provider's schedules API. ``message_ids`` are all
    the ids the provider answered with (Mailtrap: one per recipient) and
    ``id`` is the first; ``inbox_id`` is the Mailtrap test inbox it went to,
    and ``batch_index`` its position in a Mailtrap batch request.
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
    cancelled_at: datetime | None = None
    message_ids: tuple[str, ...] = ()
    inbox_id: str | None = None
    batch_index: int | None = None
    #: What a provider-hosted template produced: subject and html (and text).
    rendered: dict[str, str] | None = None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True)
class RequestRecord:
    """One line of the request log. ``duration`` is in seconds, from the
    request line until the response is ready to be written (so it includes
    the body upload, latency and injected delays). ``status`` is None when
    no answer was written (a reset or a held and dropped answer); ``fault``
    names the fault the request got, if any (a :data:`FAULT_KINDS` name, or
    ``injected <status>`` / ``injected delay`` for ``inject()`` faults)."""

    method: str
    path: str
    status: int | None
    headers: dict[str, str]
    idempotency_key: str | None
    transport: str | None
    duration: float
    fault: str | None = None
    #: When the request line arrived (``time.monotonic()``): rate-limit checks.
    received_at: float = 0.0


class SandboxState:
    """Messages, request log, idempotency cache, pending and planned faults.

    ``latency`` (seconds) is added to every send an emulator processes.
    ``on_request`` is called with each :class:`RequestRecord` as it is
    logged, from the handler thread. ``clock`` (monotonic) times the
    idempotency cache; ``wall_clock`` (Unix seconds) is the provider's idea
    of now, for ``send_at`` checks and schedules.
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        idempotency_ttl: float = 3600.0,
        faults: FaultPlan | None = None,
        on_request: Callable[[RequestRecord], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0 seconds")
        self.latency = latency
        self.wall_clock = wall_clock
        self.faults = FaultQueue()
        self.planned_faults = PlannedFaults(faults)
        self.idempotency = IdempotencyCache(ttl=idempotency_ttl, clock=clock)
        self.templates = TemplateStore()
        self.limits = AccountLimits()
        self.stopping = threading.Event()
        self._on_request = on_request
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._positions: dict[str, int] = {}
        self._requests: list[RequestRecord] = []
        self._message_listeners: list[Callable[[ReceivedMessage], None]] = []

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if the server is stopping."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def add_message(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._positions[message.id] = len(self._messages)
            self._messages.append(message)
            listeners = list(self._message_listeners)
        for listener in listeners:
            listener(message)

    def on_message(self, listener: Callable[[ReceivedMessage], None]) -> None:
        """Call ``listener`` with every message accepted from now on, from the
        handler thread, before the send is answered (webhook emission)."""
        with self._lock:
            self._message_listeners.append(listener)

    def replace_message(self, current: ReceivedMessage, new: ReceivedMessage) -> bool:
        """Store ``new`` in place of ``current`` (same id), unless the stored
        message is no longer ``current``; says whether it was replaced."""
        with self._lock:
            position = self._positions.get(current.id)
            if position is None or self._messages[position] is not current:
                return False
            self._messages[position] = new
            return True

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

    def stats(self) -> dict[str, Any]:
        """Counts for tools in another process (``GET /_sandbox/stats``)."""
        with self._lock:
            counts = {"messages": len(self._messages), "requests": len(self._requests)}
        return {**counts, "faults": self.planned_faults.stats()}

    def reset(self) -> None:
        """Forget messages, requests, keys and one-shot faults; the fault
        plan stays but starts again from scratch."""
        with self._lock:
            self._messages.clear()
            self._positions.clear()
            self._requests.clear()
        self.idempotency.clear()
        self.templates.clear()
        self.limits.clear()
        self.faults.clear()
        self.planned_faults.restart()


def loggable_headers(headers: Any) -> dict[str, str]:
    """Request headers without credentials, for the request log."""
    return {
        name: value for name, value in headers.items() if name.lower() not in CREDENTIAL_HEADERS
    }
