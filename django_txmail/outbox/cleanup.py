"""Delete old messages with their attempts, delivery events and attachment files.

The outbox grows by one row per message, plus its attempts, events and
files. ``cleanup`` removes what is older than a cut-off, in batches (one
short transaction each, so a big first clean-up never holds locks for
long), and keeps every message that still has to be sent — queued,
scheduled or sending — whatever its age: deleting it would silently drop
mail someone is waiting for. Delivery events that never matched a message
go by the same cut-off.

Attachment files are deleted from storage once the deletion of their rows
is committed (``on_commit``: inside a caller's transaction, only when that
commits, and never if it rolls back): a failure there leaves an orphan
file (logged), never a row pointing at a missing file.
``manage.py txmail_cleanup`` is the command for it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import QuerySet

from django_txmail.models import (
    Attempt,
    DeliveryEvent,
    Message,
    MessageAttachment,
    WebhookPayload,
)
from django_txmail.outbox import states
from django_txmail.outbox.store import delete_files

logger = logging.getLogger("django_txmail.outbox.cleanup")

_AGE = re.compile(r"([0-9]+)\s*([dh])")
_HOURS = {"d": 24, "h": 1}
#: Longer ago than anything in an outbox (and far from the datetime limits).
MAX_AGE = timedelta(days=36500)


def parse_age(text: str) -> timedelta:
    """``"90d"`` → 90 days, ``"12h"`` → 12 hours; ValueError saying what is expected."""
    match = _AGE.fullmatch(text.strip().lower())
    digits = match[1].lstrip("0") if match else ""
    if not digits:
        raise ValueError(
            f"{text!r} is not an age; give a whole number of days or hours above zero, "
            "such as 90d or 36h."
        )
    # Digits counted first: a huge number would overflow timedelta (or int() itself).
    hours = int(digits) * _HOURS[match[2]] if len(digits) <= 9 else None
    if hours is None or hours > MAX_AGE.days * 24:
        raise ValueError(f"{text!r} is too long ago; give at most {MAX_AGE.days}d (100 years).")
    return timedelta(hours=hours)


@dataclass
class CleanupReport:
    """What a clean-up deleted (or, in a dry run, would delete)."""

    messages: int = 0
    attempts: int = 0
    events: int = 0
    attachment_files: int = 0
    unattached_events: int = 0
    #: Old messages kept because they are still to be sent.
    kept_unsent: int = 0
    #: Attachment files that could not be deleted from storage.
    files_failed: int = 0


def old_messages(cutoff: datetime) -> QuerySet[Message]:
    """Messages created before ``cutoff`` that are done (not still to be sent)."""
    return Message.objects.filter(created_at__lt=cutoff).exclude(status__in=states.NOT_SENT_YET)


def old_unattached_events(cutoff: datetime) -> QuerySet[DeliveryEvent]:
    """Delivery events before ``cutoff`` that never matched a message."""
    return DeliveryEvent.objects.filter(message__isnull=True, occurred_at__lt=cutoff)


def preview(cutoff: datetime) -> CleanupReport:
    """What ``cleanup(cutoff)`` would delete, counted without deleting anything."""
    messages = old_messages(cutoff)
    return CleanupReport(
        messages=messages.count(),
        attempts=Attempt.objects.filter(message__in=messages).count(),
        events=DeliveryEvent.objects.filter(message__in=messages).count(),
        attachment_files=MessageAttachment.objects.filter(message__in=messages).count(),
        unattached_events=old_unattached_events(cutoff).count(),
        kept_unsent=Message.objects.filter(
            created_at__lt=cutoff, status__in=states.NOT_SENT_YET
        ).count(),
    )


def cleanup(
    cutoff: datetime,
    *,
    batch_size: int = 500,
    on_batch: Callable[[CleanupReport], None] | None = None,
) -> CleanupReport:
    """Delete what ``preview(cutoff)`` counts, ``batch_size`` messages at a time.

    ``on_batch`` is called with the running totals after each batch. Called
    inside a transaction, the files are deleted (and counted in the report)
    when it commits.
    """
    report = CleanupReport(
        kept_unsent=Message.objects.filter(
            created_at__lt=cutoff, status__in=states.NOT_SENT_YET
        ).count()
    )
    using = router.db_for_write(Message)
    while True:
        with transaction.atomic(using=using):
            # Rows another process holds (a retry being made) are left for the next run.
            ids = list(
                old_messages(cutoff)
                .order_by("created_at")
                .select_for_update(skip_locked=True)
                .values_list("pk", flat=True)[:batch_size]
            )
            if not ids:
                break
            names = list(
                MessageAttachment.objects.filter(message__in=ids).values_list(
                    "storage_name", flat=True
                )
            )
            _, deleted = Message.objects.filter(pk__in=ids).delete()
            transaction.on_commit(lambda names=names: _delete_files(names, report), using=using)
        report.messages += deleted.get(Message._meta.label, 0)
        report.attempts += deleted.get(Attempt._meta.label, 0)
        report.events += deleted.get(DeliveryEvent._meta.label, 0)
        if on_batch:
            on_batch(report)
    while ids := list(old_unattached_events(cutoff).values_list("pk", flat=True)[:batch_size]):
        report.unattached_events += DeliveryEvent.objects.filter(pk__in=ids).delete()[0]
        if on_batch:
            on_batch(report)
    # Shared payloads (WebhookPayload) go with the last of their events.
    unused = WebhookPayload.objects.filter(received_at__lt=cutoff, events__isnull=True)
    while ids := list(unused.values_list("pk", flat=True)[:batch_size]):
        WebhookPayload.objects.filter(pk__in=ids).delete()
    return report


def _delete_files(names: list[str], report: CleanupReport) -> None:
    failed = delete_files(names)
    for name, exc in failed:
        logger.warning("Could not delete attachment file %s: %s", name, exc)
    report.files_failed += len(failed)
    report.attachment_files += len(names) - len(failed)
