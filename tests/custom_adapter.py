"""An adapter for "Acme Mail", a small made-up provider: the example of docs/adapters.md.

Acme Mail's API, as far as this adapter needs it:

* ``POST {API_URI}/v1/domains/{domain}/messages`` with ``Authorization:
  Bearer <API_KEY>`` and an optional ``Idempotency-Key``; the JSON body has
  ``from``, ``to``/``cc``/``bcc`` (arrays of strings), ``reply_to``,
  ``subject``, ``text``, ``html``, ``tags`` and ``metadata``.
* 202 ``{"id": "..."}``; errors ``{"error": {"code": "...", "message": "..."}}``.
* webhooks ``{"events": [{"id", "type", "message_id", "recipient",
  "timestamp", "metadata"}]}``, signed in ``X-Acme-Signature``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from django_txmail.exceptions import InvalidMessage, WebhookPayloadError
from django_txmail.outbound_email import Feature, OutboundEmail
from django_txmail.providers import Adapter, ProviderRequest, ProviderResponse, Route, SendResult
from django_txmail.providers.base import MESSAGE_ID_KEY, USER_AGENT, WebhookEvent

EVENT_TYPES = {"delivered": "delivered", "bounced": "bounced", "opened": "opened"}
#: What reading a body that is not Acme Mail's can raise (bad JSON, shape or values).
MALFORMED = (
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    OverflowError,
    OSError,
    RecursionError,
)


class AcmeMailAdapter(Adapter):
    name = "acme"
    features = frozenset(
        {
            Feature.CC,
            Feature.BCC,
            Feature.REPLY_TO,
            Feature.METADATA,
            Feature.TAGS,
            Feature.MULTIPLE_TAGS,
        }
    )
    required_credentials = ("API_KEY",)
    webhook_signature_header = "X-Acme-Signature"

    def check(self, email: OutboundEmail, route: Route) -> None:
        super().check(email, route)  # routes and features
        if MESSAGE_ID_KEY in email.metadata:
            raise InvalidMessage(f"The metadata key {MESSAGE_ID_KEY!r} is reserved.")

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        payload: dict[str, Any] = {
            "from": str(email.from_email),
            "to": [str(a) for a in email.to],
            "subject": email.subject,
            "metadata": {**email.metadata, MESSAGE_ID_KEY: str(email.message_id)},
        }
        for field in ("cc", "bcc"):
            if addresses := getattr(email, field):
                payload[field] = [str(a) for a in addresses]
        if email.reply_to:
            payload["reply_to"] = str(email.reply_to[0])
        if email.text is not None:
            payload["text"] = email.text
        if email.html is not None:
            payload["html"] = email.html
        if email.tags:
            payload["tags"] = email.tags
        headers = {
            "Authorization": f"Bearer {self.account.credentials['API_KEY']}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            # The message's own key: the same on every retry of it.
            "Idempotency-Key": email.idempotency_key,
        }
        url = f"{self.account.api_uri}/v1/domains/{quote(route.domain, safe='')}/messages"
        return ProviderRequest("POST", url, headers, body=json.dumps(payload).encode())

    def parse_send(self, response: ProviderResponse, route: Route) -> SendResult:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if response.status == 202 and body.get("id"):
            return SendResult(provider_message_id=str(body["id"]))
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        message = str(error.get("message") or response.body[:300].decode("utf-8", "replace"))
        # api_error classifies 429 and 5xx as transient and removes the API key.
        raise self.api_error(response, message or "no error message", str(error.get("code", "")))

    def parse_webhook(self, body: bytes, content_type: str) -> list[WebhookEvent]:
        try:
            return [_event(item) for item in json.loads(body)["events"]]
        except MALFORMED as exc:  # the view answers 400 and stores nothing
            raise WebhookPayloadError(f"Not an Acme Mail webhook body: {exc!r}") from None


def _event(item: dict[str, Any]) -> WebhookEvent:
    return WebhookEvent(
        provider_event_id=str(item["id"]),
        type=EVENT_TYPES.get(item["type"], "unknown"),
        provider_type=str(item["type"]),
        occurred_at=datetime.fromtimestamp(int(item["timestamp"]), UTC),
        raw=item,
        provider_message_id=str(item.get("message_id") or ""),
        message_id=str((item.get("metadata") or {}).get(MESSAGE_ID_KEY) or ""),
        recipient=str(item.get("recipient") or ""),
    )
