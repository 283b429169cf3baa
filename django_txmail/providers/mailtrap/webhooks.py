"""Reading Mailtrap webhook calls (PROVIDERS.md → Mailtrap → Webhooks).

A call is ``{"events": [...]}`` or JSON Lines, at most 500 events, signed in
``Mailtrap-Signature``; ``event_id`` is the dedupe key and our message id
comes back in ``custom_variables.txmail_id``.

The form is read from the body, not from ``Content-Type``: a JSON Lines body
of one event is also a JSON object, and a mislabelled body must not cost a
batch of events. An event of a type we do not know (Mailtrap's account
activity events, say) is "unknown"; if it has no ``event_id``, a hash of its
content stands in, so that a redelivery is still recognised.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from django_txmail.exceptions import WebhookPayloadError
from django_txmail.providers.base import MESSAGE_ID_KEY, WebhookEvent, event_text

MAX_WEBHOOK_EVENTS = 500

#: Mailtrap event → our event type. Suspension and reject both mean Mailtrap
#: did not send to the recipient (account limits, suppression list).
EVENT_TYPES = {
    "delivery": "delivered",
    "open": "opened",
    "click": "clicked",
    "unsubscribe": "unsubscribed",
    "spam": "complained",
    "soft bounce": "deferred",
    "bounce": "bounced",
    "suspension": "rejected",
    "reject": "rejected",
}


def parse(body: bytes) -> list[WebhookEvent]:
    """The events of one webhook call; WebhookPayloadError if any is malformed."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookPayloadError("The webhook body is not UTF-8.") from None
    if not text.strip():
        raise WebhookPayloadError("The webhook body is empty.")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None  # several lines: JSON Lines
    if isinstance(document, dict) and "events" in document:
        items = document["events"]
        if not isinstance(items, list):
            raise WebhookPayloadError('A Mailtrap webhook body is {"events": [...]}.')
    else:
        lines = enumerate(text.splitlines(), 1)
        items = [_json(line, f"line {number}") for number, line in lines if line.strip()]
    if len(items) > MAX_WEBHOOK_EVENTS:
        raise WebhookPayloadError(
            f"Mailtrap sends at most {MAX_WEBHOOK_EVENTS} events a call; this body has "
            f"{len(items)}."
        )
    return [_event(item, index) for index, item in enumerate(items)]


def _json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError(f"Invalid JSON in {where}: {exc}") from None


def _event(item: Any, index: int) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError(f"Event {index} is not a JSON object.")
    provider_type = event_text(item, "event", index, required=True)
    known = provider_type in EVENT_TYPES
    timestamp = item.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
        raise WebhookPayloadError(f"Event {index}: 'timestamp' must be Unix seconds.")
    try:
        occurred_at = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        raise WebhookPayloadError(f"Event {index}: 'timestamp' is out of range.") from None
    variables = item.get("custom_variables") or {}
    if not isinstance(variables, dict):
        raise WebhookPayloadError(f"Event {index}: 'custom_variables' must be an object.")
    code = item.get("response_code")
    if code is not None and (isinstance(code, bool) or not isinstance(code, int)):
        raise WebhookPayloadError(f"Event {index}: 'response_code' must be a number.")
    response = event_text(item, "response", index)
    event_id = event_text(item, "event_id", index, required=known) or "sha256:" + (
        hashlib.sha256(json.dumps(item, sort_keys=True).encode()).hexdigest()
    )
    return WebhookEvent(
        provider_event_id=event_id,
        type=EVENT_TYPES.get(provider_type, "unknown"),
        provider_type=provider_type,
        occurred_at=occurred_at,
        raw=item,
        provider_message_id=event_text(item, "message_id", index, required=known),
        message_id=str(variables.get(MESSAGE_ID_KEY) or ""),
        recipient=event_text(item, "email", index, required=known),
        bounce_type=event_text(item, "bounce_category", index),
        reason=event_text(item, "reason", index),
        mta_response=" ".join(p for p in (str(code) if code is not None else "", response) if p),
        click_url=event_text(item, "url", index),
        user_agent=event_text(item, "user_agent", index),
        ip=event_text(item, "ip", index),
    )
