"""Reading Nylas webhook notifications (PROVIDERS.md → Nylas → Webhooks).

A notification is one CloudEvents-style envelope per request:
``{specversion, type, source, id, time, webhook_delivery_attempt, data:
{application_id, object}}``; ``id`` is the same on every redelivery.

A transactional event can name several recipients (``delivered.recipients``,
``bounce.recipients``, ``complaint.complained_recipients``); it becomes one
event per recipient, with ids ``<id>:<address>``, so each recipient's status
moves on its own.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django_txmail.exceptions import WebhookPayloadError
from django_txmail.providers.base import MESSAGE_ID_KEY, WebhookEvent
from django_txmail.providers.nylas.grants import STATUS_OF_WEBHOOK

TYPES = {
    "message.transactional.delivered": "delivered",
    "message.transactional.bounced": "bounced",
    "message.transactional.complaint": "complained",
    "message.transactional.rejected": "rejected",
    "message.opened": "opened",
    "message.link_clicked": "clicked",
}


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"Nylas webhook: {what} must be an object.")
    return value


def _when(value: Any, fallback: datetime | None = None) -> datetime:
    if value in (None, "") and fallback is not None:
        return fallback
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WebhookPayloadError(f"Nylas webhook: {value!r} is not a Unix time.")
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookPayloadError(f"Nylas webhook: {value!r} is not a Unix time.") from None


def _addresses(values: Any, what: str) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise WebhookPayloadError(f"Nylas webhook: {what} must be a list.")
    result = []
    for value in values:
        if isinstance(value, dict):
            value = value.get("email")
        if not isinstance(value, str) or not value:
            raise WebhookPayloadError(f"Nylas webhook: {what} must hold addresses.")
        result.append(value)
    return result


def parse(body: bytes) -> list[WebhookEvent]:
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookPayloadError("Nylas webhook: the body is not JSON.") from None
    envelope = _object(envelope, "the notification")
    event_id, kind = envelope.get("id"), envelope.get("type")
    if not isinstance(event_id, str) or not event_id or not isinstance(kind, str):
        raise WebhookPayloadError("Nylas webhook: 'id' and 'type' are required strings.")
    data = _object(envelope.get("data"), "'data'")
    obj = _object(data.get("object"), "'data.object'")
    sent = _when(envelope.get("time"))
    event_type = TYPES.get(kind, "unknown")
    base: dict[str, Any] = {"provider_type": kind, "type": event_type, "raw": envelope}

    if kind.startswith("message.transactional."):
        message = _object(obj.get("message", {}), "'message'")
        metadata = message.get("metadata") if isinstance(message.get("metadata"), dict) else {}
        base |= {
            "provider_message_id": str(message.get("id") or ""),
            "message_id": str(metadata.get(MESSAGE_ID_KEY) or ""),
        }
        return _transactional(kind, event_id, obj, base, sent)
    if kind in ("message.opened", "message.link_clicked"):
        recent = obj.get("recents") if isinstance(obj.get("recents"), list) else []
        latest = recent[-1] if recent and isinstance(recent[-1], dict) else {}
        links = obj.get("link_data") if isinstance(obj.get("link_data"), list) else []
        url = ""
        if kind == "message.link_clicked" and isinstance(latest.get("link_index"), int):
            index = latest["link_index"]
            if 0 <= index < len(links) and isinstance(links[index], dict):
                url = str(links[index].get("url") or "")
        return [
            WebhookEvent(
                provider_event_id=event_id,
                occurred_at=_when(obj.get("timestamp"), sent),
                provider_message_id=str(obj.get("message_id") or ""),
                user_agent=str(latest.get("user_agent") or ""),
                ip=str(latest.get("ip") or ""),
                click_url=url,
                **base,
            )
        ]
    if kind in STATUS_OF_WEBHOOK:
        grant_id = obj.get("grant_id")
        if not isinstance(grant_id, str) or not grant_id:
            raise WebhookPayloadError(f"Nylas webhook: {kind} needs 'data.object.grant_id'.")
        base |= {"grant_id": grant_id, "grant_status": STATUS_OF_WEBHOOK[kind]}
        when = obj.get("grant_updated_at") or obj.get("created_at")
        return [
            WebhookEvent(
                provider_event_id=event_id,
                occurred_at=_when(when, sent),
                recipient=str(obj.get("email") or ""),
                **base,
            )
        ]
    return [WebhookEvent(provider_event_id=event_id, occurred_at=sent, **base)]


def _transactional(
    kind: str, event_id: str, obj: dict[str, Any], base: dict[str, Any], sent: datetime
) -> list[WebhookEvent]:
    def one(recipient: str, when: datetime, **details: str) -> WebhookEvent:
        suffix = f":{recipient.lower()}" if recipient else ""
        return WebhookEvent(
            provider_event_id=f"{event_id}{suffix}",
            occurred_at=when,
            recipient=recipient,
            **base,
            **details,
        )

    if kind == "message.transactional.delivered":
        delivered = _object(obj.get("delivered"), "'delivered'")
        when = _when(delivered.get("delivered_at"), sent)
        recipients = _addresses(delivered.get("recipients"), "'delivered.recipients'")
        return [one(r, when) for r in recipients] or [one("", when)]
    if kind == "message.transactional.bounced":
        bounce = _object(obj.get("bounce"), "'bounce'")
        when = _when(bounce.get("bounced_at"), sent)
        bounce_type = str(bounce.get("type") or "")
        entries = bounce.get("recipients") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise WebhookPayloadError("Nylas webhook: 'bounce.recipients' must list objects.")
        return [
            one(
                str(entry.get("email") or ""),
                when,
                bounce_type=bounce_type,
                reason=str(entry.get("diagnostic_code") or ""),
            )
            for entry in entries
        ] or [one("", when, bounce_type=bounce_type)]
    if kind == "message.transactional.complaint":
        complaint = _object(obj.get("complaint"), "'complaint'")
        when = _when(complaint.get("reported_at"), sent)
        reason = str(complaint.get("type") or "")
        recipients = _addresses(
            complaint.get("complained_recipients"), "'complaint.complained_recipients'"
        )
        return [one(r, when, reason=reason) for r in recipients] or [one("", when, reason=reason)]
    if kind == "message.transactional.rejected":
        return [one("", _when(obj.get("rejected_at"), sent))]
    return [one("", sent)]
