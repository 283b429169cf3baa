"""Sending with django.core.mail through the backend to the sandbox's Mailtrap and
MailerLogic endpoints, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from email.mime.image import MIMEImage

import pytest
from django.core import mail
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.exceptions import (
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnsupportedFeature,
)
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, DeliveryEvent, Message, SendingDomain
from django_txmail.providers import load_adapter
from django_txmail.sending.attempt import deliver
from django_txmail.sending.transport import Transport
from tests.conftest import use_our_backend, wait_for_requests
from txmail_sandbox import (
    DEFAULT_MAILERLOGIC_API_KEY,
    DEFAULT_MAILTRAP_API_TOKEN,
    DEFAULT_NYLAS_API_KEY,
    Fault,
    SandboxServer,
)

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

MAILTRAP_FROM = "Shop <shop@mailtrap.example>"
MAILERLOGIC_FROM = "Shop <shop@mailerlogic.example>"
TEMPLATE = "b81aabcd-1a1e-41cf-91b6-eca0254b3d96"
WEBHOOK_SECRET = "whsec-e2e"
INVITE = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n"


def accounts(url: str, **overrides: dict) -> dict:
    """TXMAIL with one account per provider, all pointing at the sandbox at ``url``."""
    providers = {
        "nylas": {"ADAPTER": "nylas", "API_KEY": DEFAULT_NYLAS_API_KEY},
        "mailtrap": {"ADAPTER": "mailtrap", "API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN},
        "mailerlogic": {"ADAPTER": "mailerlogic", "API_KEY": DEFAULT_MAILERLOGIC_API_KEY},
    }
    return {
        "PROVIDERS": {
            name: account | {"API_URI": url, "SANDBOX": True} | overrides.get(name, {})
            for name, account in providers.items()
        },
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
    }


@pytest.fixture
def sandbox(txmail_sandbox, settings):
    """The sandbox with all three accounts set up, a sending domain for each new provider,
    and our backend in use."""
    settings.TXMAIL = accounts(txmail_sandbox.url)
    use_our_backend(settings)
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    SendingDomain.objects.create(name="mailerlogic.example", provider="mailerlogic")
    return txmail_sandbox


def override(settings, provider: str, **fields) -> None:
    settings.TXMAIL = settings.TXMAIL | {
        "PROVIDERS": settings.TXMAIL["PROVIDERS"]
        | {provider: settings.TXMAIL["PROVIDERS"][provider] | fields}
    }


def post_signed(client, provider: str, header: str, body: bytes, content_type: str):
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        f"/txmail/webhooks/{provider}/",
        body,
        content_type=content_type,
        headers={header: signature},
    )


def nothing_happened(sandbox) -> bool:
    return sandbox.requests == [] and Message.objects.count() == 0


# Mailtrap


def test_send_mail_goes_to_mailtrap_by_the_from_domain(sandbox):
    assert mail.send_mail("Welcome", "Hello Ann", MAILTRAP_FROM, ["Ann <ann@x.example>"]) == 1
    [received] = sandbox.messages
    message = Message.objects.get()
    assert received.provider == "mailtrap" and received.inbox_id is None
    assert received.payload == {
        "from": {"email": "shop@mailtrap.example", "name": "Shop"},
        "to": [{"email": "ann@x.example", "name": "Ann"}],
        "subject": "Welcome",
        "text": "Hello Ann",
        "custom_variables": {"txmail_id": str(message.pk)},
    }
    assert (message.provider, message.status) == ("mailtrap", "sent")
    assert message.provider_message_id == received.id
    assert received.idempotency_key is None


def test_mailtrap_carries_html_cc_bcc_reply_to_headers_tag_and_metadata(sandbox):
    msg = TxMessage(
        "Receipt",
        "Plain",
        MAILTRAP_FROM,
        ["ann@x.example"],
        cc=["cc@x.example"],
        bcc=["audit@x.example"],
        reply_to=["Help <help@mailtrap.example>"],
        headers={"X-Order": "42"},
        tags=["receipt"],
        metadata={"order": 42},
    )
    msg.attach_alternative("<h1>Receipt</h1>", "text/html")
    msg.send()
    [received] = sandbox.messages
    payload = received.payload
    assert (payload["text"], payload["html"]) == ("Plain", "<h1>Receipt</h1>")
    assert payload["cc"] == [{"email": "cc@x.example"}]
    assert payload["bcc"] == [{"email": "audit@x.example"}]
    assert payload["reply_to"] == {"email": "help@mailtrap.example", "name": "Help"}
    assert payload["headers"] == {"X-Order": "42"} and payload["category"] == "receipt"
    assert payload["custom_variables"]["order"] == "42"
    assert len(received.message_ids) == 3
    assert Message.objects.get().provider_message_id == received.message_ids[0]


def test_several_reply_to_addresses_reach_mailtrap_as_a_header(sandbox):
    mail.EmailMessage(
        "Hi", "b", MAILTRAP_FROM, ["ann@x.example"], reply_to=["a@x.example", "b@x.example"]
    ).send()
    payload = sandbox.messages[0].payload
    assert "reply_to" not in payload
    assert payload["headers"]["Reply-To"] == "a@x.example, b@x.example"


def test_attachments_and_inline_images_reach_mailtrap_intact(sandbox):
    msg = mail.EmailMultiAlternatives("Invoice", "See attached", MAILTRAP_FROM, ["ann@x.example"])
    msg.attach_alternative('<img src="cid:logo@shop">', "text/html")
    msg.attach("invoice.pdf", b"%PDF-1.4 \x00\xff", "application/pdf")
    logo = MIMEImage(b"GIF89a-logo", "gif")
    logo.add_header("Content-ID", "<logo@shop>")
    msg.attach(logo)
    msg.send()
    got = {a.filename: a for a in sandbox.messages[0].attachments}
    assert got["invoice.pdf"].content == b"%PDF-1.4 \x00\xff"
    assert got["invoice.pdf"].content_disposition == "attachment"
    assert (got["logo.gif"].content_id, got["logo.gif"].content_disposition) == (
        "logo@shop",
        "inline",
    )


def test_a_mailtrap_template_is_sent_by_uuid_with_its_variables(sandbox):
    sandbox.add_template(
        "mailtrap",
        TEMPLATE,
        subject="Welcome {{name}}",
        html="<p>Hello {{name}}</p>",
        text="Hello {{name}}",
    )
    TxMessage(
        "",
        "",
        MAILTRAP_FROM,
        ["ann@x.example"],
        template_id=TEMPLATE,
        merge_global_data={"name": "Ann"},
    ).send()
    payload = sandbox.messages[0].payload
    assert payload["template_uuid"] == TEMPLATE
    assert payload["template_variables"] == {"name": "Ann"}
    assert "subject" not in payload and "text" not in payload
    assert sandbox.messages[0].rendered == {
        "subject": "Welcome Ann",
        "html": "<p>Hello Ann</p>",
        "text": "Hello Ann",
    }


def test_reply_to_message_id_threads_the_reply_at_mailtrap(sandbox):
    TxMessage(
        "Re: order",
        "b",
        MAILTRAP_FROM,
        ["ann@x.example"],
        reply_to_message_id="<order-7@shop.example>",
    ).send()
    headers = sandbox.messages[0].payload["headers"]
    assert headers["In-Reply-To"] == headers["References"] == "<order-7@shop.example>"


@pytest.mark.parametrize(
    ("extras", "feature"),
    [
        ({"tags": ["a", "b"]}, "more than one tag"),
        ({"track_opens": True}, "open tracking"),
        ({"ical_event": INVITE}, "calendar invitations"),
        ({"stream_type": "transactional"}, "stream_type"),
    ],
)
def test_what_mailtrap_cannot_carry_is_refused_before_anything_is_stored(sandbox, extras, feature):
    with pytest.raises(UnsupportedFeature, match=feature):
        TxMessage("Hi", "b", MAILTRAP_FROM, ["ann@x.example"], **extras).send()
    assert nothing_happened(sandbox)


def test_a_message_too_large_for_mailtrap_is_refused_with_no_request(sandbox, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    msg = mail.EmailMessage("Big", "b", MAILTRAP_FROM, ["ann@x.example"])
    msg.attach("big.bin", b"\0" * 7_500_000, "application/octet-stream")
    with pytest.raises(MessageTooLarge, match="10 MB"):
        msg.send()
    assert nothing_happened(sandbox)


def test_send_at_waits_in_the_outbox_since_mailtrap_cannot_schedule(sandbox):
    when = timezone.now() + timedelta(hours=1)
    TxMessage("Later", "b", MAILTRAP_FROM, ["ann@x.example"], send_at=when).send()
    assert sandbox.requests == []
    message = Message.objects.get()
    assert (message.status, message.next_attempt_at) == ("scheduled", when)


def test_a_test_inbox_receives_the_message(sandbox, settings):
    override(settings, "mailtrap", SANDBOX_INBOX_ID="2049")
    mail.EmailMessage("Test", "b", MAILTRAP_FROM, ["ann@x.example"], cc=["c@x.example"]).send()
    [received] = sandbox.messages
    assert received.inbox_id == "2049" and len(received.message_ids) == 1
    assert Message.objects.get().status == "sent"


def test_an_unverified_domain_at_mailtrap_fails_with_the_reason(settings, db):
    with SandboxServer(mailtrap_verified_domains={"verified.example"}) as sandbox:
        settings.TXMAIL = accounts(sandbox.url)
        use_our_backend(settings)
        SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
        with pytest.raises(ProviderAPIError, match="not verified at Mailtrap") as info:
            mail.send_mail("Hi", "b", MAILTRAP_FROM, ["ann@x.example"])
    assert info.value.status == 403 and not info.value.transient
    message = Message.objects.get()
    assert message.status == "failed" and "not verified" in message.last_error


def test_a_mailtrap_outage_leaves_the_message_queued_for_retry(sandbox):
    sandbox.inject(Fault(status=503, provider="mailtrap"))
    assert mail.send_mail("Hi", "b", MAILTRAP_FROM, ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "queued" and message.next_attempt_at is not None
    assert Attempt.objects.get(message=message).http_status == 503


def test_a_wrong_mailtrap_token_fails_without_showing_it(sandbox, settings):
    override(settings, "mailtrap", API_TOKEN="wrong-token-42")
    with pytest.raises(ProviderAPIError) as info:
        mail.send_mail("Hi", "b", MAILTRAP_FROM, ["ann@x.example"])
    assert info.value.status == 401 and "API_TOKEN" in str(info.value)
    assert "wrong-token-42" not in str(info.value) + Message.objects.get().last_error


def test_a_retry_after_a_timeout_sends_a_second_copy_as_mailtrap_has_no_idempotency(
    sandbox, settings
):
    settings.TXMAIL = settings.TXMAIL | {"TIMEOUT": 0.5}
    sandbox.inject(Fault(delay_after_accept=1.5, provider="mailtrap"))
    assert mail.send_mail("Twice", "b", MAILTRAP_FROM, ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "queued"
    adapter = load_adapter(get_settings().account("mailtrap"))
    with Transport() as transport:
        assert deliver(message, adapter, transport) is not None
    wait_for_requests(sandbox, 2)
    first, second = sandbox.messages
    assert first.payload == second.payload  # the copies share custom_variables.txmail_id
    message.refresh_from_db()
    assert message.status == "sent" and message.provider_message_id == second.id


def test_mailtrap_webhooks_find_the_message_by_any_recipients_id(sandbox, settings, client):
    override(settings, "mailtrap", WEBHOOK_SECRET=WEBHOOK_SECRET)
    mail.send_mail("Hi", "b", MAILTRAP_FROM, ["ann@x.example", "bob@x.example"])
    ann_id, bob_id = sandbox.messages[0].message_ids
    message = Message.objects.get()
    variables = {"txmail_id": str(message.pk)}
    events = [
        {
            "event": "delivery",
            "event_id": "e1",
            "message_id": ann_id,
            "email": "ann@x.example",
            "timestamp": 1_800_000_000,
            "custom_variables": variables,
        },
        {
            "event": "bounce",
            "event_id": "e2",
            "message_id": bob_id,
            "email": "bob@x.example",
            "timestamp": 1_800_000_001,
            "custom_variables": variables,
            "response_code": 550,
            "response": "5.1.1 unknown user",
            "bounce_category": "invalid_recipient",
        },
    ]
    body = "\n".join(json.dumps(e) for e in events).encode()
    response = post_signed(client, "mailtrap", "Mailtrap-Signature", body, "application/jsonl")
    assert response.status_code == 200, response.content
    assert response.json()["unmatched"] == 0
    message.refresh_from_db()
    assert message.status == "bounced"
    assert message.recipient_status == {"ann@x.example": "delivered", "bob@x.example": "bounced"}
    bounce = DeliveryEvent.objects.get(provider_event_id="e2")
    assert (bounce.mta_response, bounce.bounce_type) == (
        "550 5.1.1 unknown user",
        "invalid_recipient",
    )


# MailerLogic


def test_send_mail_goes_to_mailerlogic_by_the_from_domain(sandbox):
    assert mail.send_mail("Welcome", "Hello Ann", MAILERLOGIC_FROM, ["Ann <ann@x.example>"]) == 1
    [received] = sandbox.messages
    message = Message.objects.get()
    assert (received.provider, received.domain) == ("mailerlogic", "mailerlogic.example")
    assert received.payload == {
        "domain": "mailerlogic.example",
        "from": '"Shop" <shop@mailerlogic.example>',
        "to": '"Ann" <ann@x.example>',
        "subject": "Welcome",
        "text": "Hello Ann",
        "stream_type": "transactional",  # the message's stream
        "metadata": {"txmail_id": str(message.pk)},
    }
    assert (message.provider, message.status) == ("mailerlogic", "sent")
    assert message.provider_message_id == received.id


def test_mailerlogic_carries_its_extras(sandbox):
    msg = TxMessage(
        "Receipt",
        "Plain",
        MAILERLOGIC_FROM,
        ["ann@x.example"],
        cc=["cc@x.example"],
        bcc=["audit@x.example"],
        reply_to=["help@mailerlogic.example"],
        headers={"X-Order": "42"},
        tags=["receipt"],
        metadata={"order": 42},
        track_opens=True,
        track_clicks=True,
        stream_type="transactional",
    )
    msg.attach_alternative("<h1>Receipt</h1>", "text/html")
    msg.attach("r.pdf", b"%PDF", "application/pdf")
    msg.send()
    [received] = sandbox.messages
    payload = received.payload
    assert (payload["cc"], payload["bcc"]) == (["cc@x.example"], ["audit@x.example"])
    assert payload["reply_to"] == "help@mailerlogic.example"
    assert (payload["html"], payload["text"]) == ("<h1>Receipt</h1>", "Plain")
    assert (payload["tag"], payload["stream_type"]) == ("receipt", "transactional")
    assert (payload["track_opens"], payload["track_clicks"]) == (True, True)
    assert payload["metadata"]["order"] == 42 and payload["headers"] == {"X-Order": "42"}
    [attachment] = received.attachments
    assert (attachment.filename, attachment.content) == ("r.pdf", b"%PDF")
    assert base64.b64decode(payload["attachments"][0]["content"]) == b"%PDF"


@pytest.mark.parametrize("how", ["ical_event", "alternative"])
def test_a_calendar_invitation_reaches_mailerlogic_as_ical_event(sandbox, how):
    if how == "ical_event":
        msg = TxMessage(
            "Meeting", "See invite", MAILERLOGIC_FROM, ["ann@x.example"], ical_event=INVITE
        )
    else:
        msg = mail.EmailMultiAlternatives(
            "Meeting", "See invite", MAILERLOGIC_FROM, ["ann@x.example"]
        )
        msg.attach_alternative(INVITE, "text/calendar; method=REQUEST")
    msg.send()
    assert sandbox.messages[0].payload["icalEvent"] == INVITE


def test_several_to_recipients_are_refused_for_mailerlogic_before_anything_is_stored(sandbox):
    with pytest.raises(UnsupportedFeature, match="SPLIT_RECIPIENTS.*one message per recipient"):
        mail.send_mail("Hi", "b", MAILERLOGIC_FROM, ["a@x.example", "b@x.example"])
    assert nothing_happened(sandbox)


def test_send_mass_mail_sends_one_mailerlogic_call_per_recipient(sandbox):
    datatuple = [("Hi", "b", MAILERLOGIC_FROM, [to]) for to in ("a@x.example", "b@x.example")]
    assert mail.send_mass_mail(datatuple) == 2
    assert sorted(m.payload["to"] for m in sandbox.messages) == ["a@x.example", "b@x.example"]


THREE = ["Ann <ann@x.example>", "bob@x.example", "cat@x.example"]


def test_several_to_recipients_are_split_into_one_mailerlogic_message_each(sandbox, settings):
    override(settings, "mailerlogic", SPLIT_RECIPIENTS=True)
    msg = TxMessage(
        "Receipt", "Plain", MAILERLOGIC_FROM, THREE, cc=["boss@x.example"], tags=["receipt"]
    )
    assert msg.send() == 1
    received = sandbox.messages
    assert [m.payload["to"] for m in received] == ['"Ann" <ann@x.example>', *THREE[1:]]
    assert [m.payload.get("cc") for m in received] == [["boss@x.example"], None, None]
    assert {m.payload["subject"] for m in received} == {"Receipt"}
    messages = {m.pk: m for m in Message.objects.all()}
    assert len(msg.txmail.message_ids) == 3 and set(msg.txmail.message_ids) == set(messages)
    assert msg.txmail.message_id == msg.txmail.message_ids[0]
    assert msg.txmail.provider_message_ids == [m.id for m in received]
    assert {m.status for m in messages.values()} == {"sent"}
    assert msg.txmail.recipients == {
        "ann@x.example": "sent",
        "boss@x.example": "sent",
        "bob@x.example": "sent",
        "cat@x.example": "sent",
    }
    ids_sent = [m.payload["metadata"]["txmail_id"] for m in received]
    assert ids_sent == [str(pk) for pk in msg.txmail.message_ids]


def test_a_part_mailerlogic_refuses_fails_alone_and_the_others_are_sent(sandbox, settings):
    override(settings, "mailerlogic", SPLIT_RECIPIENTS=True)
    sandbox.inject(Fault(status=400, provider="mailerlogic"))
    msg = mail.EmailMessage("Hi", "b", MAILERLOGIC_FROM, THREE)
    with pytest.raises(ProviderAPIError) as info:
        msg.send()
    assert info.value.status == 400
    statuses = sorted(Message.objects.values_list("status", flat=True))
    assert statuses == ["failed", "sent", "sent"]
    assert sorted(m.payload["to"] for m in sandbox.messages) == THREE[1:]
    assert msg.txmail.recipients == {
        "ann@x.example": "failed",
        "bob@x.example": "sent",
        "cat@x.example": "sent",
    }


def test_sending_a_split_message_again_with_its_key_sends_nothing_more(sandbox, settings):
    override(settings, "mailerlogic", SPLIT_RECIPIENTS=True)
    for _ in range(2):
        msg = TxMessage("Hi", "b", MAILERLOGIC_FROM, THREE, idempotency_key="order-7")
        assert msg.send() == 1
    assert len(sandbox.messages) == 3
    keys = sorted(Message.objects.values_list("idempotency_key", flat=True))
    assert keys == ["order-7:1", "order-7:2", "order-7:3"]


def test_a_webhook_for_one_part_moves_only_that_part(sandbox, settings, client):
    override(settings, "mailerlogic", SPLIT_RECIPIENTS=True, WEBHOOK_SECRET=WEBHOOK_SECRET)
    msg = mail.EmailMessage("Hi", "b", MAILERLOGIC_FROM, THREE)
    msg.send()
    bob = next(m for m in sandbox.messages if m.payload["to"] == "bob@x.example")
    event = {
        "id": "evt_bob",
        "type": "email.bounced",
        "created_at": "2025-05-01T12:00:00Z",
        "data": {"message_id": bob.id, "to": "bob@x.example", "bounce_type": "hard"},
    }
    response = post_signed(
        client,
        "mailerlogic",
        "X-MailerLogic-Signature",
        json.dumps(event).encode(),
        "application/json",
    )
    assert response.status_code == 200, response.content
    by_to = {m.to[0]["email"]: m.status for m in Message.objects.all()}
    assert by_to == {"ann@x.example": "sent", "bob@x.example": "bounced", "cat@x.example": "sent"}


@pytest.mark.parametrize(
    ("extras", "error"),
    [({"stream_type": "bulk"}, InvalidMessage), ({"template_id": "tpl"}, UnsupportedFeature)],
)
def test_what_mailerlogic_cannot_take_is_refused_up_front(sandbox, extras, error):
    with pytest.raises(error):
        TxMessage("Hi", "b", MAILERLOGIC_FROM, ["ann@x.example"], **extras).send()
    assert nothing_happened(sandbox)


def test_an_attachment_too_large_for_mailerlogic_is_refused_with_no_request(
    sandbox, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    msg = mail.EmailMessage("Big", "b", MAILERLOGIC_FROM, ["ann@x.example"])
    msg.attach("big.bin", b"\0" * 10_500_000, "application/octet-stream")
    with pytest.raises(MessageTooLarge, match="10 MB"):
        msg.send()
    assert nothing_happened(sandbox)


def test_an_unverified_domain_at_mailerlogic_fails_with_advice(settings, db):
    with SandboxServer(mailerlogic_verified_domains=["verified.example"]) as sandbox:
        settings.TXMAIL = accounts(sandbox.url)
        use_our_backend(settings)
        SendingDomain.objects.create(name="mailerlogic.example", provider="mailerlogic")
        with pytest.raises(ProviderAPIError, match="verified at MailerLogic") as info:
            mail.send_mail("Hi", "b", MAILERLOGIC_FROM, ["ann@x.example"])
    assert (info.value.status, info.value.error_type) == (404, "domain_not_found")
    assert Message.objects.get().status == "failed"


def test_a_mailerlogic_outage_leaves_the_message_queued_for_retry(sandbox):
    sandbox.inject(Fault(status=500, provider="mailerlogic"))
    assert mail.send_mail("Hi", "b", MAILERLOGIC_FROM, ["ann@x.example"]) == 1
    assert Message.objects.get().status == "queued"


def test_a_wrong_mailerlogic_key_fails_without_showing_it(sandbox, settings):
    override(settings, "mailerlogic", API_KEY="wrong-key-42")
    with pytest.raises(ProviderAPIError) as info:
        mail.send_mail("Hi", "b", MAILERLOGIC_FROM, ["ann@x.example"])
    assert (info.value.status, info.value.error_type) == (403, "invalid_api_key")
    assert "wrong-key-42" not in str(info.value) + Message.objects.get().last_error


def test_mailerlogic_webhooks_move_the_message(sandbox, settings, client):
    override(settings, "mailerlogic", WEBHOOK_SECRET=WEBHOOK_SECRET)
    mail.send_mail("Hi", "b", MAILERLOGIC_FROM, ["ann@x.example"])
    event = {
        "id": "evt_1",
        "type": "email.delivered",
        "created_at": "2025-05-01T12:00:00Z",
        "data": {"message_id": sandbox.messages[0].id, "to": "ann@x.example"},
    }
    body = json.dumps(event).encode()
    response = post_signed(
        client, "mailerlogic", "X-MailerLogic-Signature", body, "application/json"
    )
    assert response.status_code == 200, response.content
    assert Message.objects.get().status == "delivered"


# All three side by side


def test_one_project_sends_through_all_three_providers_by_from_domain(sandbox):
    SendingDomain.objects.create(name="nylas.example", provider="nylas")
    for sender in (MAILTRAP_FROM, MAILERLOGIC_FROM, "n@nylas.example"):
        mail.send_mail("Hi", "b", sender, ["ann@x.example"])
    assert sorted(m.provider for m in sandbox.messages) == ["mailerlogic", "mailtrap", "nylas"]
    by_provider = {m.provider: m.provider_message_id for m in Message.objects.all()}
    assert by_provider == {m.provider: m.id for m in sandbox.messages}
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
