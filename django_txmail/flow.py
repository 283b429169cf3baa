"""Priority lanes, sending quotas and failover: what the settings say, validated.

Read by ``conf.py`` for each account of ``TXMAIL["PROVIDERS"]``:

* ``RATE_LIMIT`` — ``"20/s"``, ``"1000/h"``, ``"50000/d"`` (also ``/m``), or a list
  of them: requests to the account, whatever process or machine makes them
  (``sending/quota.py`` keeps the budget in the database).
* ``LANE_SHARES`` — ``{"low": 0.25}``: the most of each limit a priority lane
  may use, so bulk mail never takes the whole budget.
* ``FAILOVER`` — other account names to use for the domain route while this
  one is down (``sending/failover.py``).
* ``BREAKER`` — ``{"FAILURES": 5, "PAUSE": 30}``: consecutive failures that open
  the account's circuit breaker, and seconds before it lets one try through.

No Django models here: ``conf`` sits below them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

#: The lanes, highest first: the extra ``msg.priority`` names one.
PRIORITIES = ("high", "normal", "low")
DEFAULT_PRIORITY = "normal"
#: A lane's rank as stored on ``Message.priority``: lower is claimed first.
PRIORITY_RANK = {name: rank for rank, name in enumerate(PRIORITIES)}
#: A lane as Django's Tasks framework takes it (``Task.using(priority=…)``, -100..100,
#: higher first).
TASK_PRIORITY = {"high": 50, "normal": 0, "low": -50}

#: Seconds in a rate limit's period.
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*$")

#: Keys an account of any adapter may have for flow control.
FLOW_KEYS = frozenset({"RATE_LIMIT", "LANE_SHARES", "FAILOVER", "BREAKER"})

#: How late a slot may still be used, as a share of the account's shortest limit period
#: (``AccountFlow.late``).
LATE_SHARE = 0.05

DEFAULT_BREAKER_FAILURES = 5
DEFAULT_BREAKER_PAUSE = 30.0


@dataclass(frozen=True)
class RateLimit:
    """At most ``count`` requests in any ``seconds``."""

    count: int
    seconds: float

    @property
    def interval(self) -> float:
        """Seconds between two requests when they are spread evenly."""
        return self.seconds / self.count


@dataclass(frozen=True)
class AccountFlow:
    """Flow control of one account."""

    rate_limits: tuple[RateLimit, ...] = ()
    #: Lane → the most of each limit it may use (0 < share <= 1).
    lane_shares: Mapping[str, float] | None = None
    failover: tuple[str, ...] = ()
    breaker_failures: int = DEFAULT_BREAKER_FAILURES
    breaker_pause: float = DEFAULT_BREAKER_PAUSE

    def interval(self, lane: str) -> float:
        """Seconds between two requests of ``lane`` at the account's strictest limit
        (0.0: no limit)."""
        if not self.rate_limits:
            return 0.0
        share = (self.lane_shares or {}).get(lane, 1.0)
        return max(limit.interval for limit in self.rate_limits) / share

    @property
    def late(self) -> float:
        """Seconds after its time a slot may still be used (``LATE_SHARE`` of the shortest
        limit period: 50 ms for ``"20/s"``); a slot found later is not used.

        Slots used up to ``late`` after their time can hold, in any window of a
        limit's period, the slots of a period and ``late`` more: at most the
        limit plus ``LATE_SHARE`` of it and one request, never the bunch of
        slots a slow sender would otherwise use all at once.
        """
        if not self.rate_limits:
            return math.inf
        return LATE_SHARE * min(limit.seconds for limit in self.rate_limits)


def priority_rank(value: Any) -> int:
    """The stored rank of ``msg.priority``; ValueError naming the choices when it is none."""
    if value in (None, ""):
        return PRIORITY_RANK[DEFAULT_PRIORITY]
    if value not in PRIORITY_RANK:
        raise ValueError(
            f"msg.priority is {value!r}; use one of {', '.join(map(repr, PRIORITIES))}."
        )
    return PRIORITY_RANK[value]


def parse_rate_limit(value: Any, where: str) -> tuple[RateLimit, ...]:
    """``"20/s"`` or a list of such strings; ImproperlyConfigured naming ``where``."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        items = [value]
    limits = []
    for item in items:
        match = _RATE.match(item) if isinstance(item, str) else None
        if not match or int(match.group(1)) < 1:
            raise ImproperlyConfigured(
                f"{where}['RATE_LIMIT'] has {item!r}; write requests per period as "
                "'20/s', '600/m', '1000/h' or '50000/d' (a positive count), or a list of them."
            )
        limits.append(RateLimit(int(match.group(1)), PERIODS[match.group(2)]))
    return tuple(limits)


def account_flow(name: str, raw: Mapping[str, Any]) -> AccountFlow:
    """The flow control of account ``name`` (its settings dict ``raw``)."""
    where = f"TXMAIL['PROVIDERS'][{name!r}]"
    limits = parse_rate_limit(raw["RATE_LIMIT"], where) if "RATE_LIMIT" in raw else ()
    shares = raw.get("LANE_SHARES")
    if shares is not None:
        if not isinstance(shares, Mapping) or not all(
            lane in PRIORITY_RANK
            and isinstance(share, int | float)
            and not isinstance(share, bool)
            and 0 < share <= 1
            for lane, share in shares.items()
        ):
            raise ImproperlyConfigured(
                f"{where}['LANE_SHARES'] maps lanes ({', '.join(PRIORITIES)}) to the share "
                "of RATE_LIMIT each may use, above 0 and at most 1, e.g. {'low': 0.25}."
            )
        if not limits:
            raise ImproperlyConfigured(
                f"{where}['LANE_SHARES'] shares a RATE_LIMIT, and the account has none; "
                "add one, e.g. 'RATE_LIMIT': '20/s'."
            )
    failover = raw.get("FAILOVER", ())
    if isinstance(failover, str):
        failover = (failover,)
    if not isinstance(failover, list | tuple) or not all(
        isinstance(v, str) and v for v in failover
    ):
        raise ImproperlyConfigured(
            f"{where}['FAILOVER'] is a list of other account names, e.g. ['mailtrap']."
        )
    breaker = raw.get("BREAKER", {})
    failures = breaker.get("FAILURES", DEFAULT_BREAKER_FAILURES) if isinstance(breaker, dict) else 0
    pause = breaker.get("PAUSE", DEFAULT_BREAKER_PAUSE) if isinstance(breaker, dict) else 0
    if (
        not isinstance(failures, int)
        or isinstance(failures, bool)
        or failures < 1
        or not isinstance(pause, int | float)
        or isinstance(pause, bool)
        or not math.isfinite(pause)
        or pause <= 0
        or set(breaker) - {"FAILURES", "PAUSE"}
    ):
        raise ImproperlyConfigured(
            f"{where}['BREAKER'] is {{'FAILURES': <consecutive failures that open it, >= 1>, "
            "'PAUSE': <seconds before one try goes through, > 0>}."
        )
    return AccountFlow(
        rate_limits=limits,
        lane_shares=dict(shares) if shares else None,
        failover=tuple(failover),
        breaker_failures=failures,
        breaker_pause=float(pause),
    )


def check_failover(flows: Mapping[str, AccountFlow]) -> None:
    """Every ``FAILOVER`` names another known account, and no chain leads back."""
    for name, flow in flows.items():
        where = f"TXMAIL['PROVIDERS'][{name!r}]['FAILOVER']"
        for other in flow.failover:
            if other == name:
                raise ImproperlyConfigured(
                    f"{where} names the account itself; list other accounts to fall back on."
                )
            if other not in flows:
                raise ImproperlyConfigured(
                    f"{where} names {other!r}, which is not a key of TXMAIL['PROVIDERS']; "
                    f"add that account or remove it from the list."
                )
    for start in flows:
        todo = [[start, other] for other in flows[start].failover]
        while todo:
            path = todo.pop()
            if path[-1] == start:
                raise ImproperlyConfigured(
                    f"TXMAIL['PROVIDERS'][{start!r}]['FAILOVER'] leads back to {start!r} "
                    f"({' -> '.join(path)}); failover must not go round in a cycle: remove "
                    "one of those entries."
                )
            if path[-1] not in path[:-1]:
                todo.extend([*path, other] for other in flows[path[-1]].failover)
