"""Signed webhooks become delivery events, once each, and move message status forward."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from django_txmail.models import DeliveryEvent, Message
from django_txmail.signals import delivery_event
from tests.conftest import txmail_settings

pytestmark = pytest.mark.django_db

SECRET = "whsec-current"
OLD_SECRET = "whsec-previous"
URL = "/txmail/webhooks/nylas/"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.TXMAIL = txmail_settings(
        "http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET, "WEBHOOK_SECRETS": [OLD_SECRET]}
    )


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(client, payload, *, secret=SECRET, signature=None, url=URL, raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {}
    if signature is not False:
        headers["HTTP_X_NYLAS_SIGNATURE"] = signature or sign(body, secret)
    return client.post(url, body, content_type="application/json", **headers)


def sent_message(**fields) -> Message:
    defaults = dict(
        route="domain",
        provider="nylas",
        route_domain="example.com",
        from_email={"email": "noreply@example.com", "name": ""},
        from_address="noreply@example.com",
        to=[{"email": "ann@x.example", "name": ""}],
        subject="Hi",
        status="sent",
        idempotency_key=f"k-{uuid.uuid4()}",
        provider_message_id=f"nylas-{uuid.uuid4().hex[:8]}",
    )
    return Message.objects.create(**(defaults | fields))


def notification(kind, obj, *, event_id=None, time=1_800_000_000):
    return {
        "specversion": "1.0",
        "type": kind,
        "source": "/nylas/transactional",
        "id": event_id or f"evt-{uuid.uuid4().hex}",
        "time": time,
        "webhook_delivery_attempt": 1,
        "data": {"application_id": "app", "object": obj},
    }


def delivered(message, recipients=("ann@x.example",), **kwargs):
    return notification(
        "message.transactional.delivered",
        {
            "message": {"id": message.provider_message_id, "metadata": {}},
            "delivered": {"delivered_at": 1_800_000_010, "recipients": list(recipients)},
        },
        **kwargs,
    )


def bounced(message, email="ann@x.example", **kwargs):
    return notification(
        "message.transactional.bounced",
        {
            "message": {"id": message.provider_message_id},
            "bounce": {
                "bounced_at": 1_800_000_005,
                "type": "MailboxFull",
                "recipients": [{"email": email, "diagnostic_code": "552 5.2.2 full"}],
            },
        },
        **kwargs,
    )


def complaint(message, **kwargs):
    return notification(
        "message.transactional.complaint",
        {
            "message": {"id": message.provider_message_id},
            "complaint": {
                "reported_at": 1_800_000_100,
                "type": "abuse",
                "complained_recipients": ["ann@x.example"],
            },
        },
        **kwargs,
    )


def test_delivered_event_is_stored_and_moves_the_message(client):
    message = sent_message()
    response = post(client, delivered(message))
    assert response.status_code == 200
    assert response.json() == {
        "received": 1,
        "stored": 1,
        "duplicates": 0,
        "unmatched": 0,
        "ignored": 0,
    }
    event = DeliveryEvent.objects.get()
    assert (event.message, event.type, event.recipient) == (message, "delivered", "ann@x.example")
    assert event.provider_type == "message.transactional.delivered"
    assert event.raw["data"]["object"]["delivered"]["recipients"] == ["ann@x.example"]
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.recipient_status == {"ann@x.example": "delivered"}


def test_bounce_details_are_kept(client):
    message = sent_message()
    post(client, bounced(message))
    event = DeliveryEvent.objects.get()
    assert (event.type, event.bounce_type, event.reason) == (
        "bounced",
        "MailboxFull",
        "552 5.2.2 full",
    )
    message.refresh_from_db()
    assert message.status == "bounced"


def test_complaint_and_rejection(client):
    first, second = sent_message(), sent_message()
    post(client, complaint(first))
    post(
        client,
        notification(
            "message.transactional.rejected",
            {"message": {"id": second.provider_message_id}, "rejected_at": 1_800_000_001},
        ),
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("complained", "rejected")
    assert DeliveryEvent.objects.get(message=first).reason == "abuse"


def test_opens_and_clicks_keep_user_agent_ip_and_url(client):
    message = sent_message()
    recents = [
        {
            "ip": "203.0.113.9",
            "user_agent": "Mail/1.0",
            "timestamp": 1_800_000_200,
            "link_index": 1,
            "click_id": "c1",
        }
    ]
    post(
        client,
        notification(
            "message.opened",
            {
                "message_id": message.provider_message_id,
                "label": "x",
                "recents": recents,
                "message_data": {"count": 1, "timestamp": 1_800_000_200},
                "timestamp": 1_800_000_200,
            },
        ),
    )
    post(
        client,
        notification(
            "message.link_clicked",
            {
                "message_id": message.provider_message_id,
                "recents": recents,
                "link_data": [
                    {"count": 1, "url": "https://a.example"},
                    {"count": 1, "url": "https://b.example/x"},
                ],
                "timestamp": 1_800_000_300,
            },
        ),
    )
    opened, clicked = DeliveryEvent.objects.order_by("occurred_at")
    assert (opened.type, opened.user_agent, opened.ip) == ("opened", "Mail/1.0", "203.0.113.9")
    assert (clicked.type, clicked.click_url) == ("clicked", "https://b.example/x")
    message.refresh_from_db()
    assert message.status == "delivered", "an open proves delivery"


def test_a_redelivered_event_is_stored_once_and_answered_200(client):
    message = sent_message()
    payload = delivered(message, event_id="evt-1")
    first, again = post(client, payload), post(client, payload)
    assert first.status_code == again.status_code == 200
    assert again.json()["duplicates"] == 1 and again.json()["stored"] == 0
    assert DeliveryEvent.objects.count() == 1


def test_a_late_delivered_never_overrides_bounced(client):
    message = sent_message()
    post(client, bounced(message))
    post(client, delivered(message))
    message.refresh_from_db()
    assert message.status == "bounced"
    assert message.recipient_status == {"ann@x.example": "bounced"}
    assert DeliveryEvent.objects.count() == 2, "both events are kept for the timeline"


def test_a_complaint_after_delivery_wins_in_either_order(client):
    early, late = sent_message(), sent_message()
    post(client, delivered(early))
    post(client, complaint(early))
    post(client, complaint(late))
    post(client, delivered(late))
    early.refresh_from_db()
    late.refresh_from_db()
    assert early.status == late.status == "complained"


def test_status_per_recipient(client):
    message = sent_message(
        to=[{"email": "ann@x.example", "name": ""}, {"email": "bob@x.example", "name": ""}]
    )
    post(client, delivered(message, recipients=["ann@x.example"]))
    post(client, bounced(message, email="bob@x.example"))
    message.refresh_from_db()
    assert message.recipient_status == {"ann@x.example": "delivered", "bob@x.example": "bounced"}
    assert message.status == "bounced"


def test_one_delivered_notification_for_two_recipients_is_two_events(client):
    message = sent_message(
        to=[{"email": "ann@x.example", "name": ""}, {"email": "bob@x.example", "name": ""}]
    )
    post(
        client, delivered(message, recipients=["ann@x.example", "bob@x.example"], event_id="evt-2")
    )
    assert sorted(DeliveryEvent.objects.values_list("provider_event_id", flat=True)) == [
        "evt-2:ann@x.example",
        "evt-2:bob@x.example",
    ]


def test_an_event_is_matched_by_our_id_when_the_provider_id_is_unknown(client):
    message = sent_message(provider_message_id="", status="sending")
    payload = delivered(message)
    payload["data"]["object"]["message"] = {
        "id": "nylas-new",
        "metadata": {"txmail_id": str(message.pk)},
    }
    post(client, payload)
    message.refresh_from_db()
    assert message.status == "delivered"
    assert DeliveryEvent.objects.get().message == message


def test_an_event_for_no_known_message_is_stored_unattached(client):
    ghost = Message(provider_message_id="nylas-ghost")
    response = post(client, delivered(ghost))
    assert response.json()["unmatched"] == 1
    assert DeliveryEvent.objects.get().message is None


def test_an_unknown_event_type_is_stored_as_unknown(client):
    message = sent_message()
    post(client, notification("message.transactional.something_new", {"message": {}}))
    event = DeliveryEvent.objects.get()
    assert (event.type, event.provider_type) == ("unknown", "message.transactional.something_new")
    message.refresh_from_db()
    assert message.status == "sent"


def test_a_rotated_secret_is_still_accepted(client):
    assert post(client, delivered(sent_message()), secret=OLD_SECRET).status_code == 200


def test_the_challenge_is_echoed(client):
    response = client.get(URL, {"challenge": "abc-123"})
    assert response.status_code == 200
    assert response.content == b"abc-123" and response["Content-Type"].startswith("text/plain")


def test_get_without_a_challenge_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def test_unknown_account_is_404(client):
    assert post(client, {}, url="/txmail/webhooks/nope/").status_code == 404


def test_an_account_without_a_secret_refuses_webhooks(client, settings):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:9")
    assert post(client, delivered(sent_message())).status_code == 403
    assert DeliveryEvent.objects.count() == 0


def test_delivery_event_signal_is_sent_after_commit(client, django_capture_on_commit_callbacks):
    message = sent_message()
    seen = []

    def receiver(sender, event, message, **kwargs):
        seen.append((event.type, message.pk))

    delivery_event.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            post(client, delivered(message))
        assert seen == [], "not before the transaction commits"
        for callback in callbacks:
            callback()
    finally:
        delivery_event.disconnect(receiver)
    assert seen == [("delivered", message.pk)]


def body_too_big():
    return b'{"x": "' + b"a" * (64 * 1024) + b'"}'


BAD_REQUESTS = {
    "no-signature": (lambda p: dict(payload=p, signature=False), 401),
    "wrong-signature": (lambda p: dict(payload=p, signature="0" * 64), 403),
    "signature-of-another-secret": (lambda p: dict(payload=p, secret="guess"), 403),
    "signature-not-hex": (lambda p: dict(payload=p, signature="not-hex!"), 403),
    "replayed-signature-altered-body": (
        lambda p: dict(
            payload=None, raw=json.dumps(p).encode() + b" ", signature=sign(json.dumps(p).encode())
        ),
        403,
    ),
    "truncated-json": (lambda p: dict(payload=None, raw=json.dumps(p).encode()[:-7]), 400),
    "not-json": (lambda p: dict(payload=None, raw=b"\xff\xfe<xml/>"), 400),
    "json-array": (lambda p: dict(payload=[p]), 400),
    "missing-id": (lambda p: dict(payload={k: v for k, v in p.items() if k != "id"}), 400),
    "id-not-a-string": (lambda p: dict(payload=p | {"id": 42}), 400),
    "data-not-an-object": (lambda p: dict(payload=p | {"data": "x"}), 400),
    "time-not-a-number": (lambda p: dict(payload=p | {"time": "yesterday"}), 400),
    "recipients-not-a-list": (
        lambda p: dict(
            payload=p
            | {"data": {"object": {"message": {"id": "m"}, "delivered": {"recipients": "ann"}}}}
        ),
        400,
    ),
    "id-too-long": (lambda p: dict(payload=p | {"id": "e" * 300}), 400),
    "body-too-big": (lambda p: dict(payload=None, raw=body_too_big()), 413),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_webhook_requests_get_their_4xx_and_change_nothing(client, settings, case):
    settings.TXMAIL = settings.TXMAIL | {"WEBHOOK_MAX_BYTES": 32 * 1024}
    message = sent_message()
    build, status = BAD_REQUESTS[case]
    response = post(client, **build(delivered(message)))
    assert response.status_code == status, response.content
    assert DeliveryEvent.objects.count() == 0
    message.refresh_from_db()
    assert message.status == "sent" and message.recipient_status == {}


def test_a_declared_length_over_the_limit_is_refused_before_reading(client, settings):
    settings.TXMAIL = settings.TXMAIL | {"WEBHOOK_MAX_BYTES": 1000}
    body = json.dumps(delivered(sent_message())).encode()
    response = client.generic(
        "POST",
        URL,
        body,
        content_type="application/json",
        CONTENT_LENGTH="5000",
        HTTP_X_NYLAS_SIGNATURE=sign(body),
    )
    assert response.status_code == 413


def test_a_replayed_valid_request_is_accepted_but_changes_nothing(client):
    message = sent_message()
    payload = bounced(message)
    post(client, payload)
    before = list(DeliveryEvent.objects.values())
    response = post(client, payload)
    assert response.status_code == 200 and response.json()["stored"] == 0
    assert list(DeliveryEvent.objects.values()) == before
