"""Nylas API v3: the domain route (transactional send) and the grant route.

Wire format: ``PROVIDERS.md`` → Nylas. In short:

* domain route ``POST /v3/domains/{domain}/messages/send``: ``from`` is one
  object; grant route ``POST /v3/grants/{grant_id}/messages/send``: ``from``
  is a one-element array.
* ``body`` is HTML unless ``is_plaintext``; Nylas takes one body, so a
  message with both parts sends the HTML one (the text part stays in the
  ``Message`` record). This is listed under the provider's quirks.
* every send carries ``Idempotency-Key`` (the message's own key, the same on
  every retry); a ``409 api.concurrent_idempotent_request`` means the first
  request is still in flight and is transient.
* a request whose JSON form would exceed 3 MB goes as ``multipart/form-data``
  (a ``message`` JSON field plus one file part per attachment); over 25 MB is
  refused before any request is made.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django.utils import timezone

from ..exceptions import InvalidMessage, MessageTooLarge
from ..outbound import Attachment, Feature, OutboundEmail
from .base import (
    USER_AGENT,
    Adapter,
    ProviderRequest,
    ProviderResponse,
    Route,
    SendResult,
    deep_merge,
)
from .multipart import MultipartBody

JSON_LIMIT = 3 * 1024 * 1024
MULTIPART_LIMIT = 25 * 1024 * 1024
METADATA_MAX_KEYS = 50
METADATA_MAX_VALUE = 500
SEND_AT_MIN = timedelta(minutes=1)
SEND_AT_MAX = timedelta(days=30)
#: Our message id travels in metadata so webhooks can be matched to it.
MESSAGE_ID_KEY = "txmail_id"
# Room for part headers and the closing boundary in size estimates.
_PART_OVERHEAD = 512


class NylasAdapter(Adapter):
    name = "nylas"
    required_credentials = ("API_KEY",)
    routes = frozenset({"domain", "grant"})
    features = frozenset(
        {
            Feature.CC,
            Feature.BCC,
            Feature.REPLY_TO,
            Feature.MULTIPLE_REPLY_TO,
            Feature.ATTACHMENTS,
            Feature.INLINE_IMAGES,
            Feature.HEADERS,
            Feature.METADATA,
            Feature.SEND_AT,
            Feature.PROVIDER_TEMPLATE,
            Feature.TRACK_OPENS,
            Feature.TRACK_CLICKS,
            Feature.REPLY_TO_MESSAGE_ID,
            Feature.ESP_EXTRA,
        }
    )

    # -- checks ----------------------------------------------------------------

    def check(self, email: OutboundEmail, route: Route) -> None:
        super().check(email, route)
        self._metadata(email)  # raises on bad metadata
        if email.send_at and email.send_at - timezone.now() > SEND_AT_MAX:
            raise InvalidMessage(
                f"Nylas schedules at most 30 days ahead; send_at is {email.send_at:%Y-%m-%d %H:%M}"
                " UTC. Send it later or pick an earlier time."
            )
        size = self._multipart_size(email)
        if size > MULTIPART_LIMIT:
            raise MessageTooLarge(
                f"The message is {size / 2**20:.1f} MB; Nylas accepts at most "
                f"{MULTIPART_LIMIT // 2**20} MB including attachments. Send large files as links."
            )

    def _metadata(self, email: OutboundEmail) -> dict[str, str]:
        metadata: dict[str, str] = {}
        for key, value in email.metadata.items():
            if isinstance(value, dict | list) or value is None:
                raise InvalidMessage(
                    f"Nylas metadata values must be strings or numbers; {key!r} is "
                    f"{type(value).__name__}."
                )
            text = str(value).lower() if isinstance(value, bool) else str(value)
            if len(text) > METADATA_MAX_VALUE:
                raise InvalidMessage(
                    f"Nylas metadata values are at most {METADATA_MAX_VALUE} characters; "
                    f"{key!r} has {len(text)}."
                )
            metadata[key] = text
        if MESSAGE_ID_KEY in metadata:
            raise InvalidMessage(f"The metadata key {MESSAGE_ID_KEY!r} is reserved.")
        if len(metadata) + 1 > METADATA_MAX_KEYS:
            raise InvalidMessage(
                f"Nylas takes at most {METADATA_MAX_KEYS} metadata keys and one is used to "
                f"track the message; this message has {len(metadata)}."
            )
        if email.message_id is not None:
            metadata[MESSAGE_ID_KEY] = str(email.message_id)
        return metadata

    # -- building the request --------------------------------------------------

    def _payload(self, email: OutboundEmail, route: Route) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "from": email.from_email.as_dict(),
            "to": [a.as_dict() for a in email.to],
        }
        if route.kind == "grant":
            payload["from"] = [payload["from"]]
        for key in ("cc", "bcc", "reply_to"):
            if addresses := getattr(email, key):
                payload[key] = [a.as_dict() for a in addresses]
        if email.subject or not email.template_id:
            payload["subject"] = email.subject
        if email.html is not None:
            payload["body"] = email.html
        elif email.text is not None:
            payload["body"] = email.text
            payload["is_plaintext"] = True
        elif not email.template_id:
            payload["body"] = ""
            payload["is_plaintext"] = True
        if email.headers:
            payload["custom_headers"] = [{"name": k, "value": v} for k, v in email.headers.items()]
        if metadata := self._metadata(email):
            payload["metadata"] = metadata
        tracking = {}
        if email.track_opens is not None:
            tracking["opens"] = email.track_opens
        if email.track_clicks is not None:
            tracking["links"] = email.track_clicks
        if tracking:
            payload["tracking_options"] = tracking
        if email.send_at and email.send_at - timezone.now() >= SEND_AT_MIN:
            # Less than a minute ahead is "now" for Nylas; it is sent at once.
            payload["send_at"] = int(email.send_at.timestamp())
        if email.template_id:
            payload["template"] = {
                "id": email.template_id,
                "strict": True,
                "variables": email.template_vars,
            }
        if email.reply_to_message_id:
            payload["reply_to_message_id"] = email.reply_to_message_id
        return payload

    @staticmethod
    def _attachment_meta(attachment: Attachment) -> dict[str, Any]:
        meta = {
            "filename": attachment.filename,
            "content_type": attachment.mimetype,
            "content_disposition": "inline" if attachment.inline else "attachment",
        }
        if attachment.content_id:
            meta["content_id"] = attachment.content_id
        return meta

    def _multipart_size(self, email: OutboundEmail) -> int:
        message_json = len(json.dumps(self._payload(email, Route("domain", ""))).encode())
        files = sum(a.size + len(a.filename) + _PART_OVERHEAD for a in email.attachments)
        return message_json + _PART_OVERHEAD + files

    def _json_size(self, payload: dict[str, Any], email: OutboundEmail) -> int:
        encoded = sum(4 * ((a.size + 2) // 3) + _PART_OVERHEAD for a in email.attachments)
        return len(json.dumps(payload).encode()) + encoded

    def url(self, route: Route) -> str:
        if route.kind == "grant":
            return (
                f"{self.account.api_uri}/v3/grants/{quote(route.grant_id, safe='')}/messages/send"
            )
        return f"{self.account.api_uri}/v3/domains/{quote(route.domain, safe='')}/messages/send"

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        payload = self._payload(email, route)
        headers = {
            "Authorization": f"Bearer {self.account.credentials.get('API_KEY', '')}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if email.idempotency_key:
            headers["Idempotency-Key"] = email.idempotency_key
        if email.attachments and self._json_size(payload, email) > JSON_LIMIT:
            payload["attachments"] = [self._attachment_meta(a) for a in email.attachments]
            body = MultipartBody()
            body.add_part(
                "message",
                "application/json",
                data=json.dumps(deep_merge(payload, email.esp_extra)).encode(),
            )
            for index, attachment in enumerate(email.attachments):
                body.add_part(
                    attachment.content_id or f"file{index}",
                    attachment.mimetype,
                    opener=attachment.open,
                    size=attachment.size,
                    filename=attachment.filename,
                )
            headers["Content-Type"] = body.content_type
            return ProviderRequest(
                "POST", self.url(route), headers, body=body.finish(), transport="multipart"
            )
        if email.attachments:
            payload["attachments"] = [
                {**self._attachment_meta(a), "content": base64.b64encode(a.read()).decode()}
                for a in email.attachments
            ]
        headers["Content-Type"] = "application/json"
        return ProviderRequest(
            "POST", self.url(route), headers, json_body=deep_merge(payload, email.esp_extra)
        )

    # -- reading the response --------------------------------------------------

    def parse_send(self, response: ProviderResponse, route: Route) -> SendResult:
        body = response.json()
        if not isinstance(body, dict):
            body = {}
        request_id = str(body.get("request_id") or "")
        if response.status in (200, 201, 202):
            data = body.get("data") if isinstance(body.get("data"), dict) else {}
            return SendResult(
                provider_message_id=str(data.get("id") or ""),
                request_id=request_id,
                schedule_id=str(data.get("schedule_id") or ""),
                idempotent_replay=response.header("Idempotent-Response").lower() == "true",
            )
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        error_type = str(error.get("type") or "")
        message = str(error.get("message") or "") or response.body[:300].decode("utf-8", "replace")
        exc = self.api_error(response, message or "no error message", error_type, request_id)
        if response.status == 409 and error_type == "api.concurrent_idempotent_request":
            # The first request with this key is still being processed; ask again later.
            exc.transient = True
        raise exc
