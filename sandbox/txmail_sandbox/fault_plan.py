"""Seeded random faults: a share of all sends fail, reproducibly.

``inject()`` scripts the next few requests, which suits a test about one
failure. A delivery system under load needs the opposite: a steady rate of
every kind of failure over thousands of sends, and the same failures again
when the run is repeated, so a lost or doubled message can be chased down::

    SandboxServer(faults=FaultPlan(seed=42, rate=0.3))
    SandboxServer(faults=FaultPlan(seed=7, rate=0.1, kinds={"503": 3, "reset": 1}))

Reproducible means independent of thread scheduling. Concurrent workers
reach the sandbox in a different order on every run, so a shared random
generator consumed in arrival order would hand each request a different
fault each time. Instead each decision is a hash of the seed, the request's
identity and how many times that identity was seen before: the third
attempt of a message with a given Idempotency-Key gets the same fault on
every run, whatever else is happening. The identity is the key within its
scope (per grant, or the application); a request without a key is known by
its payload, so resending the same body counts as the same request again.

The kinds, each a name the command line accepts:

``500``, ``502``, ``503``
    The provider's error envelope with that status.
``429``, ``429-no-retry-after``
    ``rate_limit_error``, with ``Retry-After: <retry_after>`` or without.
``reset``
    The connection is reset (TCP RST) with no answer at all.
``timeout-after-accept``
    The request is processed (a new message stored, its response cached
    under its Idempotency-Key), then the answer is held ``hang`` seconds and
    the connection closed without it: the client times out although the
    provider has the message.
``slow``
    The request is processed normally and answered ``slow`` seconds late.

The ``5xx``, ``429`` and ``reset`` kinds are refusals made before the
request is looked up under its Idempotency-Key: nothing is stored or
cached, and a retry is processed anew. ``timeout-after-accept`` and
``slow`` act only on a request that accepted a new message (a replay or an
error drawing one is answered normally, and the draw is not counted); by
then the key no longer counts as in flight, so a retry gets the cached
answer, as from the provider that has finished (see ``nylas.py``).

Outages and refused connections come from the same seed, counted in
requests rather than drawn per message, so the schedule is the same on a
fast machine and a slow one::

    FaultPlan(seed=7, rate=0, outage_rate=0.05, outage_requests=4)
    FaultPlan(seed=7, rate=0, refusal_rate=0.02, refusal_seconds=0.5)

``outage_rate``
    The chance that a request of an account (known by its credential) starts
    an outage: that request and the account's next ``outage_requests - 1``
    are answered 503, as ``set_outage()`` does for a time. The n-th request
    of an account starts one or not, whatever the others do.
``refusal_rate``
    The chance that a request through a port of ``SandboxServer.listen()``
    closes it: the request is answered (``Connection: close``), then the
    port refuses connections for ``refusal_seconds`` and listens again, as
    ``refuse_connections(url, seconds)`` does. Ports are known by the order
    they were opened in and counted on their own; the server's main port is
    never closed. Which request of a port closes it comes from the seed;
    how many connection attempts meet the closed port depends on the client.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Every kind of planned fault, in the order they are reported.
FAULT_KINDS = (
    "500",
    "502",
    "503",
    "429",
    "429-no-retry-after",
    "reset",
    "timeout-after-accept",
    "slow",
)
#: Kinds answered instead of processing the request.
REFUSALS = frozenset({"500", "502", "503", "429", "429-no-retry-after", "reset"})


@dataclass(frozen=True)
class FaultPlan:
    """Which share of sends fail, how, and from which seed.

    ``rate`` is the probability (0 to 1) that a send gets a fault; ``kinds``
    maps kind names to relative weights (default: all kinds, equally).
    ``retry_after`` is the ``Retry-After`` of a ``429`` in seconds, ``hang``
    how long a ``timeout-after-accept`` holds the connection before closing
    it, ``slow`` how late a ``slow`` answer comes. ``outage_rate``,
    ``outage_requests``, ``refusal_rate`` and ``refusal_seconds`` plan
    outages and refused connections (see the module doc).
    """

    seed: int = 0
    rate: float = 0.1
    kinds: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 1.0))
    retry_after: int = 1
    hang: float = 30.0
    slow: float = 0.2
    outage_rate: float = 0.0
    outage_requests: int = 5
    refusal_rate: float = 0.0
    refusal_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in ("rate", "outage_rate", "refusal_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(
                    f"Fault plan {name} must be between 0 and 1, not {getattr(self, name)}."
                )
        if isinstance(self.outage_requests, bool) or not (
            isinstance(self.outage_requests, int) and self.outage_requests >= 1
        ):
            raise ValueError("Fault plan outage_requests must be a whole number >= 1.")
        unknown = sorted(set(self.kinds) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(
                f"Unknown fault kind {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(FAULT_KINDS)}."
            )
        if not all(_finite_non_negative(weight) for weight in self.kinds.values()):
            raise ValueError("Fault kind weights must be finite numbers >= 0.")
        if not any(weight > 0 for weight in self.kinds.values()):
            raise ValueError("At least one fault kind needs a weight above 0.")
        for name in ("retry_after", "hang", "slow", "refusal_seconds"):
            if not _finite_non_negative(getattr(self, name)):
                raise ValueError(f"Fault plan {name} must be a finite number >= 0 seconds.")
        # Read-only like the rest of the plan, in FAULT_KINDS order whatever
        # order it came in, so describe() reads the same for equal plans.
        ordered = {kind: float(self.kinds[kind]) for kind in FAULT_KINDS if kind in self.kinds}
        object.__setattr__(self, "kinds", MappingProxyType(ordered))

    def decide(self, identity: str, seen: int) -> str | None:
        """The fault (a kind) for the ``seen``-th repeat of ``identity``, or None.

        A pure function of the seed and its arguments; see the module doc.
        """
        digest = _digest(self.seed, seen, identity)
        if _unit(digest[:8]) >= self.rate:
            return None
        weighted = [(kind, weight) for kind, weight in self.kinds.items() if weight > 0]
        point = _unit(digest[8:16]) * sum(weight for _, weight in weighted)
        for kind, weight in weighted:
            point -= weight
            if point < 0:
                return kind
        return weighted[-1][0]  # only reached through float rounding

    def starts_outage(self, credential: str, index: int) -> bool:
        """Whether request ``index`` (from 0) of the account ``credential`` starts an
        outage. A pure function of the seed and its arguments."""
        return _unit(_digest(self.seed, index, "outage", credential)[:8]) < self.outage_rate

    def closes_port(self, port: int, index: int) -> bool:
        """Whether request ``index`` (from 0) through the ``port``-th ``listen()`` port
        closes it. A pure function of the seed and its arguments."""
        return _unit(_digest(self.seed, index, "refusal", str(port))[:8]) < self.refusal_rate

    def describe(self) -> str:
        """One line for the sandbox's startup message."""
        weights = ",".join(f"{kind}:{weight:g}" for kind, weight in self.kinds.items())
        line = (
            f"{self.rate * 100:g}% of sends fail; seed {self.seed}; kinds {weights}; "
            f"retry-after {self.retry_after} s; hang {self.hang:g} s; slow {self.slow:g} s"
        )
        if self.outage_rate:
            line += (
                f"; {self.outage_rate * 100:g}% of requests start an outage of "
                f"{self.outage_requests} requests"
            )
        if self.refusal_rate:
            line += (
                f"; {self.refusal_rate * 100:g}% of requests to a listen() port close it "
                f"for {self.refusal_seconds:g} s"
            )
        return line


def parse_kinds(text: str) -> dict[str, float]:
    """``"500:2,reset,slow:0.5"`` → ``{"500": 2.0, "reset": 1.0, "slow": 0.5}``.

    A kind without a weight weighs 1. Raises ValueError naming the bad item.
    """
    kinds: dict[str, float] = {}
    for item in text.split(","):
        kind, colon, weight = item.strip().partition(":")
        if not kind:
            raise ValueError(f"Empty fault kind in {text!r}; write kind[:weight],...")
        if kind not in FAULT_KINDS:
            raise ValueError(f"Unknown fault kind {kind!r}; choose from {', '.join(FAULT_KINDS)}.")
        try:
            kinds[kind] = float(weight) if colon else 1.0
        except ValueError:
            raise ValueError(f"Weight {weight!r} of {kind!r} is not a number.") from None
        if not _finite_non_negative(kinds[kind]):
            raise ValueError(f"Weight {weight!r} of {kind!r} must be a finite number >= 0.")
    return kinds


class PlannedFaults:
    """The sandbox's current plan, how often each identity was seen, and
    how many faults of each kind were given. Thread-safe.

    Setting a plan (or None) starts it from scratch: counts and stats are
    zeroed, so the same requests get the same faults again.
    """

    def __init__(self, plan: FaultPlan | None = None) -> None:
        self._lock = threading.Lock()
        self._plan = plan
        self._seen: dict[str, int] = {}
        self._stats = dict.fromkeys(FAULT_KINDS, 0)
        self._outages: dict[str, int] = {}  # credential → requests of its outage still to come
        self._closings: list[tuple[int, int]] = []

    @property
    def plan(self) -> FaultPlan | None:
        return self._plan

    def set_plan(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._plan = plan
            self._seen.clear()
            self._stats = dict.fromkeys(FAULT_KINDS, 0)
            self._outages.clear()
            self._closings.clear()

    def draw(self, identity: str) -> tuple[str, FaultPlan] | None:
        """Count one more sighting of ``identity`` and return its fault, if
        any, with the plan that chose it (which holds the fault's settings)."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return None
            seen = self._count(identity)
        kind = plan.decide(identity, seen)
        return None if kind is None else (kind, plan)

    def outage(self, credential: str) -> bool:
        """Count one more request of the account ``credential``; True when the plan has
        the account down for it (answered 503)."""
        with self._lock:
            plan = self._plan
            if plan is None or not plan.outage_rate or not credential:
                return False
            index = self._count(f"outage\0{credential}")
            left = self._outages.get(credential, 0)
            if not left and plan.starts_outage(credential, index):
                left = plan.outage_requests
            self._outages[credential] = max(left - 1, 0)
            return left > 0

    def closes(self, port: int) -> float | None:
        """Count one more request through the ``port``-th ``listen()`` port; the seconds
        it then refuses connections for, when the plan closes it after this one."""
        with self._lock:
            plan = self._plan
            if plan is None or not plan.refusal_rate:
                return None
            index = self._count(f"port\0{port}")
            if not plan.closes_port(port, index):
                return None
            self._closings.append((port, index))
            return plan.refusal_seconds

    def closings(self) -> list[tuple[int, int]]:
        """``(port, request)`` of every planned closing so far: the ``port``-th ``listen()``
        port closed after its ``request``-th request (both from 0)."""
        with self._lock:
            return list(self._closings)

    def _count(self, identity: str) -> int:
        """How many times ``identity`` was seen before; counts this one (lock held)."""
        seen = self._seen.get(identity, 0)
        self._seen[identity] = seen + 1
        return seen

    def count(self, kind: str) -> None:
        """Record that a drawn fault was given. Not every draw is: an injected
        fault pre-empts it, and the after-accept kinds need a new message."""
        with self._lock:
            self._stats[kind] += 1

    def stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self._stats)

    def restart(self) -> None:
        """Keep the plan, forget counts and stats (``SandboxServer.reset``)."""
        self.set_plan(self._plan)


def _digest(seed: int, seen: int, *identity: str) -> bytes:
    return hashlib.sha256("\0".join([str(seed), str(seen), *identity]).encode()).digest()


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _unit(eight_bytes: bytes) -> float:
    """Eight hash bytes as a number in [0, 1)."""
    return int.from_bytes(eight_bytes, "big") / 2**64
