"""End to end, over real HTTP: a hard bounce reported by the sandbox's signed webhook
puts the address on the suppression list, and the next mail to it is never sent."""

from __future__ import annotations

import pytest
from django.core import mail

from django_txmail.message import TxMessage
from django_txmail.models import Message, Suppression
from tests.conftest import txmail_settings, use_our_backend
from txmail_sandbox import WebhookOptions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SECRET = "whsec-e2e"
FROM = "Shop <noreply@example.com>"
TIMEOUT = 15


@pytest.fixture
def app(txmail_sandbox, live_server, settings, domain):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url, account={"WEBHOOK_SECRET": SECRET})
    use_our_backend(settings)
    txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.05, retry_delay=0.1))
    txmail_sandbox.set_webhook("nylas", f"{live_server.url}/txmail/webhooks/nylas/", SECRET)
    yield txmail_sandbox
    txmail_sandbox.clear_webhooks()


def test_a_hard_bounce_suppresses_the_address_for_the_next_send(app):
    assert mail.send_mail("Receipt", "Thanks", FROM, ["bounce@x.example"]) == 1
    app.flush_webhooks(TIMEOUT)
    assert Message.objects.get().status == "bounced"
    entry = Suppression.objects.get()
    assert (entry.address, entry.reason, entry.stream) == (
        "bounce@x.example",
        "hard_bounce",
        "transactional",
    )
    assert entry.event.type == "bounced"
    assert "550 5.1.1 user unknown" in entry.note

    requests_before = len(app.requests)
    assert mail.send_mail("Receipt", "Thanks again", FROM, ["Bounce@x.example"]) == 0
    assert len(app.requests) == requests_before
    assert Message.objects.get(subject="Receipt", text_body="Thanks again").status == "suppressed"

    msg = TxMessage("Receipt", "Both", FROM, ["bounce@x.example", "ann@x.example"])
    assert msg.send() == 1
    assert len(app.requests) == requests_before + 1
    assert [r["email"] for r in app.messages[-1].payload["to"]] == ["ann@x.example"]
    assert msg.txmail.recipients == {"bounce@x.example": "suppressed", "ann@x.example": "sent"}
    app.flush_webhooks(TIMEOUT)
    row = Message.objects.get(pk=msg.txmail.message_id)
    assert row.recipient_status == {"bounce@x.example": "suppressed", "ann@x.example": "delivered"}
