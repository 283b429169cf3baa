"""Mailtrap webhook calls for messages the sandbox accepted.

PROVIDERS.md → Mailtrap → Webhooks: ``{"events": [...]}``, signed in
``Mailtrap-Signature``; each event names one recipient, with ``event``,
``message_id`` (the id Mailtrap answered for that recipient), ``event_id``
(the dedupe key), ``email``, ``timestamp``, ``sending_stream``,
``sending_domain_name``, ``category`` and ``custom_variables`` (which carry
the app's ``txmail_id``). What a message gets is the mailbox simulator's
fate (``mailbox_simulator.py``), recipient by recipient:

* ``delivery`` for each recipient that got it, ``bounce`` (with
  ``bounce_category``, ``response`` and ``response_code``) for each bounce,
  ``spam`` after the delivery for each complainer;
* a rejected message: ``reject`` for every recipient, with a ``reason``.

Opens and clicks are an account setting at Mailtrap, not a message's, so the
sandbox emits none. Each event is its own call (Mailtrap batches up to 500;
one a call is the case an app must handle anyway). Mail sent to a test inbox
(``/api/send/{inbox_id}``) is never delivered, so it emits nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import mailbox_simulator as simulator
from .state import ReceivedMessage
from .webhook_values import Notification, payload_identity

SIGNATURE_HEADER = "Mailtrap-Signature"
BOUNCE_CATEGORY = "bad_mailbox"
BOUNCE_CODE = 550


class MailtrapNotifications:
    """The :class:`~.webhook_values.WebhookFormat` of Mailtrap."""

    signature_header = SIGNATURE_HEADER

    def identity(self, message: ReceivedMessage) -> str:
        return payload_identity(message.payload, ("from", "to", "cc", "bcc", "subject"))

    def notifications(self, message: ReceivedMessage, now: float) -> list[Notification]:
        if message.inbox_id is not None:
            return []
        payload = message.payload
        recipients = [
            str(participant.get("email") or "")
            for key in ("to", "cc", "bcc")
            for participant in payload.get(key) or []
        ]
        # One message id per recipient, in the order Mailtrap answered them.
        ids = dict(zip(recipients, message.message_ids, strict=False))
        fate = simulator.simulate(recipients, None, False, False)
        sent = int(now)
        common = {
            "sending_stream": "transactional",
            "sending_domain_name": message.domain or "",
            "category": payload.get("category") or "",
            "custom_variables": dict(payload.get("custom_variables") or {}),
        }

        def event(kind: str, address: str, when: int, **extra: Any) -> Notification:
            event_id = str(uuid.uuid4())
            body = {
                "event": kind,
                "message_id": ids.get(address, message.id),
                "event_id": event_id,
                "email": address,
                "timestamp": when,
                **common,
                **extra,
            }
            return Notification(event_id, kind, body)

        if fate.rejected:
            reason = "the message was rejected before delivery"
            return [event("reject", address, sent, reason=reason) for address in recipients]
        found = [event("delivery", address, sent + 1) for address in fate.delivered]
        found += [
            event(
                "bounce",
                address,
                sent + 1,
                bounce_category=BOUNCE_CATEGORY,
                response=simulator.BOUNCE_DIAGNOSTIC,
                response_code=BOUNCE_CODE,
            )
            for address in fate.bounced
        ]
        found += [event("spam", address, sent + 4) for address in fate.complained]
        return found

    def body(self, notification: Notification, attempt: int) -> bytes:
        events = {"events": [notification.payload]}
        return json.dumps(events, separators=(",", ":"), ensure_ascii=False).encode()
