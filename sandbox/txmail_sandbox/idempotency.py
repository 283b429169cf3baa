"""The Idempotency-Key cache, provider-neutral.

Nylas (PROVIDERS.md, "Idempotency") caches the response to a request sent
with an ``Idempotency-Key`` for an hour, success or error, and answers a
repeat of the same key and payload with that response instead of sending
again. That is what lets delivery code retry after a timeout without sending
twice, so the sandbox reproduces it exactly, including its two conflicts:
the same key with a different payload, and the same key while the first
request is still in flight.

*In flight* means being processed: from the lookup until the response is
stored. Once stored, the key answers with it at once, even if the first
request's answer has not been written yet (a slow or lost response): the
provider has finished, and a retry is owed the result, not a conflict.

A key lives in a *scope* chosen by the emulator (Nylas: the application for
the domain route, the grant for the grant route). The payload is compared
by a *fingerprint* the emulator computes, so that semantically equal
requests match even when their bytes differ (multipart boundaries).

The cache stores whatever response object the emulator gives it; it never
builds HTTP answers itself.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any


class KeyState(enum.Enum):
    NEW = "new"  # first use (or expired): process it, then store the response
    REPLAY = "replay"  # same key and payload, answered before: send the cached response
    MISMATCH = "mismatch"  # same key, different payload
    IN_FLIGHT = "in_flight"  # same key, first request's response not stored yet (any payload)


@dataclass
class _Entry:
    fingerprint: str
    in_flight: bool = True
    response: Any = None
    expires_at: float | None = None


class Ticket:
    """The right to process a NEW request; always ``release()`` it.

    ``store(response)`` caches the answer and ends the in-flight state, so
    what happens to the answer afterwards (a delay, a dropped connection)
    cannot make a retry conflict. ``release()`` after ``store`` does nothing;
    a ticket released without a stored response forgets the key, so a retry
    is processed anew.
    """

    def __init__(self, cache: IdempotencyCache | None, slot: Hashable, entry: _Entry) -> None:
        self._cache = cache
        self._slot = slot
        self._entry = entry

    def store(self, response: Any) -> None:
        if self._cache is not None:
            self._cache._store(self._slot, self._entry, response)

    def release(self) -> None:
        if self._cache is not None:
            self._cache._release(self._slot, self._entry)


@dataclass(frozen=True)
class Lookup:
    state: KeyState
    ticket: Ticket | None = None  # for NEW
    response: Any = None  # for REPLAY


class IdempotencyCache:
    """Thread-safe cache of responses by (scope, key), expiring after ``ttl``
    seconds from when the response was stored."""

    def __init__(self, ttl: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError("idempotency ttl must be > 0 seconds")
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()

    def begin(self, scope: Hashable, key: str | None, fingerprint: str) -> Lookup:
        """Look the key up; a request without a key is always NEW."""
        if key is None:
            return Lookup(KeyState.NEW, ticket=Ticket(None, None, _Entry(fingerprint)))
        slot = (scope, key)
        with self._lock:
            now = self._clock()
            self._purge(now)
            entry = self._entries.get(slot)
            if entry is not None and entry.expires_at is not None and entry.expires_at <= now:
                del self._entries[slot]
                entry = None
            if entry is None:
                entry = _Entry(fingerprint)
                self._entries[slot] = entry
                return Lookup(KeyState.NEW, ticket=Ticket(self, slot, entry))
            if entry.in_flight:
                return Lookup(KeyState.IN_FLIGHT)
            if entry.fingerprint != fingerprint:
                return Lookup(KeyState.MISMATCH)
            return Lookup(KeyState.REPLAY, response=entry.response)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _store(self, slot: Hashable, entry: _Entry, response: Any) -> None:
        with self._lock:
            entry.response = response
            entry.in_flight = False
            entry.expires_at = self._clock() + self._ttl
            if self._entries.get(slot) is entry:
                self._entries.move_to_end(slot)

    def _release(self, slot: Hashable, entry: _Entry) -> None:
        with self._lock:
            entry.in_flight = False
            if entry.expires_at is None and self._entries.get(slot) is entry:
                del self._entries[slot]

    def _purge(self, now: float) -> None:
        """Drop expired entries from the front (stored entries are kept in
        the order they were stored, so the oldest come first)."""
        while self._entries:
            slot, entry = next(iter(self._entries.items()))
            if entry.expires_at is None or entry.expires_at > now:
                return
            del self._entries[slot]
