"""Per-account rate limits and outages, as the real APIs have them.

An account is known by its credential (a Nylas API key, a Mailtrap token, a
MailerLogic key). With a rate limit set, a request over it is answered 429
in the provider's error envelope before anything is processed, with
``Retry-After`` (whole seconds until the oldest request in the window leaves
it) where the provider sends one: Nylas and MailerLogic do, Mailtrap
documents none. An outage answers 503 for a while: the provider is up but
refuses work. (A provider that refuses *connections* is a listener that is
closed: ``SandboxServer.listen()``.)

The window is sliding: at most ``count`` requests are accepted in any
``seconds``, counted from when each request arrived.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: Request headers that carry an account's credential (never logged).
CREDENTIAL_HEADERS = frozenset({"authorization", "api-token", "x-api-key"})


def credential_of(headers: Any) -> str:
    """The credential a request carries (empty: none)."""
    for name in CREDENTIAL_HEADERS:
        value = headers.get(name)
        if value:
            return value.removeprefix("Bearer ").strip()
    return ""


class AccountLimits:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[int, float]] = {}
        self._seen: dict[str, deque[float]] = {}
        self._down_until: dict[str, float] = {}

    def set_rate_limit(self, credential: str, count: int | None, seconds: float = 1.0) -> None:
        """Accept at most ``count`` requests with ``credential`` in any ``seconds`` (None:
        no limit)."""
        with self._lock:
            self._seen.pop(credential, None)
            if count is None:
                self._limits.pop(credential, None)
            else:
                if count < 1 or seconds <= 0:
                    raise ValueError("a rate limit is a count >= 1 in seconds > 0")
                self._limits[credential] = (count, seconds)

    def set_outage(self, credential: str, seconds: float) -> None:
        """Answer every request with ``credential`` 503 for ``seconds`` from now."""
        with self._lock:
            self._down_until[credential] = self._clock() + seconds

    def clear(self) -> None:
        with self._lock:
            self._limits.clear()
            self._seen.clear()
            self._down_until.clear()

    def refusal(self, headers: Any) -> tuple[int, float | None] | None:
        """``(status, retry_after)`` when this request must be refused, else None (and it
        counts against the account's limit)."""
        credential = credential_of(headers)
        with self._lock:
            now = self._clock()
            if self._down_until.get(credential, -math.inf) > now:
                return 503, None
            limit = self._limits.get(credential)
            if limit is None:
                return None
            count, seconds = limit
            seen = self._seen.setdefault(credential, deque())
            while seen and seen[0] <= now - seconds:
                seen.popleft()
            if len(seen) >= count:
                return 429, max(1, math.ceil(seen[0] + seconds - now))
            seen.append(now)
            return None
