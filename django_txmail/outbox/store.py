"""Write a message to the outbox and read it back.

``record`` stores an OutboundEmail as a ``Message`` row (attachments in
Django's storage) before anything is sent; ``load`` rebuilds the very same
OutboundEmail from the row for the first attempt and every retry.

``record`` also decides, once, how a ``send_at`` is honoured: handed to the
provider when it can hold the message that long (and cancel it), otherwise
kept in the outbox as "scheduled" until it is due. Deciding at record time
keeps every attempt's request identical, whatever the clock says later.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, transaction
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.exceptions import InvalidMessage
from django_txmail.models import Message, MessageAttachment
from django_txmail.outbound_email import Address, Attachment, OutboundEmail
from django_txmail.outbox import states
from django_txmail.outbox.claims import lease_until
from django_txmail.routing import ResolvedRoute

# OutboundEmail fields kept together in Message.options.
_OPTION_FIELDS = (
    "template_id",
    "template_vars",
    "track_opens",
    "track_clicks",
    "reply_to_message_id",
    "esp_extra",
    "ical_event",
    "stream_type",
    "merge_data",
    "merge_metadata",
    "merge_headers",
    "envelope_sender",
)


def attachment_storage() -> Storage:
    return storages[get_settings().attachment_storage]


def _addresses(values: list[Address]) -> list[dict[str, str]]:
    return [a.as_dict() for a in values]


def _options(email: OutboundEmail) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name in _OPTION_FIELDS:
        value = getattr(email, name)
        if value not in (None, "", {}, []):
            options[name] = value
    if email.alternatives:
        options["alternatives"] = [list(alt) for alt in email.alternatives]
    if email.header_overrides:
        options["header_overrides"] = {
            name: _addresses(values) for name, values in email.header_overrides.items()
        }
    return options


def _store_attachments(message: Message, contents: list[bytes], email: OutboundEmail) -> None:
    storage = attachment_storage()
    saved: list[str] = []
    try:
        for position, (attachment, content) in enumerate(
            zip(email.attachments, contents, strict=True)
        ):
            # The real filename is on the row; the stored name never depends on it.
            name = storage.save(f"txmail/{message.pk}/{position}", ContentFile(content))
            saved.append(name)
            MessageAttachment.objects.create(
                message=message,
                position=position,
                filename=attachment.filename,
                mimetype=attachment.mimetype,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                content_id=attachment.content_id,
                inline=attachment.inline,
                storage_name=name,
            )
    except BaseException:
        for name in saved:
            storage.delete(name)
        raise


def _content_hash(email: OutboundEmail, contents: list[bytes]) -> str:
    """A fingerprint of what the message says and to whom (not of when it was made)."""
    canonical = {
        "from": email.from_email.as_dict(),
        "to": _addresses(email.to),
        "cc": _addresses(email.cc),
        "bcc": _addresses(email.bcc),
        "reply_to": _addresses(email.reply_to),
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
        "headers": email.headers,
        "metadata": email.metadata,
        "tags": email.tags,
        "options": _options(email),
        "send_at": email.send_at.isoformat() if email.send_at else None,
        "attachments": [
            [a.filename, a.mimetype, a.content_id, a.inline, hashlib.sha256(c).hexdigest()]
            for a, c in zip(email.attachments, contents, strict=True)
        ],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _existing(key: str, content_hash: str) -> Message | None:
    existing = Message.objects.filter(idempotency_key=key).first()
    if existing is not None and existing.content_hash != content_hash:
        raise InvalidMessage(
            f"The idempotency key {key!r} was already used for a different message "
            f"({existing.pk}); use a new key for new content."
        )
    return existing


@dataclass
class Plan:
    """A message about to be recorded: its ids, its first state, what the provider gets."""

    #: As the caller gave it, with its message id and idempotency key.
    email: OutboundEmail
    #: As every attempt sends it (what ``load`` rebuilds from the row): check this one.
    sent: OutboundEmail
    status: str
    next_attempt_at: datetime | None
    attempts: int
    provider_holds: bool
    #: The idempotency key is the caller's, so the message may be in the outbox already.
    caller_key: bool


#: The OutboundEmail fields that are JSON objects in the row.
_OBJECT_FIELDS = (
    "headers",
    "header_overrides",
    "metadata",
    "template_vars",
    "esp_extra",
    "merge_data",
    "merge_metadata",
    "merge_headers",
)


def _in_key_order(value: Any) -> Any:
    """``value`` with every dict in it ordered by key.

    PostgreSQL's jsonb keeps an object's keys in an order of its own, SQLite
    in the order they came: both the message as planned and the message
    loaded from its row put them in key order, so every attempt builds the
    same bytes (a provider refuses a reused idempotency key with another body).
    """
    if isinstance(value, dict):
        return {key: _in_key_order(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_in_key_order(item) for item in value]
    return value


def plan(
    email: OutboundEmail,
    schedule_window: tuple[timedelta, timedelta] | None = None,
    *,
    claim: bool = False,
) -> Plan:
    """Decide, before anything is written, how ``email`` will be recorded and sent.

    It gets its message id and (unless the caller gave one) an idempotency
    key, so the provider request can be built — and checked — before the row
    exists, and the first attempt sends that very request. ``schedule_window``
    is how far ahead the provider can hold a message on this route (None: it
    cannot). With ``claim``, a message due now is recorded already claimed by
    the caller ("sending", first attempt, a lease), which then makes the
    attempt itself: if the caller dies first, the lease runs out and a worker
    sends it.
    """
    caller_key = bool(email.idempotency_key)
    for name in _OBJECT_FIELDS:
        setattr(email, name, _in_key_order(getattr(email, name)))
    if email.message_id is None:
        email.message_id = uuid.uuid4()
    if not email.idempotency_key:
        email.idempotency_key = f"txmail-{uuid.uuid4()}"
    status, next_attempt_at, attempts, provider_holds = states.initial(
        email.send_at, schedule_window, claim=claim, lease_until=lease_until(timezone.now())
    )
    # The provider gets send_at only when it holds the message itself.
    sent = email if provider_holds or email.send_at is None else replace(email, send_at=None)
    return Plan(email, sent, status, next_attempt_at, attempts, provider_holds, caller_key)


def record(planned: Plan, resolved: ResolvedRoute) -> tuple[Message, bool]:
    """Store a planned message in the outbox; return the row and whether it is new.

    A caller-supplied idempotency key that is already in the outbox returns
    the existing message instead of a second copy — the same key is the same
    message, so a retried web request never sends twice — unless the content
    differs, which is an error.
    """
    email = planned.email
    contents = [attachment.read() for attachment in email.attachments]
    content_hash = _content_hash(email, contents)
    key = email.idempotency_key
    if planned.caller_key and (existing := _existing(key, content_hash)):
        email.message_id = existing.pk
        return existing, False
    status, next_attempt_at, attempts = planned.status, planned.next_attempt_at, planned.attempts
    options = _options(email)
    if planned.provider_holds:
        options["provider_scheduled"] = True
    try:
        # One INSERT is atomic on its own; files and their rows need a transaction.
        with transaction.atomic() if contents else nullcontext():
            message = Message.objects.create(
                id=email.message_id,
                route=resolved.route.kind,
                provider=resolved.route.provider,
                sending_domain=resolved.sending_domain,
                grant=resolved.grant,
                route_domain=resolved.route.domain,
                route_grant_id=resolved.route.grant_id,
                from_email=email.from_email.as_dict(),
                from_address=email.from_email.email.lower(),
                to=_addresses(email.to),
                cc=_addresses(email.cc),
                bcc=_addresses(email.bcc),
                reply_to=_addresses(email.reply_to),
                subject=email.subject,
                text_body=email.text,
                html_body=email.html,
                headers=email.headers,
                metadata=email.metadata,
                tags=email.tags,
                options=options,
                send_at=email.send_at,
                status=status,
                attempts=attempts,
                next_attempt_at=next_attempt_at,
                idempotency_key=key,
                content_hash=content_hash,
                attachment_count=len(contents),
                template=email.template,
                template_version=email.template_version,
                template_language=email.template_language,
            )
            _store_attachments(message, contents, email)
    except IntegrityError:
        # Another process recorded the same key between our check and insert.
        if existing := _existing(key, content_hash):
            return existing, False
        raise
    return message, True


def _stored_attachment(row: MessageAttachment, storage: Storage) -> Attachment:
    return Attachment(
        filename=row.filename,
        mimetype=row.mimetype,
        size=row.size,
        opener=lambda: storage.open(row.storage_name, "rb"),
        content_id=row.content_id,
        inline=row.inline,
    )


def load(message: Message) -> OutboundEmail:
    """The OutboundEmail a stored message sends, identical on every attempt."""

    def addresses(values: list[dict[str, str]]) -> list[Address]:
        return [Address(v["email"], v.get("name", "")) for v in values]

    options = _in_key_order(message.options)
    provider_scheduled = options.pop("provider_scheduled", False)
    alternatives = [tuple(alt) for alt in options.pop("alternatives", [])]
    overrides = {k: addresses(v) for k, v in options.pop("header_overrides", {}).items()}
    storage = attachment_storage()
    return OutboundEmail(
        from_email=Address(message.from_email["email"], message.from_email.get("name", "")),
        to=addresses(message.to),
        cc=addresses(message.cc),
        bcc=addresses(message.bcc),
        reply_to=addresses(message.reply_to),
        subject=message.subject,
        text=message.text_body,
        html=message.html_body,
        headers=_in_key_order(message.headers),
        header_overrides=overrides,
        alternatives=alternatives,  # type: ignore[arg-type]
        attachments=[_stored_attachment(row, storage) for row in message.attachments.all()]
        if message.attachment_count
        else [],
        metadata=_in_key_order(message.metadata),
        tags=list(message.tags),
        # The provider gets send_at only when it holds the message itself.
        send_at=message.send_at if provider_scheduled else None,
        message_id=message.pk,
        idempotency_key=message.idempotency_key,
        **options,
    )
