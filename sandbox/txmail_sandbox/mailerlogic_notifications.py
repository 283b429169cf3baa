"""MailerLogic webhook calls for messages the sandbox accepted.

MailerLogic publishes its event names (``email.delivered``, ``email.opened``,
``email.clicked``, ``email.bounced``, ``email.complained``) but neither the
payload nor the signature. The sandbox posts what django-txmail's adapter
reads (its module doc says the same): one event a call, ::

    {"id": "evt_…", "type": "email.bounced", "created_at": <Unix s>,
     "data": {"message_id", "email_id", "to", "metadata", "bounce_type",
              "reason", "smtp_response", "url", "user_agent", "ip"}}

signed with a lowercase hex HMAC-SHA256 of the body in
``X-MailerLogic-Signature``. A message has one recipient (``to``); its fate
is the mailbox simulator's (``mailbox_simulator.py``): delivered, bounced,
delivered then complained, or — MailerLogic names no rejection event — a
rejection reported as a bounce with ``bounce_type`` "rejected". With
``track_opens`` / ``track_clicks`` and an HTML body, an open and a click on
the first link follow the delivery.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import mailbox_simulator as simulator
from .state import ReceivedMessage
from .webhook_values import Notification, payload_identity

SIGNATURE_HEADER = "X-MailerLogic-Signature"


class MailerLogicNotifications:
    """The :class:`~.webhook_values.WebhookFormat` of MailerLogic."""

    signature_header = SIGNATURE_HEADER

    def identity(self, message: ReceivedMessage) -> str:
        return payload_identity(message.payload, ("from", "to", "cc", "bcc", "subject"))

    def notifications(self, message: ReceivedMessage, now: float) -> list[Notification]:
        payload = message.payload
        to = str(payload.get("to") or "")
        html = payload.get("html")
        fate = simulator.simulate(
            [to],
            html if isinstance(html, str) else None,
            bool(payload.get("track_opens")),
            bool(payload.get("track_clicks")),
        )
        sent = int(now)
        data = {
            "message_id": message.id,
            "to": to,
            "metadata": dict(payload.get("metadata") or {}),
        }

        def event(kind: str, when: int, **extra: Any) -> Notification:
            event_id = f"evt_{uuid.uuid4().hex}"
            body = {"id": event_id, "type": kind, "created_at": when, "data": data | extra}
            return Notification(event_id, kind, body)

        if fate.rejected:
            reason = "the message was rejected before delivery"
            return [event("email.bounced", sent, bounce_type="rejected", reason=reason)]
        if fate.bounced:
            diagnostic = simulator.BOUNCE_DIAGNOSTIC
            return [event("email.bounced", sent + 1, bounce_type="hard", smtp_response=diagnostic)]
        client = {"user_agent": simulator.USER_AGENT, "ip": simulator.IP}
        found = [event("email.delivered", sent + 1)]
        if fate.opened:
            found.append(event("email.opened", sent + 2, **client))
        if fate.clicked:
            found.append(event("email.clicked", sent + 3, url=fate.links[0], **client))
        if fate.complained:
            found.append(event("email.complained", sent + 4))
        return found

    def body(self, notification: Notification, attempt: int) -> bytes:
        return json.dumps(notification.payload, separators=(",", ":"), ensure_ascii=False).encode()
