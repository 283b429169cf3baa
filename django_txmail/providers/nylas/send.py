"""Nylas API v3: the domain route (transactional send) and the grant route.

Wire format: ``PROVIDERS.md`` → Nylas. In short:

* domain route ``POST /v3/domains/{domain}/messages/send``: ``from`` is one
  object; grant route ``POST /v3/grants/{grant_id}/messages/send``: ``from``
  is a one-element array.
* ``body`` is HTML unless ``is_plaintext``; Nylas takes one body, so a
  message with both parts sends the HTML one (the text part stays in the
  ``Message`` record). This is listed under the provider's quirks.
* every send carries ``Idempotency-Key`` (the message's own key, the same on
  every retry), and the request body is a function of the stored message
  only — never of the clock — so a retry is byte-for-byte the same request.
  A ``409 api.concurrent_idempotent_request`` means the first request is
  still in flight and is transient.
* a request whose JSON form would exceed 3 MB goes as ``multipart/form-data``:
  a ``message`` JSON field without the attachments, then one part per file,
  named by its Content-ID if it is an inline image and ``file{N}`` otherwise,
  as Nylas's own SDK sends them (Nylas takes a part's name as its Content-ID,
  so an inline image in a ``file{N}`` part would lose its ``cid:`` link). An
  inline image whose Content-ID cannot be a part's name (``message``, or
  ``file{N}`` itself) is refused by ``check``. Over 25 MB is refused before
  any request is made. Limits are counted in decimal megabytes, the safe
  reading of "MB".
* the provider schedules ``send_at`` itself on the grant route, where
  schedules can be listed and cancelled; other scheduled mail waits in the
  outbox until it is due.
* the sending domain's DNS records come from the Manage Domains API, signed
  as a service account: ``nylas_domains.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django_txmail.exceptions import InvalidMessage, MessageTooLarge, ProviderAPIError
from django_txmail.outbound_email import Attachment, Feature, OutboundEmail
from django_txmail.providers.base import (
    MESSAGE_ID_KEY,
    USER_AGENT,
    Adapter,
    ProviderRequest,
    ProviderResponse,
    RegisteredWebhook,
    Route,
    SendResult,
    WebhookEvent,
    deep_merge,
)
from django_txmail.providers.multipart import MultipartBody
from django_txmail.providers.nylas import webhooks as nylas_webhooks
from django_txmail.providers.nylas.domains import NylasDomainsMixin
from django_txmail.providers.nylas.grants import NylasGrantsMixin

JSON_LIMIT = 3_000_000
MULTIPART_LIMIT = 25_000_000
METADATA_MAX_KEYS = 50
METADATA_MAX_VALUE = 500
#: Nylas wants send_at at least a minute ahead; the margin covers the time
#: between our decision and the provider receiving the request.
SCHEDULE_WINDOW = (timedelta(minutes=1, seconds=30), timedelta(days=30))


class NylasAdapter(NylasGrantsMixin, NylasDomainsMixin, Adapter):
    name = "nylas"
    required_credentials = ("API_KEY",)
    #: CLIENT_ID: the Nylas application's client id, for Hosted OAuth (grants/connect/);
    #: PKCE: False to connect without PKCE (on by default).
    account_options = NylasDomainsMixin.account_options | {"CLIENT_ID", "PKCE"}
    idempotency_window = 3600  # "Response cached 1 hour" (Idempotency-Key)
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
            Feature.PROVIDER_TEMPLATE,
            Feature.TRACK_OPENS,
            Feature.TRACK_CLICKS,
            Feature.REPLY_TO_MESSAGE_ID,
            Feature.ESP_EXTRA,
        }
    )

    webhook_signature_header = "X-Nylas-Signature"

    def webhook_challenge(self, query) -> str | None:
        # A repeated parameter: the first value, as Nylas's SDK reads it (Django's .get
        # gives the last).
        values = (
            query.getlist("challenge") if hasattr(query, "getlist") else [query.get("challenge")]
        )
        challenge = values[0] if values else None
        return challenge if isinstance(challenge, str) and challenge else None

    def parse_webhook(self, body: bytes, content_type: str) -> list[WebhookEvent]:
        return nylas_webhooks.parse(body)

    def build_register_webhook(
        self, url: str, triggers: Sequence[str] | None = None
    ) -> ProviderRequest:
        """``POST /v3/webhooks``; Nylas first checks the URL with ``GET ?challenge=``."""
        body = {
            "trigger_types": list(triggers or nylas_webhooks.TYPES),
            "webhook_url": url,
            "description": f"django-txmail ({self.account.name})",
        }
        headers = self._headers() | {"Content-Type": "application/json"}
        endpoint = f"{self.account.api_uri}/v3/webhooks"
        return ProviderRequest("POST", endpoint, headers, body=json.dumps(body).encode())

    def parse_register_webhook(self, response: ProviderResponse) -> RegisteredWebhook:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if response.status not in (200, 201):
            raise self._error(response, body)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        webhook_id, secret = data.get("id"), data.get("webhook_secret")
        if not isinstance(webhook_id, str) or not isinstance(secret, str) or not secret:
            raise self.api_error(
                response,
                "Nylas created no webhook: the answer has no data.id and data.webhook_secret.",
                request_id=str(body.get("request_id") or ""),
            )
        triggers = data.get("trigger_types") if isinstance(data.get("trigger_types"), list) else []
        return RegisteredWebhook(
            id=webhook_id,
            url=str(data.get("webhook_url") or ""),
            secret=secret,
            triggers=tuple(str(t) for t in triggers),
        )

    def build_list_webhooks(self) -> ProviderRequest:
        return ProviderRequest("GET", f"{self.account.api_uri}/v3/webhooks", self._headers())

    def parse_list_webhooks(self, response: ProviderResponse) -> list[RegisteredWebhook]:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if response.status != 200:
            raise self._error(response, body)
        data = body.get("data") if isinstance(body.get("data"), list) else []
        return [
            RegisteredWebhook(
                id=str(item.get("id") or ""),
                url=str(item.get("webhook_url") or ""),
                secret="",  # shown only at creation
                triggers=tuple(str(t) for t in item.get("trigger_types") or ()),
            )
            for item in data
            if isinstance(item, dict)
        ]

    def build_delete_webhook(self, webhook_id: str) -> ProviderRequest:
        endpoint = f"{self.account.api_uri}/v3/webhooks/{quote(webhook_id, safe='')}"
        return ProviderRequest("DELETE", endpoint, self._headers())

    def parse_delete_webhook(self, response: ProviderResponse) -> None:
        if response.status not in (200, 202, 204):
            body = response.json()
            raise self._error(response, body if isinstance(body, dict) else {})

    def scheduling_window(self, route: Route) -> tuple[timedelta, timedelta] | None:
        return SCHEDULE_WINDOW if route.kind == "grant" else None

    # -- checks ----------------------------------------------------------------

    def check(self, email: OutboundEmail, route: Route) -> None:
        super().check(email, route)
        self._metadata(email)  # raises on metadata Nylas cannot take
        payload = self.payload(email, route)
        if self._json_size(payload, email) <= JSON_LIMIT:
            return
        size = len(self._multipart(payload, email))  # raises on part names it cannot carry
        if size > MULTIPART_LIMIT:
            raise MessageTooLarge(
                f"The message is {size / 1e6:.1f} MB; Nylas accepts at most "
                f"{MULTIPART_LIMIT // 1_000_000} MB including attachments. "
                "Send large files as links."
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

    def build_payload(self, email: OutboundEmail, route: Route) -> dict[str, Any]:
        """The JSON body without attachments and before ``esp_extra``."""
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
        if email.send_at:
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

    def _with_attachments(self, payload: dict[str, Any], email: OutboundEmail, content) -> bytes:
        """The JSON encoding of the full body, ``content(attachment)`` filling each file."""
        body = dict(payload)
        if email.attachments:
            body["attachments"] = [
                {**self._attachment_meta(a), **content(a)} for a in email.attachments
            ]
        return json.dumps(deep_merge(body, email.esp_extra)).encode()

    def _json_size(self, payload: dict[str, Any], email: OutboundEmail) -> int:
        """Exactly how long the JSON request would be, without reading any file."""
        skeleton = self._with_attachments(payload, email, lambda a: {"content": ""})
        return len(skeleton) + sum(4 * ((a.size + 2) // 3) for a in email.attachments)

    def _multipart(self, payload: dict[str, Any], email: OutboundEmail) -> MultipartBody:
        # A boundary derived from the key keeps every retry's body identical.
        seed = email.idempotency_key or str(email.message_id or "")
        body = MultipartBody(boundary=f"txmail-{hashlib.sha256(seed.encode()).hexdigest()[:32]}")
        # The files travel as parts, so the message part carries no attachments list.
        message = json.dumps(deep_merge(payload, email.esp_extra)).encode()
        body.add_part("message", "application/json", data=message)
        for index, attachment in enumerate(email.attachments):
            body.add_part(
                _part_name(attachment, index),
                attachment.mimetype,
                opener=attachment.open,
                size=attachment.size,
                filename=attachment.filename,
            )
        return body.finish()

    def url(self, route: Route) -> str:
        base = self.account.api_uri
        if route.kind == "grant":
            return f"{base}/v3/grants/{quote(route.grant_id, safe='')}/messages/send"
        return f"{base}/v3/domains/{quote(route.domain, safe='')}/messages/send"

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.account.credentials.get('API_KEY', '')}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        payload = self.payload(email, route)
        headers = self._headers()
        if email.idempotency_key:
            headers["Idempotency-Key"] = email.idempotency_key
        if self._json_size(payload, email) > JSON_LIMIT:
            body = self._multipart(payload, email)
            headers["Content-Type"] = body.content_type
            return ProviderRequest(
                "POST", self.url(route), headers, body=body, transport="multipart"
            )
        data = self._with_attachments(
            payload, email, lambda a: {"content": base64.b64encode(a.read()).decode()}
        )
        headers["Content-Type"] = "application/json"
        return ProviderRequest("POST", self.url(route), headers, body=data)

    def build_cancel(self, route: Route, schedule_id: str) -> ProviderRequest:
        grant, schedule = quote(route.grant_id, safe=""), quote(schedule_id, safe="")
        url = f"{self.account.api_uri}/v3/grants/{grant}/messages/schedules/{schedule}"
        return ProviderRequest("DELETE", url, self._headers())

    # -- reading responses -----------------------------------------------------

    def _error(self, response: ProviderResponse, body: dict[str, Any]) -> ProviderAPIError:
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        error_type = str(error.get("type") or "")
        message = str(error.get("message") or "") or response.body[:300].decode("utf-8", "replace")
        request_id = str(body.get("request_id") or "")
        exc = self.api_error(response, message or "no error message", error_type, request_id)
        if response.status == 409 and error_type == "api.concurrent_idempotent_request":
            # The first request with this key is still being processed; ask again later.
            exc.transient = True
        return exc

    def parse_cancel(self, response: ProviderResponse) -> None:
        if response.status not in (200, 202, 204):
            body = response.json()
            raise self._error(response, body if isinstance(body, dict) else {})

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
        exc = self._error(response, body)
        # A grant that expired answers 401 naming the grant; a deleted one, 404. Either
        # way the mailbox needs its user again: the message waits, it has not failed.
        exc.grant_gone = route.kind == "grant" and (
            response.status == 404 or (response.status == 401 and "grant" in str(exc).lower())
        )
        raise exc


_FILE_PART = re.compile(r"file\d+")
#: What a form field name cannot hold unchanged (``MultipartBody`` escapes it).
_UNSAFE_IN_NAME = re.compile(r'["\\\r\n]')


def _part_name(attachment: Attachment, index: int) -> str:
    """The form field carrying ``attachment`` in a multipart request.

    Nylas reads a part's name as the file's Content-ID, and a ``file{N}`` part
    as a plain attachment: an inline image goes under its Content-ID, every
    other file as ``file{index}``. A Content-ID that would be read as
    something else is refused rather than sent as an image without its link.
    """
    content_id = attachment.content_id
    if not (attachment.inline and content_id):
        return f"file{index}"
    taken = content_id == "message" or _FILE_PART.fullmatch(content_id)
    if taken or _UNSAFE_IN_NAME.search(content_id):
        raise InvalidMessage(
            f"The inline image {attachment.filename!r} cannot keep its Content-ID "
            f"{content_id!r} in a Nylas multipart request (over 3 MB), where a part's name "
            "is its Content-ID: this one would read as the message part or a plain "
            "attachment, or not survive as a form field name, and the image would lose its "
            "cid: link. Give it another Content-ID (email.utils.make_msgid())."
        )
    return content_id
