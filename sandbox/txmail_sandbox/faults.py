"""Scripted failures applied to the next matching send requests.

A test calls ``server.inject(Fault(status=503), times=2)`` and the next two
send requests that match the fault's filters get it. Delivery code can then
be tested against the failures that matter for "no loss, no duplicates":
an error before the provider accepted the message, and a response that is
slow to arrive after it did. (A seeded random share of failures over all
sends is a fault plan instead, ``fault_plan.py``.)

Every kind of fault acts at one point of a send, its *stage*. An emulator
asks the queue for a fault at each stage it reaches (``take``); a request
that never reaches a stage does not use up that stage's faults. A new kind
of fault names its stage and the emulators call ``take`` where it happens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Before the request is authenticated, read or validated: nothing is
#: stored, nothing is cached under its Idempotency-Key.
BEFORE_ACCEPT = "before_accept"
#: After the message is stored and its response cached, before the
#: response is written.
AFTER_ACCEPT = "after_accept"


@dataclass(frozen=True)
class Fault:
    """One failure. Set exactly one effect:

    ``status``
        Answer with this HTTP status and the provider's error envelope
        (``error_type`` and ``message`` override the defaults for the
        status; ``retry_after`` adds a ``Retry-After`` header, in seconds).
        Emulates a failure in front of the API, so it is not cached under
        the request's Idempotency-Key: a retry with the same key goes on.
    ``delay_after_accept``
        Accept and store the message and cache its response, then wait this
        many seconds before answering: the client times out although the
        provider has the message. The key stops counting as in flight
        once the response is cached, before the wait: a retry with the
        same key during it gets the cached response replayed, not a 409.

    ``provider`` ("nylas", "mailtrap", "mailerlogic") and ``route``
    restrict which requests the fault applies to; None matches any. Routes
    are "domain" and "grant" for Nylas, "domain" (``/api/send``) and
    "batch" (``/api/batch``) for Mailtrap, "domain" for MailerLogic.
    """

    status: int | None = None
    delay_after_accept: float | None = None
    error_type: str | None = None
    message: str | None = None
    retry_after: int | None = None
    provider: str | None = None
    route: str | None = None

    def __post_init__(self) -> None:
        effects = [self.status, self.delay_after_accept]
        if sum(effect is not None for effect in effects) != 1:
            raise ValueError("A Fault needs exactly one of status= or delay_after_accept=.")
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"Fault status must be a 4xx or 5xx code, not {self.status}.")
        if self.delay_after_accept is not None and self.delay_after_accept < 0:
            raise ValueError("delay_after_accept must be >= 0 seconds.")
        answer_details = (self.error_type, self.message, self.retry_after)
        if self.status is None and any(detail is not None for detail in answer_details):
            raise ValueError("error_type, message and retry_after only apply to status= faults.")

    @property
    def stage(self) -> str:
        return BEFORE_ACCEPT if self.status is not None else AFTER_ACCEPT

    def matches(self, provider: str, route: str, stage: str) -> bool:
        return (
            self.stage == stage
            and self.provider in (None, provider)
            and self.route in (None, route)
        )


class FaultQueue:
    """Pending faults in injection order, each with a remaining count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[list] = []  # [fault, remaining uses]

    def add(self, fault: Fault, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be >= 1")
        with self._lock:
            self._pending.append([fault, times])

    def take(self, provider: str, route: str, stage: str) -> Fault | None:
        """Use up one application of the first matching fault, if any."""
        with self._lock:
            for entry in self._pending:
                fault = entry[0]
                if fault.matches(provider, route, stage):
                    entry[1] -= 1
                    if entry[1] == 0:
                        self._pending.remove(entry)
                    return fault
        return None

    def pending(self) -> list[tuple[Fault, int]]:
        with self._lock:
            return [(fault, remaining) for fault, remaining in self._pending]

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
