"""An app written for django-anymail switches EMAIL_BACKEND and keeps working
(docs/migrating-from-anymail.md).

The messages here are plain ``EmailMessage``/``EmailMultiAlternatives`` with
anymail's attributes set on them, exactly as an anymail app writes them; they
go through our backend to the sandbox's Nylas, Mailtrap and MailerLogic
endpoints, and the wire payload must carry what each provider can carry.
What a provider cannot carry raises ``UnsupportedFeature`` naming provider
and feature, with nothing recorded and nothing sent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from email.mime.image import MIMEImage
from email.utils import make_msgid, unquote
from typing import Any

import pytest
from django.core import mail
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.utils import timezone

from django_txmail.exceptions import UnsupportedFeature
from django_txmail.message import TxMessage
from django_txmail.models import Grant, Message, SendingDomain
from django_txmail.signals import delivery_event, message_sent
from tests.conftest import use_our_backend
from txmail_sandbox import (
    DEFAULT_MAILERLOGIC_API_KEY,
    DEFAULT_MAILTRAP_API_TOKEN,
    DEFAULT_NYLAS_API_KEY,
    Fault,
)

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]

PROVIDERS = ("nylas", "mailtrap", "mailerlogic")
SENDER = {provider: f"Shop <shop@{provider}.example>" for provider in PROVIDERS}
TEMPLATE = "b81aabcd-1a1e-41cf-91b6-eca0254b3d96"  # a Mailtrap template UUID
WEBHOOK_SECRET = "whsec-migration"


@pytest.fixture
def sandbox(txmail_sandbox, settings):
    """One account per provider on the sandbox, a sending domain each, our backend in use:
    the whole of an anymail project's switch."""
    credentials = {
        "nylas": {"API_KEY": DEFAULT_NYLAS_API_KEY},
        "mailtrap": {"API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN},
        "mailerlogic": {"API_KEY": DEFAULT_MAILERLOGIC_API_KEY},
    }
    settings.TXMAIL = {
        "PROVIDERS": {
            provider: {
                "ADAPTER": provider,
                "API_URI": txmail_sandbox.url,
                "SANDBOX": True,
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                **credentials[provider],
            }
            for provider in PROVIDERS
        },
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
    }
    use_our_backend(settings)
    for provider in PROVIDERS:
        SendingDomain.objects.create(name=f"{provider}.example", provider=provider)
    return txmail_sandbox


def anymail_message(provider: str, **attributes: Any) -> EmailMultiAlternatives:
    """A message as an anymail app builds it: Django's class, then anymail's attributes."""
    templated = "template_id" in attributes
    msg = EmailMultiAlternatives(
        "" if templated else "Your receipt",
        "" if templated else "Thanks for order 42.",
        SENDER[provider],
        ["Ann <ann@x.example>"],
    )
    for name, value in attributes.items():
        setattr(msg, name, value)
    return msg


def at(payload: dict, path: str) -> Any:
    for key in path.split("."):
        payload = payload[key]
    return payload


def nothing_happened(sandbox) -> bool:
    return sandbox.requests == [] and Message.objects.count() == 0


# What each provider carries

CARRIED = [
    # provider, anymail attributes, where the provider's payload has them, value there
    ("nylas", {"metadata": {"order": 42}}, "metadata.order", "42"),
    ("mailtrap", {"metadata": {"order": 42}}, "custom_variables.order", "42"),
    ("mailerlogic", {"metadata": {"order": 42}}, "metadata.order", 42),
    ("mailtrap", {"tags": ["receipt"]}, "category", "receipt"),
    ("mailerlogic", {"tags": ["receipt"]}, "tag", "receipt"),
    ("nylas", {"track_opens": True}, "tracking_options.opens", True),
    ("nylas", {"track_clicks": False}, "tracking_options.links", False),
    ("mailerlogic", {"track_opens": True}, "track_opens", True),
    ("mailerlogic", {"track_clicks": False}, "track_clicks", False),
    (
        "nylas",
        {"template_id": TEMPLATE, "merge_global_data": {"name": "Ann"}},
        "template",
        {"id": TEMPLATE, "strict": True, "variables": {"name": "Ann"}},
    ),
    (
        "mailtrap",
        {"template_id": TEMPLATE, "merge_global_data": {"name": "Ann"}},
        "template_variables",
        {"name": "Ann"},
    ),
    ("mailtrap", {"template_id": TEMPLATE}, "template_uuid", TEMPLATE),
    (
        "nylas",
        {"esp_extra": {"tracking_options": {"label": "spring"}}},
        "tracking_options.label",
        "spring",
    ),
    (
        "mailtrap",
        {"esp_extra": {"headers": {"X-Campaign": "spring"}}},
        "headers.X-Campaign",
        "spring",
    ),
    ("mailerlogic", {"esp_extra": {"stream_type": "broadcast"}}, "stream_type", "broadcast"),
]


@pytest.mark.parametrize(("provider", "attributes", "path", "value"), CARRIED)
def test_anymail_attributes_reach_the_provider(sandbox, provider, attributes, path, value):
    if "template_id" in attributes:  # made in the provider's dashboard
        sandbox.add_template(provider, TEMPLATE, subject="Hi {{name}}", html="<p>{{name}}</p>")
    msg = anymail_message(provider, **attributes)
    assert msg.send() == 1
    [received] = sandbox.messages
    assert received.provider == provider
    assert at(received.payload, path) == value
    assert Message.objects.get().status == "sent"


def test_a_receipt_with_every_anymail_attribute_mailerlogic_takes_goes_out_whole(sandbox):
    msg = EmailMultiAlternatives(
        "Your receipt", "Thanks", SENDER["mailerlogic"], ["ann@x.example"], cc=["b@x.example"]
    )
    msg.attach_alternative("<p>Thanks</p>", "text/html")
    msg.metadata = {"order": 42, "user": "u-7"}
    msg.tags = ["receipt"]
    msg.track_opens = True
    msg.track_clicks = True
    msg.esp_extra = {"stream_type": "transactional"}
    msg.send()
    payload = sandbox.messages[0].payload
    message = Message.objects.get()
    assert payload["metadata"] == {"order": 42, "user": "u-7", "txmail_id": str(message.pk)}
    assert (payload["tag"], payload["track_opens"], payload["track_clicks"]) == (
        "receipt",
        True,
        True,
    )
    assert (payload["html"], payload["stream_type"]) == ("<p>Thanks</p>", "transactional")
    assert (message.metadata, message.tags) == ({"order": 42, "user": "u-7"}, ["receipt"])


def test_tx_message_takes_anymail_messages_keyword_arguments(sandbox):
    AnymailMessage = TxMessage  # from anymail.message import AnymailMessage, replaced
    msg = AnymailMessage(
        "Your receipt",
        "Thanks",
        SENDER["mailerlogic"],
        ["ann@x.example"],
        metadata={"order": 42},
        tags=["receipt"],
        track_clicks=True,
        esp_extra={"stream_type": "transactional"},
    )
    msg.send()
    payload = sandbox.messages[0].payload
    assert (payload["metadata"]["order"], payload["tag"]) == (42, "receipt")
    assert (payload["track_clicks"], payload["stream_type"]) == (True, "transactional")


# What a provider cannot carry

REFUSED = [
    ("nylas", {"tags": ["receipt"]}, "tags"),
    ("mailtrap", {"tags": ["receipt", "eu"]}, "more than one tag"),
    ("mailerlogic", {"tags": ["receipt", "eu"]}, "more than one tag"),
    ("mailtrap", {"track_opens": True}, "open tracking (track_opens)"),
    ("mailtrap", {"track_clicks": True}, "click tracking (track_clicks)"),
    ("mailerlogic", {"template_id": TEMPLATE}, "provider-hosted templates (template_id)"),
    *[
        (provider, {"merge_data": {"ann@x.example": {"name": "Ann"}}}, "merge data")
        for provider in PROVIDERS
    ],
    *[
        (provider, {"envelope_sender": f"bounces@{provider}.example"}, "envelope sender")
        for provider in PROVIDERS
    ],
]


@pytest.mark.parametrize(("provider", "attributes", "feature"), REFUSED)
def test_what_a_provider_cannot_carry_is_refused_with_nothing_recorded(
    sandbox, provider, attributes, feature
):
    with pytest.raises(UnsupportedFeature) as info:
        anymail_message(provider, **attributes).send()
    assert info.value.provider == provider and feature in info.value.feature
    assert f"{provider!r} cannot send" in str(info.value)
    assert nothing_happened(sandbox)


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    "attributes",
    [
        {"merge_metadata": {"ann@x.example": {"order": 42}}},
        {"merge_headers": {"ann@x.example": {"List-Unsubscribe": "<https://x.example/u/1>"}}},
    ],
    ids=["merge_metadata", "merge_headers"],
)
def test_per_recipient_anymail_attributes_are_refused_not_dropped(sandbox, provider, attributes):
    with pytest.raises(UnsupportedFeature):
        anymail_message(provider, **attributes).send()
    assert nothing_happened(sandbox)


# send_at: the provider holds it where it can, the outbox everywhere else


def test_send_at_is_handed_to_nylas_on_the_grant_route(sandbox):
    Grant.objects.create(email="shop@grant.example", provider="nylas", grant_id="grant-shop")
    when = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    msg = EmailMessage("Reminder", "Tomorrow", "shop@grant.example", ["ann@x.example"])
    msg.send_at = when
    msg.send()
    [received] = sandbox.messages
    assert received.payload["send_at"] == int(when.timestamp())
    assert msg.txmail.status == "scheduled" and received.schedule_id


@pytest.mark.parametrize("provider", PROVIDERS)
def test_send_at_where_the_provider_cannot_hold_it_waits_in_the_outbox(sandbox, provider):
    when = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    msg = anymail_message(provider, send_at=int(when.timestamp()))  # anymail takes Unix time too
    assert msg.send() == 1
    assert sandbox.requests == []
    message = Message.objects.get()
    assert (message.status, message.next_attempt_at) == ("scheduled", when)
    assert msg.txmail.status == "scheduled"


# Inline images made the way anymail's attach_inline_image() makes them


def attach_inline_image(msg: EmailMessage, content: bytes, filename: str) -> str:
    content_id = make_msgid("img", "inline")
    image = MIMEImage(content, "png")
    image.add_header("Content-Disposition", "inline", filename=filename)
    image.add_header("Content-ID", content_id)
    msg.attach(image)
    return unquote(content_id)


@pytest.mark.parametrize("provider", ["nylas", "mailtrap"])
def test_anymail_style_inline_images_arrive_inline(sandbox, provider):
    msg = anymail_message(provider)
    cid = attach_inline_image(msg, b"\x89PNG-logo", "logo.png")
    msg.attach_alternative(f'<img src="cid:{cid}">', "text/html")
    msg.send()
    [image] = sandbox.messages[0].attachments
    assert (image.filename, image.content_id, image.content) == ("logo.png", cid, b"\x89PNG-logo")
    assert image.content_disposition == "inline"


def test_inline_images_are_refused_by_mailerlogic(sandbox):
    msg = anymail_message("mailerlogic")
    attach_inline_image(msg, b"\x89PNG-logo", "logo.png")
    with pytest.raises(UnsupportedFeature, match="inline images"):
        msg.send()
    assert nothing_happened(sandbox)


# anymail_status → msg.txmail


def test_what_anymail_status_told_is_in_msg_txmail(sandbox):
    msg = EmailMessage("Hi", "b", SENDER["mailtrap"], ["ann@x.example", "bob@x.example"])
    msg.send()
    [received] = sandbox.messages
    message = Message.objects.get()
    # anymail_status.message_id / .status / .recipients[...].status
    assert msg.txmail.provider_message_ids == [message.provider_message_id]
    assert message.provider_message_id == received.message_ids[0]
    assert msg.txmail.status == "sent" and msg.txmail.provider == "mailtrap"
    assert msg.txmail.recipients == {"ann@x.example": "sent", "bob@x.example": "sent"}
    assert msg.txmail.message_id == message.pk  # and ours: the outbox row


# Signals: post_send → message_sent, tracking → delivery_event


def test_a_post_send_receiver_becomes_a_message_sent_receiver(sandbox):
    seen = []

    def on_sent(sender, message, result, **kwargs):
        seen.append((message.pk, message.metadata, result.provider_message_id))

    message_sent.connect(on_sent)
    try:
        msg = anymail_message("mailerlogic", metadata={"order": 42})
        msg.send()
    finally:
        message_sent.disconnect(on_sent)
    assert seen == [(msg.txmail.message_id, {"order": 42}, sandbox.messages[0].id)]


def test_a_tracking_receiver_becomes_a_delivery_event_receiver(
    sandbox, client, django_capture_on_commit_callbacks
):
    seen = []

    def on_event(sender, event, message, **kwargs):
        # anymail's event.event_type, .recipient, .metadata, .tags, .mta_response
        seen.append(
            (event.type, event.recipient, message.metadata, message.tags, event.mta_response)
        )

    msg = anymail_message("mailtrap", metadata={"order": 42}, tags=["receipt"])
    msg.send()
    event = {
        "event": "bounce",
        "event_id": "ev-1",
        "message_id": sandbox.messages[0].message_ids[0],
        "email": "ann@x.example",
        "timestamp": 1_800_000_000,
        "response": "5.1.1 unknown user",
        "response_code": 550,
    }
    body = json.dumps({"events": [event]}).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    delivery_event.connect(on_event)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/txmail/webhooks/mailtrap/",
                body,
                content_type="application/json",
                headers={"Mailtrap-Signature": signature},
            )
    finally:
        delivery_event.disconnect(on_event)
    assert response.status_code == 200, response.content
    assert seen == [
        ("bounced", "ann@x.example", {"order": 42}, ["receipt"], "550 5.1.1 unknown user")
    ]


# What the switch gains


def test_an_outage_that_anymail_would_raise_leaves_the_message_queued_for_retry(sandbox):
    sandbox.inject(Fault(status=503, provider="mailtrap"))
    assert anymail_message("mailtrap", metadata={"order": 42}).send() == 1
    message = Message.objects.get()
    assert message.status == "queued" and message.next_attempt_at is not None


def test_send_mail_from_an_anymail_app_is_recorded_and_sent(sandbox):
    assert mail.send_mail("Welcome", "Hello", SENDER["nylas"], ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert (message.provider, message.status) == ("nylas", "sent")
    assert sandbox.messages[0].idempotency_key == message.idempotency_key
