"""Nylas webhook notifications for messages the sandbox accepted.

PROVIDERS.md → Nylas → Webhooks: one CloudEvents-style envelope per
request, ``{specversion: "1.0", type, source, id, time,
webhook_delivery_attempt, data: {application_id, object}}``, signed in
``X-Nylas-Signature``. What a message gets is the mailbox simulator's
fate (``mailbox_simulator.py``):

* domain route (transactional send): one ``message.transactional.delivered``
  naming every recipient that got it, one ``...bounced`` naming the bounces
  (``bounce.type`` and a ``diagnostic_code`` per recipient), one
  ``...complaint`` for the complainers — Nylas groups recipients with the
  same outcome into one notification — or, for a rejected message, only
  ``...rejected``. ``object.message`` repeats the message as sent: ``id``,
  subject, ``from`` (a string), to/cc/bcc (address strings), ``sent_at``
  and ``metadata`` (which carries the app's ``txmail_id``);
* grant route (the user's own mailbox): no delivery notifications — the
  mailbox provider delivers, and Nylas's transactional notifications cover
  the domain route only — so such messages stay "sent";
* either route, with ``tracking_options.opens`` / ``links`` on and an HTML
  body: ``message.opened`` and ``message.link_clicked`` (``link_data`` lists
  the body's links; the first is clicked), with ``recents`` carrying the
  simulated client's ``user_agent`` and ``ip``.

A scheduled send (``send_at``) emits nothing: the sandbox never sends it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from . import mailbox_simulator as simulator
from .state import ReceivedMessage
from .webhook_values import Notification, payload_identity

APPLICATION_ID = "txmail-sandbox-application"
SIGNATURE_HEADER = "X-Nylas-Signature"
TRANSACTIONAL_SOURCE = "/nylas/transactional"
TRACKING_SOURCE = "/nylas/tracking"

#: The notification types the sandbox emits, in the order they happen.
DELIVERED = "message.transactional.delivered"
BOUNCED = "message.transactional.bounced"
COMPLAINT = "message.transactional.complaint"
REJECTED = "message.transactional.rejected"
OPENED = "message.opened"
CLICKED = "message.link_clicked"
EMITTED = (DELIVERED, BOUNCED, COMPLAINT, REJECTED, OPENED, CLICKED)

#: A notification found: its type, its ``data.object`` and when it happened (Unix s).
_Found = tuple[str, dict[str, Any], int]


class NylasNotifications:
    """The :class:`~.webhook_values.WebhookFormat` of Nylas."""

    signature_header = SIGNATURE_HEADER

    def identity(self, message: ReceivedMessage) -> str:
        return payload_identity(
            message.payload,
            ("from", "to", "cc", "bcc", "subject"),
            route=message.route,
            target=message.domain or message.grant_id,
        )

    def notifications(self, message: ReceivedMessage, now: float) -> list[Notification]:
        payload = message.payload
        if payload.get("send_at"):
            return []
        tracking = payload.get("tracking_options") or {}
        html = None if payload.get("is_plaintext") else payload.get("body")
        fate = simulator.simulate(
            _addresses(payload),
            html if isinstance(html, str) else None,
            bool(tracking.get("opens")),
            bool(tracking.get("links")),
        )
        sent = int(now)
        found = _transactional(message, fate, sent) if message.route == "domain" else []
        found += _tracking(message, fate, str(tracking.get("label") or ""), sent)
        return [_envelope(kind, obj, when) for kind, obj, when in found]

    def body(self, notification: Notification, attempt: int) -> bytes:
        envelope = dict(notification.payload)
        envelope["webhook_delivery_attempt"] = attempt
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def new_id() -> str:
    return str(uuid.uuid4())


def _addresses(payload: dict[str, Any]) -> list[str]:
    return [
        participant["email"]
        for key in ("to", "cc", "bcc")
        for participant in payload.get(key) or []
        if isinstance(participant, dict) and participant.get("email")
    ]


def _sender(message: ReceivedMessage) -> str:
    sender = message.payload.get("from")
    if isinstance(sender, list):
        sender = sender[0] if sender else {}
    return str((sender or {}).get("email") or "")


def _transactional(message: ReceivedMessage, fate: simulator.Fate, sent: int) -> list[_Found]:
    payload = message.payload
    base = {
        "message": {
            "id": message.id,
            "subject": payload.get("subject") or "",
            "from": _sender(message),
            **{key: [p["email"] for p in payload.get(key) or []] for key in ("to", "cc", "bcc")},
            "sent_at": sent,
            "metadata": dict(payload.get("metadata") or {}),
        }
    }
    if fate.rejected:
        return [(REJECTED, base | {"rejected_at": sent}, sent)]
    found: list[_Found] = []
    if fate.delivered:
        delivered = {"delivered_at": sent + 1, "recipients": list(fate.delivered)}
        found.append((DELIVERED, base | {"delivered": delivered}, sent + 1))
    if fate.bounced:
        recipients = [
            {"email": address, "diagnostic_code": simulator.BOUNCE_DIAGNOSTIC}
            for address in fate.bounced
        ]
        bounce = {"bounced_at": sent + 1, "type": simulator.BOUNCE_TYPE, "recipients": recipients}
        found.append((BOUNCED, base | {"bounce": bounce}, sent + 1))
    if fate.complained:
        complaint = {
            "reported_at": sent + 4,
            "type": simulator.COMPLAINT_TYPE,
            "complained_recipients": list(fate.complained),
        }
        found.append((COMPLAINT, base | {"complaint": complaint}, sent + 4))
    return found


def _tracking(
    message: ReceivedMessage, fate: simulator.Fate, label: str, sent: int
) -> list[_Found]:
    """An open two seconds after sending, a click on the first link a second later."""

    def tracked(when: int, recent: dict[str, Any], **extra: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"message_id": message.id, "label": label}
        if message.grant_id is not None:
            obj["grant_id"] = message.grant_id
        recent |= {"ip": simulator.IP, "timestamp": when, "user_agent": simulator.USER_AGENT}
        message_data = {"count": 1, "timestamp": when}
        return obj | {"message_data": message_data, **extra, "recents": [recent], "timestamp": when}

    found: list[_Found] = []
    if fate.opened:
        found.append((OPENED, tracked(sent + 2, {"opened_id": new_id()}), sent + 2))
    if fate.clicked:
        links = [{"count": int(index == 0), "url": url} for index, url in enumerate(fate.links)]
        recent = {"click_id": new_id(), "link_index": 0}
        found.append((CLICKED, tracked(sent + 3, recent, link_data=links), sent + 3))
    return found


def _envelope(kind: str, obj: dict[str, Any], when: int) -> Notification:
    identifier = new_id()
    source = TRACKING_SOURCE if kind in (OPENED, CLICKED) else TRANSACTIONAL_SOURCE
    envelope = {
        "specversion": "1.0",
        "type": kind,
        "source": source,
        "id": identifier,
        "time": when,
        "webhook_delivery_attempt": 1,
        "data": {"application_id": APPLICATION_ID, "object": obj},
    }
    return Notification(identifier, kind, envelope)
