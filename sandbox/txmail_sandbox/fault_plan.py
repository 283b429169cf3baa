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
    it, ``slow`` how late a ``slow`` answer comes.
    """

    seed: int = 0
    rate: float = 0.1
    kinds: Mapping[str, float] = field(default_factory=lambda: dict.fromkeys(FAULT_KINDS, 1.0))
    retry_after: int = 1
    hang: float = 30.0
    slow: float = 0.2

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"Fault rate must be between 0 and 1, not {self.rate}.")
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
        for name in ("retry_after", "hang", "slow"):
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
        digest = hashlib.sha256(f"{self.seed}\0{seen}\0{identity}".encode()).digest()
        if _unit(digest[:8]) >= self.rate:
            return None
        weighted = [(kind, weight) for kind, weight in self.kinds.items() if weight > 0]
        point = _unit(digest[8:16]) * sum(weight for _, weight in weighted)
        for kind, weight in weighted:
            point -= weight
            if point < 0:
                return kind
        return weighted[-1][0]  # only reached through float rounding

    def describe(self) -> str:
        """One line for the sandbox's startup message."""
        weights = ",".join(f"{kind}:{weight:g}" for kind, weight in self.kinds.items())
        return (
            f"{self.rate * 100:g}% of sends fail; seed {self.seed}; kinds {weights}; "
            f"retry-after {self.retry_after} s; hang {self.hang:g} s; slow {self.slow:g} s"
        )


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

    @property
    def plan(self) -> FaultPlan | None:
        return self._plan

    def set_plan(self, plan: FaultPlan | None) -> None:
        with self._lock:
            self._plan = plan
            self._seen.clear()
            self._stats = dict.fromkeys(FAULT_KINDS, 0)

    def draw(self, identity: str) -> tuple[str, FaultPlan] | None:
        """Count one more sighting of ``identity`` and return its fault, if
        any, with the plan that chose it (which holds the fault's settings)."""
        with self._lock:
            plan = self._plan
            if plan is None:
                return None
            seen = self._seen.get(identity, 0)
            self._seen[identity] = seen + 1
        kind = plan.decide(identity, seen)
        return None if kind is None else (kind, plan)

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


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _unit(eight_bytes: bytes) -> float:
    """Eight hash bytes as a number in [0, 1)."""
    return int.from_bytes(eight_bytes, "big") / 2**64
