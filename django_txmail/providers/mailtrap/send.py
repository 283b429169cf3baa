"""Mailtrap Email API: live sending from a verified domain, or a test inbox.

Wire format: ``PROVIDERS.md`` → Mailtrap. In short:

* ``POST {API_URI}/api/send`` with ``Api-Token`` and a ``User-Agent``
  (Mailtrap's edge may block requests without one). The account option
  ``SANDBOX_INBOX_ID`` sends to that test inbox instead,
  ``{API_URI}/api/send/{inbox_id}``, whose host is
  ``https://sandbox.api.mailtrap.io``: a mismatch of option and host is a
  configuration error rather than mail sent to the wrong place.
* ``from`` is one object, ``to``/``cc``/``bcc`` arrays; text and HTML both
  go. ``reply_to`` takes one address, so two or more go as a ``Reply-To``
  header (names RFC 2047-encoded, as Mailtrap asks of header values).
* one tag is the ``category``; metadata becomes ``custom_variables``
  (strings, at most 1000 bytes of JSON), with our message id under
  ``txmail_id`` so webhooks find the message whichever recipient's message
  id they carry.
* ``reply_to_message_id`` becomes ``In-Reply-To`` and ``References``
  headers, as mail clients thread replies, so it must be a Message-ID.
* a provider template is ``template_uuid`` + ``template_variables``; the
  template brings its own subject, body and category.
* the answer has one message id per recipient (To, Cc, Bcc order; one for
  the whole message in a test inbox): the first is ``provider_message_id``,
  all are ``provider_message_ids``.

**No idempotency.** Mailtrap documents no idempotency key: a request that
times out after Mailtrap accepted it is sent again by the retry, and the
recipients get two copies, which the ``txmail_id`` custom variable ties to
one message in webhooks. No ``Idempotency-Key`` header is sent: Mailtrap
would ignore it, and seeing it in request logs would suggest a protection
that does not exist.

**Size.** Mailtrap takes emails up to 10 MB with attachments. The email it
builds is about as large as our JSON request (attachments are base64 in
both), so a request over 9.5 MB is refused before it is made; the margin
covers the line breaks and body encodings Mailtrap adds.

**Webhooks**: ``{"events": [...]}`` or JSON Lines, at most 500 events a
call, signed in ``Mailtrap-Signature``; ``event_id`` is the dedupe key.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Sequence
from email.utils import formataddr
from typing import Any
from urllib.parse import quote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from django_txmail.conf import ProviderAccount
from django_txmail.dns.records import RequiredRecord
from django_txmail.exceptions import (
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnsupportedFeature,
)
from django_txmail.outbound_email import Address, Attachment, Feature, OutboundEmail
from django_txmail.providers.base import (
    MESSAGE_ID_KEY,
    USER_AGENT,
    Adapter,
    ProviderRequest,
    ProviderResponse,
    ProviderSuppression,
    Route,
    SendResult,
    WebhookEvent,
    deep_merge,
)
from django_txmail.providers.mailtrap import suppressions
from django_txmail.providers.mailtrap import webhooks as mailtrap_webhooks
from django_txmail.providers.mailtrap.domains import mailtrap_records

JSON_LIMIT = 9_500_000
#: /api/batch: at most 500 messages and 50 MB a request (kept under, for the framing).
BATCH_MESSAGES = 500
BATCH_BYTES = 49_000_000
MAX_CATEGORY = 255
MAX_CUSTOM_VARIABLES_BYTES = 1000
SANDBOX_HOST = "sandbox.api.mailtrap.io"
SENDING_HOSTS = frozenset({"send.api.mailtrap.io", "bulk.api.mailtrap.io"})
_MESSAGE_ID = re.compile(r"<([^<>\s]+@[^<>\s]+)>|([^<>\s]+@[^<>\s]+)")
_THREADING_HEADERS = ("in-reply-to", "references")
#: Stands in for our message id while checking a message not yet recorded.
_ID_PLACEHOLDER = "00000000-0000-0000-0000-000000000000"


class MailtrapAdapter(Adapter):
    name = "mailtrap"
    required_credentials = ("API_TOKEN",)
    account_options = frozenset({"SANDBOX_INBOX_ID"})
    features = frozenset(
        {
            Feature.CC,
            Feature.BCC,
            Feature.NO_TO,
            Feature.REPLY_TO,
            Feature.MULTIPLE_REPLY_TO,
            Feature.ATTACHMENTS,
            Feature.INLINE_IMAGES,
            Feature.HEADERS,
            Feature.METADATA,
            Feature.TAGS,
            Feature.PROVIDER_TEMPLATE,
            Feature.REPLY_TO_MESSAGE_ID,
            Feature.ESP_EXTRA,
        }
    )
    webhook_signature_header = "Mailtrap-Signature"

    def __init__(self, account: ProviderAccount) -> None:
        super().__init__(account)
        self.inbox_id = _inbox_id(account)

    # -- checks ----------------------------------------------------------------

    def check(self, email: OutboundEmail, route: Route) -> None:
        super().check(email, route)
        if email.template_id:
            self._check_template(email)
        else:
            if not email.subject:
                raise InvalidMessage("Mailtrap needs a subject; give the message one.")
            if not (email.text or email.html):
                raise InvalidMessage("Mailtrap needs a text or HTML body; give the message one.")
        if email.tags and len(email.tags[0]) > MAX_CATEGORY:
            raise InvalidMessage(f"A Mailtrap category (tag) is at most {MAX_CATEGORY} characters.")
        self._custom_variables(email)
        self._headers(email)
        for attachment in email.attachments:
            if not attachment.filename:
                raise InvalidMessage(
                    "Mailtrap needs a filename for every attachment, inline images included."
                )
        size = self._json_size(self.payload(email, route), email)
        if size > JSON_LIMIT:
            raise MessageTooLarge(
                f"The message is {size / 1e6:.1f} MB as sent; Mailtrap accepts emails up to "
                "10 MB including attachments. Send large files as links."
            )

    def _check_template(self, email: OutboundEmail) -> None:
        if email.subject or email.text or email.html:
            raise UnsupportedFeature(
                self.account.name,
                "a subject or body with a provider template (template_id)",
                "The Mailtrap template brings its own; leave the message's subject and body empty.",
            )
        if email.tags:
            raise UnsupportedFeature(
                self.account.name,
                "a tag (category) with a provider template (template_id)",
                "The Mailtrap template brings its own category; remove the tag.",
            )
        try:
            uuid.UUID(email.template_id)
        except ValueError:
            raise InvalidMessage(
                f"Mailtrap template ids are UUIDs; {email.template_id!r} is not one. "
                "Copy it from the template's page in Mailtrap."
            ) from None

    def _custom_variables(self, email: OutboundEmail) -> dict[str, str]:
        variables: dict[str, str] = {}
        for key, value in email.metadata.items():
            if isinstance(value, dict | list) or value is None:
                raise InvalidMessage(
                    f"Mailtrap custom variables are strings or numbers; metadata {key!r} is "
                    f"{type(value).__name__}."
                )
            variables[key] = str(value).lower() if isinstance(value, bool) else str(value)
        if MESSAGE_ID_KEY in variables:
            raise InvalidMessage(f"The metadata key {MESSAGE_ID_KEY!r} is reserved.")
        variables[MESSAGE_ID_KEY] = str(email.message_id or _ID_PLACEHOLDER)
        size = len(_dumps(variables))
        if size > MAX_CUSTOM_VARIABLES_BYTES:
            raise InvalidMessage(
                f"Mailtrap keeps at most {MAX_CUSTOM_VARIABLES_BYTES} bytes of custom variables "
                f"(as JSON, our message id included); this message's metadata makes {size}."
            )
        if email.message_id is None:
            del variables[MESSAGE_ID_KEY]
        return variables

    def _headers(self, email: OutboundEmail) -> dict[str, str]:
        """Extra headers, plus those that carry what Mailtrap has no field for."""
        headers = dict(email.headers)
        if len(email.reply_to) > 1:
            headers["Reply-To"] = ", ".join(_header_address(a) for a in email.reply_to)
        if email.reply_to_message_id:
            if any(name.lower() in _THREADING_HEADERS for name in headers):
                raise InvalidMessage(
                    "reply_to_message_id sets In-Reply-To and References; remove those "
                    "headers from the message or drop reply_to_message_id."
                )
            found = _MESSAGE_ID.fullmatch(email.reply_to_message_id.strip())
            if found is None:
                raise InvalidMessage(
                    "At Mailtrap, reply_to_message_id becomes an In-Reply-To header, so it "
                    "must be a Message-ID such as '<abc@example.com>', not "
                    f"{email.reply_to_message_id!r}."
                )
            message_id = f"<{found.group(1) or found.group(2)}>"
            headers["In-Reply-To"] = headers["References"] = message_id
        return headers

    # -- building the request --------------------------------------------------

    def build_payload(self, email: OutboundEmail, route: Route) -> dict[str, Any]:
        """The JSON body without attachments and before ``esp_extra``."""
        payload: dict[str, Any] = {"from": _address(email.from_email)}
        for field in ("to", "cc", "bcc"):
            if addresses := getattr(email, field):
                payload[field] = [_address(a) for a in addresses]
        if len(email.reply_to) == 1:
            payload["reply_to"] = _address(email.reply_to[0])
        if email.template_id:
            payload["template_uuid"] = email.template_id
            if email.template_vars:
                payload["template_variables"] = email.template_vars
        else:
            payload["subject"] = email.subject
            if email.text:
                payload["text"] = email.text
            if email.html:
                payload["html"] = email.html
            if email.tags:
                payload["category"] = email.tags[0]
        if headers := self._headers(email):
            payload["headers"] = headers
        if variables := self._custom_variables(email):
            payload["custom_variables"] = variables
        return payload

    @staticmethod
    def _attachment_meta(attachment: Attachment) -> dict[str, str]:
        meta = {
            "filename": attachment.filename,
            "type": attachment.mimetype,
            "disposition": "inline" if attachment.inline else "attachment",
        }
        if attachment.inline:
            meta["content_id"] = attachment.content_id
        return meta

    def _message(self, payload: dict[str, Any], email: OutboundEmail, content) -> dict[str, Any]:
        """The full message object, ``content(attachment)`` filling each file."""
        body = dict(payload)
        if email.attachments:
            body["attachments"] = [
                {**self._attachment_meta(a), "content": content(a)} for a in email.attachments
            ]
        return deep_merge(body, email.esp_extra)

    def _body(self, payload: dict[str, Any], email: OutboundEmail, content) -> bytes:
        """The JSON encoding of the full body, ``content(attachment)`` filling each file."""
        return _dumps(self._message(payload, email, content))

    def _json_size(self, payload: dict[str, Any], email: OutboundEmail) -> int:
        """How long the request body will be, without reading any file (exact but
        for our message id, which a message gets once recorded)."""
        skeleton = self._body(payload, email, lambda a: "")
        return len(skeleton) + sum(4 * ((a.size + 2) // 3) for a in email.attachments)

    def url(self) -> str:
        if self.inbox_id:
            return f"{self.account.api_uri}/api/send/{quote(self.inbox_id, safe='')}"
        return f"{self.account.api_uri}/api/send"

    def _request_headers(self) -> dict[str, str]:
        return {
            "Api-Token": self.account.credentials.get("API_TOKEN", ""),
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        data = self._body(self.payload(email, route), email, _base64)
        return ProviderRequest("POST", self.url(), self._request_headers(), body=data)

    # -- batches ---------------------------------------------------------------

    batches = True

    def batch_url(self) -> str:
        return self.url().replace("/api/send", "/api/batch", 1)

    def build_batches(
        self, emails: Sequence[OutboundEmail], route: Route
    ) -> list[tuple[ProviderRequest, int]]:
        """``POST /api/batch`` with at most 500 messages and 50 MB a request.

        Every message goes whole in ``requests`` (no shared ``base``), so each
        item is exactly the single send of that message.
        """
        requests: list[tuple[ProviderRequest, int]] = []
        items: list[bytes] = []
        size = 0

        def flush() -> None:
            nonlocal items, size
            if items:
                body = b'{"requests":[' + b",".join(items) + b"]}"
                request = ProviderRequest(
                    "POST", self.batch_url(), self._request_headers(), body=body
                )
                requests.append((request, len(items)))
            items, size = [], 0

        for email in emails:
            item = self._body(self.payload(email, route), email, _base64)
            if len(items) == BATCH_MESSAGES or size + len(item) + 64 > BATCH_BYTES:
                flush()
            items.append(item)
            size += len(item) + 1
        flush()
        return requests

    def parse_batch(
        self, response: ProviderResponse, count: int
    ) -> list[SendResult | ProviderAPIError]:
        body = response.json()
        if not isinstance(body, dict):
            body = {}
        results = body.get("responses")
        if not (200 <= response.status < 300) or not isinstance(results, list):
            raise self._error(response, body)
        outcomes: list[SendResult | ProviderAPIError] = []
        for index in range(count):
            item = results[index] if index < len(results) else None
            if isinstance(item, dict) and item.get("success"):
                ids = item.get("message_ids")
                ids = tuple(str(i) for i in ids) if isinstance(ids, list) else ()
                outcomes.append(
                    SendResult(provider_message_id=ids[0] if ids else "", provider_message_ids=ids)
                )
                continue
            errors = item.get("errors") if isinstance(item, dict) else None
            text = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
            outcomes.append(
                ProviderAPIError(
                    self.redact(
                        text
                        or "Mailtrap's answer had no result for this message of the batch: it "
                        "may or may not have been sent; check Mailtrap before sending it again"
                    ),
                    provider=self.account.name,
                    status=response.status,
                    error_type="batch_item_refused",
                )
            )
        return outcomes

    # -- reading responses -----------------------------------------------------

    def parse_send(self, response: ProviderResponse, route: Route) -> SendResult:
        body = response.json()
        if not isinstance(body, dict):
            body = {}
        if 200 <= response.status < 300 and body.get("success") is not False:
            ids = body.get("message_ids")
            ids = tuple(str(i) for i in ids) if isinstance(ids, list) else ()
            return SendResult(provider_message_id=ids[0] if ids else "", provider_message_ids=ids)
        raise self._error(response, body)

    def _error(self, response: ProviderResponse, body: dict[str, Any]) -> ProviderAPIError:
        errors = body.get("errors")
        message = "; ".join(map(str, errors)) if isinstance(errors, list) else str(errors or "")
        message = message or response.body[:300].decode("utf-8", "replace") or "no error message"
        if response.status == 401:
            message += " (check the account's API_TOKEN)"
        elif response.status == 403:
            message += (
                " — the sending domain is probably not verified at Mailtrap; verify it "
                "under Sending Domains there, and check that the API token may send from it"
            )
        return self.api_error(response, message)

    # -- the suppression list (suppressions.py) --------------------------------

    def build_list_suppressions(self, address: str = "") -> ProviderRequest:
        return suppressions.build_list(self.account, self._request_headers(), address)

    def parse_list_suppressions(self, response: ProviderResponse) -> list[ProviderSuppression]:
        return suppressions.parse_list(response, self._error)

    def build_delete_suppression(self, suppression_id: str) -> ProviderRequest:
        return suppressions.build_delete(self.account, self._request_headers(), suppression_id)

    def parse_delete_suppression(self, response: ProviderResponse) -> None:
        suppressions.parse_delete(response, self._error)

    # -- webhooks --------------------------------------------------------------

    def required_records(self, domain: str) -> list[RequiredRecord]:
        return mailtrap_records(domain)

    def parse_webhook(self, body: bytes, content_type: str) -> list[WebhookEvent]:
        return mailtrap_webhooks.parse(body)


def _inbox_id(account: ProviderAccount) -> str:
    """The ``SANDBOX_INBOX_ID`` option, checked against the account's host."""
    raw = account.options.get("SANDBOX_INBOX_ID")
    host = (urlsplit(account.api_uri).hostname or "").lower()
    where = f"TXMAIL['PROVIDERS'][{account.name!r}]"
    if raw is None or raw == "":
        if host == SANDBOX_HOST:
            raise ImproperlyConfigured(
                f"{where} points at Mailtrap's sandbox host but has no SANDBOX_INBOX_ID; set "
                "it to the test inbox's id, or use https://send.api.mailtrap.io to send for real."
            )
        return ""
    inbox_id = str(raw).strip()
    if isinstance(raw, bool) or not inbox_id.isdigit():
        raise ImproperlyConfigured(f"{where}['SANDBOX_INBOX_ID'] must be a test inbox's number.")
    if host in SENDING_HOSTS:
        raise ImproperlyConfigured(
            f"{where} has a SANDBOX_INBOX_ID but sends to {host}; test inboxes live on "
            f"https://{SANDBOX_HOST}, so set API_URI to that."
        )
    return inbox_id


def _address(address: Address) -> dict[str, str]:
    pair = {"email": address.email}
    if address.name:
        pair["name"] = address.name
    return pair


def _header_address(address: Address) -> str:
    return formataddr((address.name, address.email), charset="utf-8")


def _dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON: non-ASCII text is not inflated sixfold by escapes."""
    try:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    except UnicodeEncodeError:
        raise InvalidMessage(
            "The message has text that is not valid Unicode (an unpaired surrogate)."
        ) from None


def _base64(attachment: Attachment) -> str:
    return base64.b64encode(attachment.read()).decode()
