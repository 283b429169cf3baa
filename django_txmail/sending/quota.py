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
frees, for whichever sender comes next.

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
    """When each granted request may go (Unix seconds), and when the next slot frees."""

    times: list[float]
    next_free: float

    def wait(self, index: int) -> None:
        """Sleep until slot ``index`` has come."""
        delay = self.times[index] - time.time()
        if delay > 0:
            time.sleep(delay)


_pauses: dict[str, tuple[float, float]] = {}  # account → (read at, paused until)
_lock = threading.Lock()


def _lock_rows(keys: list[str], alias: str) -> tuple[Any, list[float]]:
    """The rows of ``keys`` (created where missing), locked inside the caller's transaction,
    and their ``next_at``: two senders never hand out the same slot.

    PostgreSQL locks them with ``SELECT ... FOR UPDATE`` and commits this transaction
    without waiting for the disk (``synchronous_commit`` off): a slot lost in a
    database crash costs nothing, and waiting for a flush while holding the
    account's lock would make every sender queue behind it. Elsewhere a write
    takes the lock first (SQLite's database lock).
    """
    connection = connections[alias]
    rows = AccountThrottle.objects.using(alias).filter(key__in=keys)
    if connection.vendor == "postgresql":
        if len(connection.atomic_blocks) == 1:  # our own transaction, not the caller's
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        found = list(rows.select_for_update().values_list("next_at", flat=True))
    else:
        locked = rows.update(next_at=F("next_at"))
        found = list(rows.values_list("next_at", flat=True)) if locked == len(keys) else []
    if len(found) < len(keys):
        AccountThrottle.objects.using(alias).bulk_create(
            [AccountThrottle(key=key) for key in keys], ignore_conflicts=True
        )
        found = list(rows.select_for_update().values_list("next_at", flat=True))
    return rows, found


def reserve(account: ProviderAccount, lane: int, count: int, wait: float) -> Slots:
    """Up to ``count`` request slots for ``account`` (``lane`` a ``Message.priority`` rank),
    none later than ``wait`` seconds from now."""
    flow = account.flow
    if not flow.rate_limits:
        until = _paused_until(account)
        now = time.time()
        if until - now > wait:
            return Slots([], until)
        return Slots([until] * count, until)
    lane_name = PRIORITIES[lane]
    spacing = flow.interval(lane_name)
    interval = flow.interval("")  # the account's own spacing
    keys = [account.name]
    if flow.lane_shares and lane_name in flow.lane_shares:
        keys.append(f"{account.name}:{lane_name}")
    alias = router.db_for_write(AccountThrottle)
    with transaction.atomic(using=alias):
        rows, found = _lock_rows(keys, alias)
        now = time.time()
        start = max(now, *found)
        granted = 0 if start > now + wait else min(count, 1 + int((now + wait - start) / spacing))
        times = [start + i * spacing for i in range(granted)]
        if granted:
            last = times[-1]
            rows.filter(key=account.name).update(next_at=last + interval)
            if len(keys) > 1:
                rows.filter(key=keys[1]).update(next_at=last + spacing)
            next_free = last + interval
        else:
            next_free = start
    return Slots(times, next_free)


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
