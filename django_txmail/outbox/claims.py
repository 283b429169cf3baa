"""Which messages a process may send now, and taking them.

A message is *claimed* by moving it to "sending" with a lease, in one
statement that only succeeds for one process. ``claim`` takes one message
the caller asks for; ``claim_batch`` takes many due rows at once for
workers: with ``SELECT ... FOR UPDATE SKIP LOCKED`` where the database has
it (PostgreSQL), so any number of workers on any number of machines take
disjoint rows without waiting on each other, and with one conditional
UPDATE per row elsewhere (SQLite), which is as safe, only slower under
contention. A claim that outlives its lease (the process died mid-send) is
taken again; the idempotency key makes that retry safe where the provider
honours it (README, "Duplicates").
"""

from __future__ import annotations

from datetime import timedelta

from django.db import connections, router, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.models import Grant, Message
from django_txmail.outbox import states

#: A queued message with no retry time is being delivered by the process that
#: recorded it (or by its task); workers leave it alone for this long.
ORPHAN_AFTER = timedelta(minutes=1)


def claimable(now) -> Q:
    """Rows a sender may take when asked for them: queued, due, or abandoned mid-send."""
    return (
        Q(status=Message.Status.QUEUED)
        | Q(status__in=(Message.Status.SCHEDULED, Message.Status.SENDING), next_attempt_at__lte=now)
    ) & ~held_for_grant()


def due(now) -> Q:
    """Rows a worker should send now without being asked.

    Retries whose time has come, held scheduled mail that is due, sends
    abandoned past their lease, and queued messages that nobody delivered
    (no task ran, or the process that recorded them died); never mail held
    for a grant that is not valid.
    """
    return (
        Q(
            status__in=(Message.Status.QUEUED, Message.Status.SCHEDULED, Message.Status.SENDING),
            next_attempt_at__lte=now,
        )
        | Q(
            status=Message.Status.QUEUED,
            next_attempt_at__isnull=True,
            created_at__lte=now - ORPHAN_AFTER,
        )
    ) & ~held_for_grant()


def lease_until(now):
    """When a claim taken ``now`` runs out: long enough for any one send to finish."""
    return now + timedelta(seconds=get_settings().lease)


def claim(message: Message) -> bool:
    """Move ``message`` to "sending" if nobody else has; count the attempt."""
    now = timezone.now()
    until = lease_until(now)
    claimed = states.claim(claimable(now), [message.pk], until)
    if claimed:
        # What the UPDATE wrote, without reading it back.
        message.status = Message.Status.SENDING
        message.attempts += 1
        message.next_attempt_at = until
        message.updated_at = now
    else:
        states.follow([message])  # someone else has it, or it moved on
    return bool(claimed)


def renew(messages: list[Message]) -> set:
    """Extend the lease of claimed messages still owned; return their primary keys.

    A message is still ours while it is "sending" with the attempt number we
    claimed it with. Called right before each request, so a long run of
    sends never makes a request for a message whose lease ran out and that a
    worker has taken over since. One UPDATE per attempt number in the usual
    case; one per message only when some were taken over.
    """
    now = timezone.now()
    until = lease_until(now)
    by_attempt: dict[int, list[Message]] = {}
    for message in messages:
        by_attempt.setdefault(message.attempts, []).append(message)
    owned = set()
    for attempts, group in by_attempt.items():
        mine = Message.objects.filter(status=Message.Status.SENDING, attempts=attempts)
        renewed = mine.filter(pk__in=[m.pk for m in group]).update(next_attempt_at=until)
        if renewed < len(group):
            still = set(mine.filter(pk__in=[m.pk for m in group]).values_list("pk", flat=True))
            states.follow(m for m in group if m.pk not in still)  # taken over, or moved on
            group = [m for m in group if m.pk in still]
        for message in group:
            message.next_attempt_at = until
            owned.add(message.pk)
    return owned


def claim_batch(limit: int, *, sweep: bool = True) -> list[Message]:
    """Claim up to ``limit`` due messages for this process: the highest lane first, and in
    a lane the oldest due first.

    ``sweep`` first fails messages abandoned too often (a worker does that
    every few seconds, not on every claim).
    """
    now = timezone.now()
    if sweep:
        # A message whose sending keeps killing the worker would otherwise be taken forever.
        states.give_up_abandoned(now, get_settings().max_attempts)
    # Higher lanes first (``Message.priority``), then the longest due.
    candidates = Message.objects.filter(due(now)).order_by(
        "priority", F("next_attempt_at").asc(nulls_first=True), "created_at"
    )
    alias = router.db_for_write(Message)
    if connections[alias].features.has_select_for_update_skip_locked:
        with transaction.atomic(using=alias):
            ids = list(
                candidates.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit]
            )
            states.claim(Q(), ids, lease_until(now))
    else:
        ids = [
            pk
            for pk in candidates.values_list("pk", flat=True)[:limit]
            if states.claim(due(now), [pk], lease_until(now))
        ]
    order = {pk: index for index, pk in enumerate(ids)}
    return sorted(Message.objects.filter(pk__in=ids), key=lambda m: order[m.pk])


def held_for_grant() -> Q:
    """Rows that go through a connected mailbox whose grant is not valid: they wait.

    Not attempted, not failed: once the grant is valid again they are claimed
    as any other (``wake_grant``).
    """
    not_valid = Grant.objects.filter(
        provider=OuterRef("provider"), grant_id=OuterRef("route_grant_id")
    ).exclude(status=Grant.Status.VALID)
    return Q(route=Message.Route.GRANT) & Q(Exists(not_valid))


def wake_grant(provider: str, grant_id: str) -> int:
    """Make the mail waiting for a grant that is valid again due now (for the worker)."""
    return Message.objects.filter(
        status=Message.Status.QUEUED,
        route=Message.Route.GRANT,
        provider=provider,
        route_grant_id=grant_id,
    ).update(next_attempt_at=timezone.now())
