"""Write a message to the outbox and read it back.

``record`` stores an OutboundEmail as a ``Message`` row (attachments in
Django's storage) before anything is sent; ``load`` rebuilds the very same
OutboundEmail from the row for the first attempt and every retry.

Recipients on the suppression list (looked up by the caller, once per call)
stay on the row, marked "suppressed" in ``recipient_status``, and are never
sent: ``plan`` and ``load`` both leave them out.

``record`` also decides, once, how a ``send_at`` is honoured: handed to the
provider when it can hold the message that long (and cancel it), otherwise
kept in the outbox as "scheduled" until it is due. Deciding at record time
keeps every attempt's request identical, whatever the clock says later.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, router, transaction
from django.utils import timezone

from django_txmail.conf import DEFAULT_STREAM, get_settings
from django_txmail.exceptions import IdempotencyKeyReused, TxMailError
from django_txmail.flow import PRIORITIES, priority_rank
from django_txmail.models import Message, MessageAttachment
from django_txmail.outbound_email import Address, Attachment, OutboundEmail
from django_txmail.outbox import bulk, states
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
        "stream": email.stream,
        "attachments": [
            [a.filename, a.mimetype, a.content_id, a.inline, hashlib.sha256(c).hexdigest()]
            for a, c in zip(email.attachments, contents, strict=True)
        ],
    }
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


def _mismatch(key: str, existing: Message) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        f"The idempotency key {key!r} was already used for a different message "
        f"({existing.pk}); use a new key for new content."
    )


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
    #: Recipients taken off because they are on the suppression list (address → reason).
    suppressed: dict[str, str] = field(default_factory=dict)


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
        # Keys as JSON writes them: {2: ..} comes back from the row as {"2": ..}.
        return {str(key): _in_key_order(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_in_key_order(item) for item in value]
    return value


def plan(
    email: OutboundEmail,
    schedule_window: tuple[timedelta, timedelta] | None = None,
    *,
    claim: bool = False,
    suppressed: dict[str, str] | None = None,
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

    ``suppressed`` (lower-cased address → reason) are recipients on the
    suppression list: the row keeps them, marked "suppressed" per recipient,
    and the provider never gets them; with none left the message is recorded
    "suppressed" and never sent.
    """
    caller_key = bool(email.idempotency_key)
    email.stream = email.stream or DEFAULT_STREAM
    suppressed = {
        address: reason
        for address, reason in (suppressed or {}).items()
        if any(a.email.lower() == address for a in email.recipients)
    }
    everyone = {a.email.lower() for a in email.recipients} <= suppressed.keys()
    for name in _OBJECT_FIELDS:
        setattr(email, name, _in_key_order(getattr(email, name)))
    if email.message_id is None:
        email.message_id = uuid.uuid4()
    if not email.idempotency_key:
        email.idempotency_key = f"txmail-{uuid.uuid4()}"
    status, next_attempt_at, attempts, provider_holds = states.initial(
        email.send_at,
        schedule_window,
        claim=claim,
        lease_until=lease_until(timezone.now()),
        suppressed=everyone,
    )
    # The provider gets send_at only when it holds the message itself.
    sent = email if provider_holds or email.send_at is None else replace(email, send_at=None)
    sent = sent.without(set(suppressed))
    return Plan(
        email, sent, status, next_attempt_at, attempts, provider_holds, caller_key, suppressed
    )


def record(planned: Plan, resolved: ResolvedRoute) -> tuple[Message, bool]:
    """Store one planned message (see :func:`record_all`); raise what it refuses."""
    [outcome] = record_all([(planned, resolved)])
    if isinstance(outcome, TxMailError):
        raise outcome
    return outcome


@dataclass
class _New:
    """A message to insert, its attachment rows, and the files they name."""

    message: Message
    email: OutboundEmail
    contents: list[bytes]
    attachments: list[MessageAttachment] = field(default_factory=list)


def record_all(
    items: list[tuple[Plan, ResolvedRoute]],
) -> list[tuple[Message, bool] | TxMailError]:
    """Store planned messages in the outbox, in one transaction; per item, the row
    and whether it is new, or the error that refused it.

    A caller-supplied idempotency key that is already in the outbox (or
    earlier in ``items``) answers with the existing message instead of a second
    copy — the same key is the same message, so a retried web request never
    sends twice — unless the content differs, which refuses that item only.
    Attachment files are written to storage first and deleted again if the
    transaction does not commit; the rows, messages and attachments, go in
    bulk INSERTs: one commit however many messages a call records.
    """
    outcomes: list[tuple[Message, bool] | TxMailError | None] = [None] * len(items)
    keys = [planned.email.idempotency_key for planned, _ in items if planned.caller_key]
    known = (
        {m.idempotency_key: m for m in Message.objects.filter(idempotency_key__in=keys)}
        if keys
        else {}
    )
    new: dict[int, _New] = {}
    first: dict[str, int] = {}  # a key new in this call → the item that records it
    copies: dict[int, int] = {}  # a later item with that key → that item
    for index, (planned, resolved) in enumerate(items):
        email = planned.email
        contents = [attachment.read() for attachment in email.attachments]
        row = _message(planned, resolved, _content_hash(email, contents), len(contents))
        key = email.idempotency_key
        existing = known.get(key) if planned.caller_key else None
        if planned.caller_key and key in first:
            earlier = new[first[key]].message
            if earlier.content_hash != row.content_hash:
                outcomes[index] = _mismatch(key, earlier)
            else:
                copies[index] = first[key]
        elif existing is None:
            first[key] = index
            new[index] = _New(row, email, contents)
        elif existing.content_hash != row.content_hash:
            outcomes[index] = _mismatch(key, existing)
        else:
            email.message_id = existing.pk
            outcomes[index] = (existing, False)
    files = _store_files(new.values())
    using = router.db_for_write(Message)
    rows = [item.message for item in new.values()]
    attachments = [row for item in new.values() for row in item.attachments]
    # One row and nothing else, outside the caller's transaction: its INSERT is a
    # transaction of its own (no BEGIN and COMMIT round trips); more go in one.
    alone = (
        len(rows) == 1 and not attachments and transaction.get_connection(using).get_autocommit()
    )
    try:
        try:
            with nullcontext() if alone else transaction.atomic(using=using):
                bulk.insert(rows, using)
                if attachments:
                    MessageAttachment.objects.bulk_create(attachments)
        except IntegrityError:
            # Another process recorded one of the keys since we looked, and the
            # transaction rolled back: again, one row at a time, each in a
            # savepoint, all in one transaction (anything else still rolls back
            # the lot). The usual case pays no savepoint.
            with transaction.atomic(using=using):
                for index, item in new.items():
                    outcomes[index] = _record_one(item)
        else:
            for index, item in new.items():
                outcomes[index] = (item.message, True)
    except BaseException:
        delete_files(files)
        raise
    for index, earlier in copies.items():  # the same key again: the same message
        outcome = outcomes[earlier]
        if isinstance(outcome, tuple):
            items[index][0].email.message_id = outcome[0].pk
            outcome = (outcome[0], False)
        outcomes[index] = outcome
    # A key another process recorded first keeps its message; our copy's files go.
    delete_files(
        [
            row.storage_name
            for index, item in new.items()
            if not (isinstance(outcomes[index], tuple) and outcomes[index][1])
            for row in item.attachments
        ]
    )
    return outcomes  # type: ignore[return-value]


def _record_one(item: _New) -> tuple[Message, bool] | TxMailError:
    try:
        with transaction.atomic(using=router.db_for_write(Message)):
            item.message.save(force_insert=True)
            MessageAttachment.objects.bulk_create(item.attachments)
    except IntegrityError:
        key = item.message.idempotency_key
        existing = Message.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        if existing.content_hash != item.message.content_hash:
            return _mismatch(key, existing)
        item.email.message_id = existing.pk
        return existing, False
    return item.message, True


def _message(planned: Plan, resolved: ResolvedRoute, content_hash: str, files: int) -> Message:
    """The (unsaved) row for a planned message."""
    email = planned.email
    options = _options(email)
    if planned.provider_holds:
        options["provider_scheduled"] = True
    message = Message(
        stream=email.stream,
        priority=priority_rank(email.priority),
        recipient_status=dict.fromkeys(planned.suppressed, states.RECIPIENT_SUPPRESSED),
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
        status=planned.status,
        attempts=planned.attempts,
        next_attempt_at=planned.next_attempt_at,
        idempotency_key=email.idempotency_key,
        content_hash=content_hash,
        attachment_count=files,
        template=email.template,
        template_version=email.template_version,
        template_language=email.template_language,
    )
    message.recipient_emails = message.recipient_index()
    return message


def _store_files(items) -> list[str]:
    """Write the attachment files of ``items`` and make their rows; the names written."""
    storage = attachment_storage()
    saved: list[str] = []
    try:
        for item in items:
            for position, (attachment, content) in enumerate(
                zip(item.email.attachments, item.contents, strict=True)
            ):
                # The real filename is on the row; the stored name never depends on it.
                name = storage.save(f"txmail/{item.message.pk}/{position}", ContentFile(content))
                saved.append(name)
                item.attachments.append(
                    MessageAttachment(
                        message=item.message,
                        position=position,
                        filename=attachment.filename,
                        mimetype=attachment.mimetype,
                        size=len(content),
                        sha256=hashlib.sha256(content).hexdigest(),
                        content_id=attachment.content_id,
                        inline=attachment.inline,
                        storage_name=name,
                    )
                )
            item.contents = []  # written: not kept in memory for the rest of the call
    except BaseException:
        delete_files(saved)
        raise
    return saved


def delete_files(names: list[str]) -> list[tuple[str, OSError]]:
    """Delete attachment files, and each message's folder once empty; the failures."""
    storage = attachment_storage()
    folders, failed = set(), []
    for name in names:
        try:
            storage.delete(name)
        except OSError as exc:
            failed.append((name, exc))
        else:
            folders.add(os.path.dirname(name))
    for folder in folders:
        # Each message's files share a folder; on a local disk, drop it once empty.
        try:
            os.rmdir(storage.path(folder))
        except (NotImplementedError, OSError):
            pass  # not a local storage, or the folder still holds something
    return failed


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
    suppressed = {
        address
        for address, status in message.recipient_status.items()
        if status == states.RECIPIENT_SUPPRESSED
    }
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
        stream=message.stream,
        priority=PRIORITIES[message.priority],
        **options,
    ).without(suppressed)
