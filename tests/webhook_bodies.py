"""A valid, signed webhook body of each built-in provider, for tests through the view."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from tests.conftest import txmail_settings

SECRET = "whsec-every-provider"
PROVIDERS = ("nylas", "mailtrap", "mailerlogic")
HEADERS = {
    "nylas": "HTTP_X_NYLAS_SIGNATURE",
    "mailtrap": "HTTP_MAILTRAP_SIGNATURE",
    "mailerlogic": "HTTP_X_MAILERLOGIC_SIGNATURE",
}


def every_provider_settings() -> dict:
    """TXMAIL with one account of each built-in provider, all signing with SECRET."""
    settings = txmail_settings("http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET})
    for name in ("mailtrap", "mailerlogic"):
        settings["PROVIDERS"][name] = {
            "ADAPTER": name,
            "API_KEY": "key",
            "API_TOKEN": "token",
            "API_URI": "http://127.0.0.1:9",
            "WEBHOOK_SECRET": SECRET,
        }
    return settings


def delivered_body(provider: str, extra=None, *, message_id: str = "pm-1") -> dict:
    """One "delivered" event for ann@x.example; ``extra`` rides along in a field of its own."""
    event_id = f"ev-{uuid.uuid4().hex}"
    if provider == "nylas":
        message = {"id": message_id, "metadata": {}, "extra": extra}
        return {
            "specversion": "1.0",
            "type": "message.transactional.delivered",
            "id": event_id,
            "time": 1_800_000_000,
            "data": {
                "application_id": "app",
                "object": {
                    "message": message,
                    "delivered": {"delivered_at": 1_800_000_010, "recipients": ["ann@x.example"]},
                },
            },
        }
    if provider == "mailtrap":
        event = {
            "event": "delivery",
            "event_id": event_id,
            "message_id": message_id,
            "email": "ann@x.example",
            "timestamp": 1_800_000_000,
            "custom_variables": {},
            "extra": extra,
        }
        return {"events": [event]}
    return {
        "id": event_id,
        "type": "email.delivered",
        "created_at": 1_800_000_000,
        "data": {"message_id": message_id, "to": "ann@x.example", "extra": extra},
    }


def post_signed(client, provider: str, body: bytes):
    """POST ``body`` to the provider's webhook URL with a valid signature."""
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        f"/txmail/webhooks/{provider}/",
        body,
        content_type="application/json",
        **{HEADERS[provider]: signature},
    )


def encode(body) -> bytes:
    return json.dumps(body).encode()
