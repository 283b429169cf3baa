"""Store delivery events once and move message status by a fixed precedence.

Providers deliver webhooks at least once and in no particular order. So:

* an event is stored once per ``(provider, provider_event_id)``; a
  redelivered event is counted as a duplicate and changes nothing;
* each event is matched to its ``Message`` by the provider's message id,
  else by our message id when the provider echoes it (metadata, custom
  variables); an event matching no message is still stored, unattached;
* an event about a recipient its message does not have is ignored: it is
  not stored and changes nothing (counted as ``ignored``);
* events read from one provider item (a Nylas notification naming several
  recipients) share one stored copy of it, a ``WebhookPayload``, instead of
  one copy each;
* the message's status (and each recipient's, in
  ``Message.recipient_status``) moves by the provider's word, with the
  precedence ``django_txmail.outbox.states`` defines: only forward, by rank,
  whatever order events arrive in; ``opened`` and ``clicked`` prove delivery;
  ``unsubscribed`` and ``unknown`` change no status;
* a hard bounce, a complaint or an unsubscribe puts the recipient on the
  suppression list in the message's stream (``django_txmail.suppressions``).

A batch is stored in one transaction; the ``delivery_event`` signal is sent
for each newly stored event after it commits.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from django_txmail.exceptions import WebhookPayloadError
from django_txmail.models import DeliveryEvent, Message, WebhookPayload
from django_txmail.outbox import states
from django_txmail.providers.base import EVENT_TYPES, WebhookEvent
from django_txmail.signals import delivery_event
from django_txmail.suppressions import from_events

logger = logging.getLogger("django_txmail.tracking.ingest")


@dataclass
class IngestResult:
    received: int
    stored: int
    duplicates: int
    unmatched: int
    ignored: int = 0

    def as_dict(self) -> dict[str, int]:
        return vars(self).copy()


def _fit(value: str, length: int) -> str:
    return (value or "")[:length]


def _storable(event: WebhookEvent, checked: set[int]) -> None:
    """Refuse what a database would refuse or silently mangle.

    NUL characters (PostgreSQL rejects them), text that is not valid Unicode
    (lone surrogates) and NaN/Infinity (not JSON; SQLite's INSERT OR IGNORE
    would drop the row and call it a duplicate) make the request a 400.
    A payload several events share is checked once (``checked``: their ids).
    """
    texts = [
        event.provider_event_id,
        event.provider_type,
        event.provider_message_id,
        event.message_id,
        event.recipient,
        event.bounce_type,
        event.reason,
        event.mta_response,
        event.click_url,
        event.user_agent,
        event.ip,
    ]
    raw = ""
    try:
        if id(event.raw) not in checked:
            raw = json.dumps(event.raw, allow_nan=False, ensure_ascii=False)
            checked.add(id(event.raw))
        encoded = [raw.encode(), *(text.encode() for text in texts if text)]
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise WebhookPayloadError(
            f"Event {event.provider_event_id!r} cannot be stored: {exc}."
        ) from None
    if any(b"\x00" in value for value in encoded) or "\\u0000" in raw:
        raise WebhookPayloadError(f"Event {event.provider_event_id!r} contains a NUL character.")


def _row(provider: str, event: WebhookEvent, batch: uuid.UUID, checked: set[int]) -> DeliveryEvent:
    _storable(event, checked)
    if event.type not in EVENT_TYPES:
        raise WebhookPayloadError(f"Unknown normalized event type {event.type!r}.")
    if not event.provider_event_id or len(event.provider_event_id) > 255:
        raise WebhookPayloadError("Every event needs an id of at most 255 characters.")
    if timezone.is_naive(event.occurred_at):
        raise WebhookPayloadError("Event times must carry a time zone.")
    return DeliveryEvent(
        provider=provider,
        type=event.type,
        provider_type=_fit(event.provider_type, 128),
        provider_event_id=event.provider_event_id,
        provider_message_id=_fit(event.provider_message_id, 255),
        recipient=_fit(event.recipient.lower(), 254),
        occurred_at=event.occurred_at,
        bounce_type=_fit(event.bounce_type, 128),
        reason=event.reason or "",
        mta_response=event.mta_response or "",
        click_url=event.click_url or "",
        user_agent=event.user_agent or "",
        ip=_fit(event.ip, 64),
        raw=event.raw,
        ingest_batch=batch,
    )


def _messages(provider: str, events: list[WebhookEvent]) -> tuple[dict, dict]:
    """Messages by provider message id and by our id, locked for the status update."""
    provider_ids = {e.provider_message_id for e in events if e.provider_message_id}
    our_ids = set()
    for event in events:
        try:
            our_ids.add(uuid.UUID(event.message_id))
        except (TypeError, ValueError):
            continue
    # Only what status updates need: decoding every JSON column costs more than the
    # rest. One query, locked in primary-key order, so two requests touching the
    # same messages cannot deadlock.
    found = list(
        Message.objects.select_for_update()
        .filter(
            Q(provider_message_id__in=provider_ids) | Q(pk__in=our_ids),
            # A message that moved (FAILOVER) hears from both accounts.
            Q(provider=provider) | Q(failover_from=provider),
        )
        .only(
            "id",
            "provider_message_id",
            "status",
            "failure_origin",
            "recipient_status",
            "to",
            "cc",
            "bcc",
            "stream",
        )
        .order_by("pk")
    )
    by_provider_id = {m.provider_message_id: m for m in found if m.provider_message_id}
    by_id = {m.pk: m for m in found}
    return by_provider_id, by_id


def _match(event: WebhookEvent, by_provider_id: dict, by_id: dict) -> Message | None:
    if event.provider_message_id in by_provider_id:
        return by_provider_id[event.provider_message_id]
    try:
        return by_id.get(uuid.UUID(event.message_id))
    except (TypeError, ValueError):
        return None


def _on_their_messages(rows: dict[str, tuple[WebhookEvent, DeliveryEvent]]) -> dict:
    """``rows`` without the events naming a recipient their (matched) message does not have."""
    recipients: dict[uuid.UUID, set[str]] = {}
    kept = {}
    for key, (event, row) in rows.items():
        if row.message is not None and row.recipient:
            if row.message.pk not in recipients:
                recipients[row.message.pk] = {a.lower() for a in row.message.recipients}
            if row.recipient not in recipients[row.message.pk]:
                continue
        kept[key] = (event, row)
    return kept


def _share_payloads(provider: str, rows: list[tuple[WebhookEvent, DeliveryEvent]]) -> list:
    """One stored payload per provider item that several of ``rows`` were read from."""
    groups: dict[int, list[DeliveryEvent]] = defaultdict(list)
    items = {}
    for event, row in rows:
        groups[id(event.raw)].append(row)
        items[id(event.raw)] = event.raw
    shared = {key: group for key, group in groups.items() if len(group) > 1}
    payloads = WebhookPayload.objects.bulk_create(
        [WebhookPayload(provider=provider, raw=items[key]) for key in shared]
    )
    for payload, group in zip(payloads, shared.values(), strict=True):
        for row in group:
            row.payload, row.raw = payload, None
    return payloads


def ingest(provider: str, events: list[WebhookEvent]) -> IngestResult:
    """Store the new events of one webhook request and apply them to their messages."""
    batch = uuid.uuid4()
    rows = {}
    checked: set[int] = set()
    for event in events:  # an id repeated inside one request counts once
        if event.provider_event_id not in rows:
            rows[event.provider_event_id] = (event, _row(provider, event, batch, checked))
    alias = router.db_for_write(DeliveryEvent)
    with transaction.atomic(using=alias):
        by_provider_id, by_id = _messages(provider, [event for event, _ in rows.values()])
        for event, row in rows.values():
            row.message = _match(event, by_provider_id, by_id)
        kept = _on_their_messages(rows)
        payloads = _share_payloads(provider, list(kept.values()))
        # Inserted in id order: concurrent requests take index locks in one order.
        DeliveryEvent.objects.bulk_create(
            [kept[key][1] for key in sorted(kept)], ignore_conflicts=True
        )
        # The rows this request inserted (not those another delivery stored first).
        inserted = dict(
            DeliveryEvent.objects.filter(ingest_batch=batch).values_list("provider_event_id", "pk")
        )
        stored = []
        for event_id, (_, row) in kept.items():
            if event_id in inserted:
                row.pk = inserted[event_id]
                stored.append(row)
        used = {row.payload_id for row in stored}
        if unused := [p.pk for p in payloads if p.pk not in used]:  # a redelivery
            WebhookPayload.objects.filter(pk__in=unused).delete()
        stored.sort(key=lambda row: (row.occurred_at, row.pk))
        _apply(stored)
        from_events(stored)  # hard bounces, complaints, unsubscribes (per SUPPRESS_ON)
        transaction.on_commit(lambda: _notify(stored), using=alias)
    ignored = len(rows) - len(kept)
    return IngestResult(
        received=len(events),
        stored=len(stored),
        duplicates=len(events) - len(stored) - ignored,
        unmatched=sum(1 for row in stored if row.message is None),
        ignored=ignored,
    )


def _apply(stored: list[DeliveryEvent]) -> None:
    """Move the status of every message the new events belong to."""
    per_message: dict[uuid.UUID, list[DeliveryEvent]] = defaultdict(list)
    messages: dict[uuid.UUID, Message] = {}
    for row in stored:
        if row.message is not None:
            per_message[row.message.pk].append(row)
            messages[row.message.pk] = row.message
    now = timezone.now()
    changed = []
    for message_id, rows in per_message.items():
        message = messages[message_id]
        before = message.status
        for row in rows:
            message.status, message.failure_origin = states.after_event(
                message.status, message.failure_origin, row.type
            )
            recipients = [row.recipient] if row.recipient else message.recipients
            for address in recipients:
                address = address.lower()
                current = message.recipient_status.get(address, Message.Status.SENT)
                message.recipient_status[address] = states.recipient_after_event(current, row.type)
        message.updated_at = now
        changed.append((message, before))
    states.apply_events(changed)


def _notify(stored: list[DeliveryEvent]) -> None:
    for row in stored:
        delivery_event.send_robust(sender=DeliveryEvent, event=row, message=row.message)
