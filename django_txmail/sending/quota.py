"""Sending quotas every process shares: ``PROVIDERS[name]["RATE_LIMIT"]``.

The budget lives in the database (``AccountThrottle``), where every web
process, task worker and ``txmail_worker`` on every machine sees it. A
sender asks for as many request *slots* as it is about to make, in one
short transaction; slots are spread evenly (one every ``period / count``
seconds, at the strictest of the account's limits), so no window of a
limit's length ever holds more requests than it allows, and a slot is never
given early. A sender then waits for each slot before its request. Slots
are handed out only up to ``TXMAIL["QUOTA_WAIT"]`` seconds ahead; the
messages beyond that are given back to the outbox, due when the next slot
frees, for whichever sender comes next. A worker asks once per claimed
batch (``reserve_all``: one transaction, whatever the batch's accounts and
lanes), so a slot may be used a little after its time, but never more than
``AccountFlow.late`` after it: later, it is dropped and the request waits
for a new one, so slots used late cannot bunch up above the limit.

A lane with a share (``LANE_SHARES``) also has its own row, spaced
``interval / share`` apart, so ``low`` never takes more than its share.

A provider's 429 with ``Retry-After`` moves the account's next slot past the
pause, for every process at once (``pause``). An account without
``RATE_LIMIT`` still honours such a pause: its row is read at most once per
``PAUSE_READ_EVERY`` seconds per process, so an unlimited account costs no
query per message.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.signals import setting_changed
from django.db import connections, router, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.dispatch import receiver

from django_txmail.conf import ProviderAccount
from django_txmail.flow import PRIORITIES
from django_txmail.models import AccountThrottle

#: How often a process re-reads an unlimited account's pause (seconds).
PAUSE_READ_EVERY = 1.0


@dataclass
class Slots:
    """When each granted request may go (Unix seconds), when the next slot frees, and how
    late a slot may still be used (``AccountFlow.late``)."""

    times: list[float]
    next_free: float
    late: float = math.inf
    #: One sender uses the slots in turn (an immediate call): when one went by, the
    #: rest are taken again together (``attempt._on_time``), not one by one.
    in_turn: bool = False

    def wait(self, index: int) -> bool:
        """Sleep until slot ``index`` has come; False, at once, if it went by more than
        ``late`` ago: it is not used, and its request needs a new slot."""
        delay = self.times[index] - time.time()
        if delay > 0:
            time.sleep(delay)
        return -delay <= self.late


#: What a sender asks for: ``(account, lane, count)``, ``lane`` a ``Message.priority`` rank.
Ask = tuple[ProviderAccount, int, int]

_pauses: dict[str, tuple[float, float]] = {}  # account → (read at, paused until)
_lock = threading.Lock()


def _lock_rows(keys: list[str], alias: str) -> tuple[Any, dict[str, float]]:
    """The rows of ``keys`` (created where missing), locked inside the caller's transaction,
    and their ``next_at`` by key: two senders never hand out the same slot.

    PostgreSQL locks them with ``SELECT ... FOR UPDATE`` (in key order, so two
    senders asking for several rows cannot deadlock) and commits this
    transaction without waiting for the disk (``synchronous_commit`` off): a
    slot lost in a database crash costs nothing, and waiting for a flush
    while holding the account's lock would make every sender queue behind
    it. Elsewhere a write takes the lock first (SQLite's database lock).
    """
    connection = connections[alias]
    rows = AccountThrottle.objects.using(alias).filter(key__in=keys)
    values = rows.order_by("key").values_list("key", "next_at")
    if connection.vendor == "postgresql":
        if len(connection.atomic_blocks) == 1:  # our own transaction, not the caller's
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        found = dict(values.select_for_update())
    else:
        locked = rows.update(next_at=F("next_at"))
        found = dict(values) if locked == len(keys) else {}
    if len(found) < len(keys):
        AccountThrottle.objects.using(alias).bulk_create(
            [AccountThrottle(key=key) for key in keys], ignore_conflicts=True
        )
        found = dict(values.select_for_update())
    return rows, found


def reserve(account: ProviderAccount, lane: int, count: int, wait: float) -> Slots:
    """Up to ``count`` request slots for ``account`` (``lane`` a ``Message.priority`` rank),
    none later than ``wait`` seconds from now."""
    return reserve_all([(account, lane, count)], wait)[0]


def reserve_all(asks: list[Ask], wait: float) -> list[Slots]:
    """The slots of each ask (see :func:`reserve`), all in one transaction: a worker asks
    once for the messages of a claimed batch, whatever their accounts and lanes.

    Asks are served in order, so list the higher lanes first.
    """
    granted: dict[int, Slots] = {}
    limited = []
    for index, (account, _lane, count) in enumerate(asks):
        if account.flow.rate_limits:
            limited.append(index)
        else:
            granted[index] = _unlimited(account, count, wait)
    if limited:
        keys = sorted({key for index in limited for key in _keys(*asks[index][:2])})
        alias = router.db_for_write(AccountThrottle)
        with transaction.atomic(using=alias):
            rows, next_at = _lock_rows(keys, alias)
            before = dict(next_at)
            now = time.time()
            for index in limited:
                granted[index] = _grant(*asks[index], now, wait, next_at)
            for key in keys:
                if next_at[key] != before[key]:
                    rows.filter(key=key).update(next_at=next_at[key])
    return [granted[index] for index in range(len(asks))]


def _keys(account: ProviderAccount, lane: int) -> list[str]:
    """The rows an ask of ``lane`` draws on: the account's, and its lane's if it has a share."""
    lane_name = PRIORITIES[lane]
    if account.flow.lane_shares and lane_name in account.flow.lane_shares:
        return [account.name, f"{account.name}:{lane_name}"]
    return [account.name]


def _grant(
    account: ProviderAccount,
    lane: int,
    count: int,
    now: float,
    wait: float,
    next_at: dict[str, float],
) -> Slots:
    """Hand out the slots of one ask from the locked rows' ``next_at`` (moved on in place)."""
    flow = account.flow
    spacing = flow.interval(PRIORITIES[lane])
    interval = flow.interval("")  # the account's own spacing
    keys = _keys(account, lane)
    start = max(now, *(next_at[key] for key in keys))
    granted = 0 if start > now + wait else min(count, 1 + int((now + wait - start) / spacing))
    times = [start + i * spacing for i in range(granted)]
    if not granted:
        return Slots(times, start, flow.late)
    next_at[account.name] = times[-1] + interval
    if len(keys) > 1:
        next_at[keys[1]] = times[-1] + spacing
    return Slots(times, times[-1] + interval, flow.late)


def _unlimited(account: ProviderAccount, count: int, wait: float) -> Slots:
    """Slots of an account without a RATE_LIMIT: all at once, unless a 429 paused it."""
    until = _paused_until(account)
    if until - time.time() > wait:
        return Slots([], until)
    return Slots([until] * count, until)


def pause(account: ProviderAccount, seconds: float) -> None:
    """The provider said to wait ``seconds`` (429 ``Retry-After``): no process sends
    through ``account`` before then."""
    if not math.isfinite(seconds) or seconds <= 0:
        return
    until = time.time() + seconds
    alias = router.db_for_write(AccountThrottle)
    with transaction.atomic(using=alias):
        _lock_rows([account.name], alias)[0].update(next_at=Greatest(F("next_at"), until))
    with _lock:
        _pauses[account.name] = (time.monotonic(), until)


def _paused_until(account: ProviderAccount) -> float:
    """Until when an account without a RATE_LIMIT is paused (0.0: it is not), read
    from the database at most once per ``PAUSE_READ_EVERY``."""
    with _lock:
        read_at, until = _pauses.get(account.name, (-math.inf, 0.0))
    if time.monotonic() - read_at < PAUSE_READ_EVERY:
        return until
    until = (
        AccountThrottle.objects.filter(key=account.name).values_list("next_at", flat=True).first()
        or 0.0
    )
    with _lock:
        _pauses[account.name] = (time.monotonic(), until)
    return until


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    """New settings (tests): forget what was read under the old ones."""
    if setting == "TXMAIL":
        with _lock:
            _pauses.clear()
