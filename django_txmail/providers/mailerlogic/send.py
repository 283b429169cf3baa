"""MailerLogic: ``POST /api/v1/send`` from a verified domain.

Wire format: ``PROVIDERS.md`` → MailerLogic. In short:

* ``X-API-Key`` authenticates; ``domain`` is the route's sending domain.
* addresses are strings, display names included (``"Shop" <hi@shop.io>``):
  ``from``, one ``to``, one ``reply_to``, arrays ``cc`` and ``bcc``.
  MailerLogic takes **one To recipient a call**, so a message with several
  raises ``UnsupportedFeature`` unless the account opts in to splitting it
  (below).
* ``subject`` is required; ``html`` and ``text`` both go.
* one tag is ``tag``; ``stream_type`` is ``transactional``, ``broadcast`` or
  ``shared`` (``msg.stream_type``, else the message's stream when it is one
  of these); metadata goes as ``metadata`` (stored by MailerLogic, not put
  in the mail) with our message id under ``txmail_id``.
* a calendar invitation is ``icalEvent``: from ``msg.ical_event``, or from a
  single ``text/calendar`` alternative part.
* attachments are ``{filename, content, contentType, encoding: "base64"}``:
  at most 10 MB a file and 25 MB in all (decimal megabytes, the safe reading),
  refused before any request. MailerLogic has no Content-ID, so inline
  images cannot be sent.

**Splitting, opt-in.** With the account option ``SPLIT_RECIPIENTS: True``,
``split`` turns a message with N To recipients into N messages, one per To
recipient, each recorded as its own ``Message``: same subject, bodies,
attachments, headers, tags and metadata; Cc and Bcc go with the first part
only, so nobody receives it twice; a caller's idempotency key ``k`` becomes
``k:1`` … ``k:N`` (a key too long for the suffix is first replaced by its
SHA-256), so sending again with ``k`` is still recognised part by part. The
price, and why it is not the default: the recipients no longer see each
other in To; there are N provider calls, N provider message ids, N statuses
and N sets of delivery events; and the parts succeed or fail on their own,
so one refused or retried part does not hold back the others.

**No idempotency.** MailerLogic documents no idempotency key, so a request
that times out after MailerLogic accepted it is sent again by the retry;
the ``txmail_id`` in its metadata ties the copies to one message. No
``Idempotency-Key`` header is sent, so no one reads the request log as
protected.

**Webhooks.** MailerLogic publishes its event names (``email.delivered``,
``email.opened``, ``email.clicked``, ``email.bounced``, ``email.complained``)
but not their payload or signature. We assume — and the docs say so — one
event per body, or several as ``{"events": [...]}``, each shaped::

    {"id": "evt_…", "type": "email.bounced", "created_at": "2025-05-01T12:00:00Z",
     "data": {"message_id": "…", "email_id": "…", "to": "ann@example.com",
              "metadata": {"txmail_id": "…"}, "bounce_type": "hard",
              "reason": "…", "smtp_response": "550 5.1.1 …",
              "url": "…", "user_agent": "…", "ip": "…"}}

``created_at`` may also be Unix seconds. The signature is taken to be the
lowercase hex HMAC-SHA256 of the raw body in ``X-MailerLogic-Signature``;
an account's ``WEBHOOK_SIGNATURE_HEADER`` option names another header.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from django_txmail.conf import ProviderAccount
from django_txmail.dns.records import RequiredRecord
from django_txmail.exceptions import (
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnsupportedFeature,
    WebhookPayloadError,
)
from django_txmail.outbound_email import MAX_IDEMPOTENCY_KEY, Feature, OutboundEmail
from django_txmail.providers.base import (
    MESSAGE_ID_KEY,
    USER_AGENT,
    Adapter,
    ProviderRequest,
    ProviderResponse,
    Route,
    SendResult,
    WebhookEvent,
    deep_merge,
    event_text,
)
from django_txmail.providers.mailerlogic.domains import mailerlogic_records

ATTACHMENT_LIMIT = 10_000_000
ATTACHMENTS_LIMIT = 25_000_000
STREAM_TYPES = ("transactional", "broadcast", "shared")
CALENDAR = "text/calendar"
#: The account option that splits a message into one message per To recipient.
SPLIT_OPTION = "SPLIT_RECIPIENTS"
EVENT_TYPES = {
    "email.delivered": "delivered",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.bounced": "bounced",
    "email.complained": "complained",
}


class MailerLogicAdapter(Adapter):
    name = "mailerlogic"
    required_credentials = ("API_KEY",)
    account_options = frozenset({SPLIT_OPTION})
    features = frozenset(
        {
            Feature.CC,
            Feature.BCC,
            Feature.REPLY_TO,
            Feature.ATTACHMENTS,
            Feature.HEADERS,
            # Only a single text/calendar part, which becomes icalEvent (see check).
            Feature.ALTERNATIVES,
            Feature.METADATA,
            Feature.TAGS,
            Feature.TRACK_OPENS,
            Feature.TRACK_CLICKS,
            Feature.ICAL_EVENT,
            Feature.STREAM_TYPE,
            Feature.ESP_EXTRA,
        }
    )
    webhook_signature_header = "X-MailerLogic-Signature"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        self.split_recipients = account.options.get(SPLIT_OPTION, False)
        if not isinstance(self.split_recipients, bool):
            raise ImproperlyConfigured(
                f"TXMAIL['PROVIDERS'][{account.name!r}][{SPLIT_OPTION!r}] must be True or False."
            )

    def split(self, email: OutboundEmail) -> list[OutboundEmail]:
        """One message per To recipient when the account sets ``SPLIT_RECIPIENTS``.

        Cc and Bcc go with the first part only; a caller's idempotency key
        gets the part's number (see the module doc).
        """
        if not self.split_recipients or len(email.to) < 2:
            return [email]
        return [
            replace(
                email,
                to=[recipient],
                cc=email.cc if number == 1 else [],
                bcc=email.bcc if number == 1 else [],
                idempotency_key=part_key(email.idempotency_key, number),
            )
            for number, recipient in enumerate(email.to, start=1)
        ]

    # -- checks ----------------------------------------------------------------

    def check(self, email: OutboundEmail, route: Route) -> None:
        super().check(email, route)
        if len(email.to) > 1:
            raise UnsupportedFeature(
                self.account.name,
                "more than one To recipient",
                f"MailerLogic takes one To address a message; set {SPLIT_OPTION!r}: True on "
                "the account to send one message per recipient, or put the others in cc.",
            )
        self._ical_event(email)
        if email.stream_type and email.stream_type not in STREAM_TYPES:
            raise InvalidMessage(
                f"MailerLogic's stream_type is one of {', '.join(STREAM_TYPES)}, "
                f"not {email.stream_type!r}."
            )
        if not email.subject:
            raise InvalidMessage("MailerLogic needs a subject; give the message one.")
        if MESSAGE_ID_KEY in email.metadata:
            raise InvalidMessage(f"The metadata key {MESSAGE_ID_KEY!r} is reserved.")
        for attachment in email.attachments:
            if not attachment.filename:
                raise InvalidMessage("MailerLogic needs a filename for every attachment.")
            if attachment.size > ATTACHMENT_LIMIT:
                raise MessageTooLarge(
                    f"{attachment.filename!r} is {attachment.size / 1e6:.1f} MB; MailerLogic "
                    f"accepts files up to {ATTACHMENT_LIMIT // 1_000_000} MB. "
                    "Send large files as links."
                )
        total = sum(a.size for a in email.attachments)
        if total > ATTACHMENTS_LIMIT:
            raise MessageTooLarge(
                f"The attachments are {total / 1e6:.1f} MB together; MailerLogic accepts up "
                f"to {ATTACHMENTS_LIMIT // 1_000_000} MB a message. Send large files as links."
            )

    def _ical_event(self, email: OutboundEmail) -> str:
        """The invitation: ``msg.ical_event`` or the one text/calendar alternative."""
        calendars = [c for c, mimetype in email.alternatives if mimetype.startswith(CALENDAR)]
        if len(calendars) != len(email.alternatives) or len(calendars) > 1:
            raise UnsupportedFeature(
                self.account.name,
                "alternative parts other than text/html and one text/calendar invitation",
            )
        if calendars and email.ical_event:
            raise InvalidMessage(
                "The message has both ical_event and a text/calendar alternative; give the "
                "invitation once."
            )
        return email.ical_event or (calendars[0] if calendars else "")

    # -- building the request --------------------------------------------------

    def _payload(self, email: OutboundEmail, route: Route) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "domain": route.domain,
            "from": str(email.from_email),
            "subject": email.subject,
        }
        if email.to:
            payload["to"] = str(email.to[0])
        if email.reply_to:
            payload["reply_to"] = str(email.reply_to[0])
        for field in ("cc", "bcc"):
            if addresses := getattr(email, field):
                payload[field] = [str(a) for a in addresses]
        if email.html is not None:
            payload["html"] = email.html
        if email.text is not None:
            payload["text"] = email.text
        for field in ("track_opens", "track_clicks"):
            if getattr(email, field) is not None:
                payload[field] = getattr(email, field)
        if email.headers:
            payload["headers"] = email.headers
        if email.tags:
            payload["tag"] = email.tags[0]
        # Our stream is MailerLogic's stream_type where it names one of its own;
        # msg.stream_type, given, says it outright.
        stream_type = email.stream_type or (email.stream if email.stream in STREAM_TYPES else "")
        if stream_type:
            payload["stream_type"] = stream_type
        metadata = dict(email.metadata)
        if email.message_id is not None:
            metadata[MESSAGE_ID_KEY] = str(email.message_id)
        if metadata:
            payload["metadata"] = metadata
        if ical_event := self._ical_event(email):
            payload["icalEvent"] = ical_event
        if email.attachments:
            payload["attachments"] = [
                {
                    "filename": a.filename,
                    "content": base64.b64encode(a.read()).decode(),
                    "contentType": a.mimetype,
                    "encoding": "base64",
                }
                for a in email.attachments
            ]
        return deep_merge(payload, email.esp_extra)

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        headers = {
            "X-API-Key": self.account.credentials.get("API_KEY", ""),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        body = json.dumps(self._payload(email, route), separators=(",", ":")).encode()
        return ProviderRequest("POST", f"{self.account.api_uri}/api/v1/send", headers, body=body)

    # -- reading responses -----------------------------------------------------

    def parse_send(self, response: ProviderResponse, route: Route) -> SendResult:
        body = response.json()
        if not isinstance(body, dict):
            body = {}
        if 200 <= response.status < 300:
            message_id = str(body.get("message_id") or "")
            return SendResult(
                provider_message_id=message_id,
                provider_message_ids=(message_id,) if message_id else (),
            )
        raise self._error(response, body)

    def _error(self, response: ProviderResponse, body: dict[str, Any]) -> ProviderAPIError:
        message = str(body.get("message") or "") or response.body[:300].decode("utf-8", "replace")
        if body.get("reason"):
            message = f"{message} ({body['reason']})"
        if response.status == 403:
            message += " (check the account's API_KEY and that it may send from this domain)"
        elif response.status == 404:
            message += " (is the sending domain added and verified at MailerLogic?)"
        return self.api_error(response, message or "no error message", str(body.get("error") or ""))

    # -- webhooks --------------------------------------------------------------

    def required_records(self, domain: str) -> list[RequiredRecord]:
        return mailerlogic_records(domain)

    def parse_webhook(self, body: bytes, content_type: str) -> list[WebhookEvent]:
        """Events from one event object or ``{"events": [...]}`` (see the module doc)."""
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise WebhookPayloadError(f"The webhook body is not JSON: {exc}") from None
        if isinstance(document, dict) and "events" in document:
            items = document["events"]
            if not isinstance(items, list):
                raise WebhookPayloadError("'events' must be an array of events.")
        else:
            items = [document]
        return [_event(item, index) for index, item in enumerate(items)]


def part_key(key: str, number: int) -> str:
    """The idempotency key of part ``number`` of a split message ("" stays "")."""
    if not key:
        return ""
    suffix = f":{number}"
    if len(key) + len(suffix) > MAX_IDEMPOTENCY_KEY:
        key = hashlib.sha256(key.encode()).hexdigest()
    return f"{key}{suffix}"


def _event(item: Any, index: int) -> WebhookEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError(f"Event {index} is not a JSON object.")
    data = item.get("data")
    if not isinstance(data, dict):
        raise WebhookPayloadError(f"Event {index} has no 'data' object.")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise WebhookPayloadError(f"Event {index}: 'data.metadata' must be an object.")
    provider_type = event_text(item, "type", index, required=True)

    def field(key: str) -> str:
        return event_text(data, key, index, where="data.")

    return WebhookEvent(
        provider_event_id=event_text(item, "id", index, required=True),
        type=EVENT_TYPES.get(provider_type, "unknown"),
        provider_type=provider_type,
        occurred_at=_time(item.get("created_at"), index),
        raw=item,
        provider_message_id=field("message_id") or field("email_id"),
        message_id=str(metadata.get(MESSAGE_ID_KEY) or ""),
        recipient=field("to"),
        bounce_type=field("bounce_type"),
        reason=field("reason"),
        mta_response=field("smtp_response"),
        click_url=field("url"),
        user_agent=field("user_agent"),
        ip=field("ip"),
    )


def _time(value: Any, index: int) -> datetime:
    """``created_at`` as an aware datetime, from ISO 8601 or Unix seconds."""
    try:
        if isinstance(value, str):
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if when.tzinfo is None:
                raise ValueError("no time zone")
            return when.astimezone(UTC)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        pass
    raise WebhookPayloadError(
        f"Event {index}: 'created_at' must be an ISO 8601 time with a zone, or Unix seconds."
    )
