"""Outbox rows written directly, for tests about reading the outbox (admin, dashboard, cleanup).

Tests about sending go through the backend and the sandbox instead.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime

from django.utils import timezone

from django_txmail.models import DeliveryEvent, Message

_numbers = itertools.count()


def message_row(
    *,
    to: str = "ann@x.example",
    subject: str = "Receipt",
    created_at: datetime | None = None,
    **fields,
) -> Message:
    """A recorded message on the domain route of example.com, "sent" unless told otherwise."""
    number = next(_numbers)
    values = {
        "route": "domain",
        "provider": "nylas",
        "route_domain": "example.com",
        "from_email": {"email": "noreply@example.com", "name": "Shop"},
        "from_address": "noreply@example.com",
        "to": [{"email": to, "name": ""}],
        "subject": subject,
        "text_body": "Thanks.",
        "status": Message.Status.SENT,
        "idempotency_key": f"row-{uuid.uuid4()}",
        "content_hash": "0" * 64,
        "provider_message_id": f"pm-{number}",
        "sent_at": timezone.now(),
    } | fields
    message = Message.objects.create(**values)
    if created_at is not None:
        Message.objects.filter(pk=message.pk).update(created_at=created_at)
        message.created_at = created_at
    return message


def event_row(message: Message | None, kind: str, occurred_at: datetime | None = None, **fields):
    """A delivery event as webhook ingestion stores it."""
    return DeliveryEvent.objects.create(
        message=message,
        provider="nylas",
        type=kind,
        provider_type=kind,
        provider_event_id=f"ev-{uuid.uuid4()}",
        recipient=message.recipients[0] if message else "someone@x.example",
        occurred_at=occurred_at or timezone.now(),
        ingest_batch=uuid.uuid4(),
        **({"raw": {}} | fields),
    )
