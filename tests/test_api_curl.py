"""The README's curl example, run as written: a client that is not Python sends a
message over the API to the sandbox and follows it to "delivered"."""

from __future__ import annotations

import json
import subprocess

import pytest

from django_txmail.models import Message
from tests.api_helpers import user_with
from tests.conftest import txmail_settings, use_our_backend
from txmail_sandbox import WebhookOptions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SECRET = "whsec-curl"
BODY = {
    "from": "Shop <noreply@example.com>",
    "to": ["ann@example.org"],
    "subject": "Your receipt",
    "text": "Thanks for your order.",
}


@pytest.fixture
def app(txmail_sandbox, live_server, settings, domain):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url, account={"WEBHOOK_SECRET": SECRET})
    use_our_backend(settings)
    txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.05, retry_delay=0.1))
    txmail_sandbox.set_webhook("nylas", f"{live_server.url}/txmail/webhooks/nylas/", SECRET)
    user_with("send_message", "view_message", "view_deliveryevent", name="billing")
    yield live_server.url
    txmail_sandbox.clear_webhooks()


def curl(*args: str, data: str | None = None) -> tuple[int, dict]:
    """``curl -sS -u billing:pw ...``: the answer's status and JSON body."""
    out = subprocess.run(
        ["curl", "-sS", "-u", "billing:pw", "-w", "\n%{http_code}", *args],
        input=data,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def test_curl_sends_through_the_sandbox_and_follows_the_message_to_delivered(app, txmail_sandbox):
    code, sent = curl(
        "-H",
        "Content-Type: application/json",
        "-H",
        "Idempotency-Key: order-1042-receipt",
        "--data-binary",
        "@-",
        f"{app}/txmail/api/messages/",
        data=json.dumps(BODY),
    )
    assert code == 201, sent
    txmail_sandbox.flush_webhooks(15)  # the sandbox's signed "delivered" webhook has landed
    code, followed = curl(f"{app}/txmail/api/messages/{sent['id']}/")
    assert code == 200
    assert followed["status"] == Message.Status.DELIVERED
    assert [e["type"] for e in followed["events"]] == ["delivered"]
