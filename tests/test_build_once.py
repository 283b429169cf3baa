"""A message's provider payload is built once, and the first attempt sends what every
retry rebuilds from the row, byte for byte."""

from __future__ import annotations

from datetime import timedelta
from email.mime.image import MIMEImage

import pytest
from django.core import mail
from django.utils import timezone

from django_txmail.compose import compose
from django_txmail.conf import get_settings
from django_txmail.message import TxMessage
from django_txmail.models import Message, SendingDomain
from django_txmail.outbox.store import load, plan, record
from django_txmail.providers import load_adapter
from django_txmail.providers.mailtrap import MailtrapAdapter
from django_txmail.providers.nylas import NylasAdapter
from django_txmail.routing import resolve
from tests.test_batch import sandbox  # noqa: F401  (the fixture: sandbox, both domains)
from tests.test_send_providers_e2e import MAILERLOGIC_FROM, MAILTRAP_FROM, accounts

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def body_bytes(request) -> bytes:
    body = request.body
    if body is None or isinstance(body, bytes):
        return body or b""
    try:
        return b"".join(body)
    finally:
        request.close()


def request_bytes(adapter, email, route) -> tuple:
    request = adapter.build_send(email, route)
    return request.method, request.url, request.headers, body_bytes(request)


def messages():
    """Messages that exercise every part of each adapter's payload."""
    inline = MIMEImage(PNG, "png")
    inline.add_header("Content-ID", "<logo@shop>")
    inline.add_header("Content-Disposition", "inline", filename="logo.png")
    nylas = TxMessage(
        "Receipt ü",
        "Thanks",
        "Shop <noreply@example.com>",
        ["Ann <ann@x.example>"],
        cc=["cc@x.example"],
        reply_to=["help@example.com"],
        headers={"X-Order": "42", "X-Account": "7"},
        metadata={"order": 42, "vip": True},
        track_opens=True,
    )
    nylas.attach_alternative("<p>Thanks</p>", "text/html")
    nylas.attach("receipt.pdf", b"%PDF-1.4 " * 100, "application/pdf")
    nylas.attach(inline)
    big = TxMessage("Files", "big", "noreply@example.com", ["bea@x.example"])
    big.attach("big.bin", b"\xff" * 3_500_000, "application/octet-stream")  # multipart
    later = TxMessage("Later", "held by us", "noreply@example.com", ["cy@x.example"])
    later.send_at = timezone.now() + timedelta(days=3)
    mailtrap = TxMessage(
        "Hello",
        "text",
        MAILTRAP_FROM,
        ["dan@x.example"],
        reply_to=["a@x.example", "b@x.example"],
        metadata={"plan": "pro", "account": "7"},
        tags=["welcome"],
    )
    mailtrap.attach(inline)
    mailerlogic = TxMessage(
        "Invite", "text", MAILERLOGIC_FROM, ["eve@x.example"], metadata={"k": "v", "a": "b"}
    )
    return [nylas, big, later, mailtrap, mailerlogic]


def test_the_first_attempt_sends_the_request_every_retry_rebuilds(settings):
    settings.TXMAIL = accounts("http://127.0.0.1:9")
    SendingDomain.objects.create(name="example.com", provider="nylas")
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    SendingDomain.objects.create(name="mailerlogic.example", provider="mailerlogic")
    for django_message in messages():
        email = compose(django_message)
        resolved = resolve(email)
        adapter = load_adapter(get_settings().account(resolved.account.name))
        planned = plan(email, adapter.scheduling_window(resolved.route), claim=True)
        adapter.check(planned.sent, resolved.route)
        message, created = record(planned, resolved)
        assert created
        # A database may give a JSON object's keys back in another order (jsonb does).
        Message.objects.filter(pk=message.pk).update(
            metadata=dict(reversed(message.metadata.items())),
            headers=dict(reversed(message.headers.items())),
        )
        first = request_bytes(adapter, planned.sent, resolved.route)
        retry = request_bytes(adapter, load(Message.objects.get(pk=message.pk)), resolved.route)
        assert first == retry, django_message.subject


@pytest.mark.usefixtures("sandbox")
@pytest.mark.parametrize(
    ("adapter_class", "from_email"),
    [(NylasAdapter, "noreply@example.com"), (MailtrapAdapter, MAILTRAP_FROM)],
)
def test_a_message_is_checked_and_sent_from_one_payload(monkeypatch, adapter_class, from_email):
    built = []
    original = adapter_class.build_payload

    def counting(self, email, route):
        built.append(email.message_id)
        return original(self, email, route)

    monkeypatch.setattr(adapter_class, "build_payload", counting)
    assert mail.send_mail("Hi", "Body", from_email, ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "sent"
    assert built == [message.pk]
