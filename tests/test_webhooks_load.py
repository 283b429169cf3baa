"""10,000 Mailtrap events in batches of 500, a fifth of them duplicated, in random order."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from collections import Counter

import pytest

from django_txmail.models import DeliveryEvent, Message
from tests.conftest import txmail_settings

pytestmark = pytest.mark.django_db

SECRET = "mailtrap-signing-secret"
URL = "/txmail/webhooks/mailtrap/"
MESSAGES = 2500
#: Each message's events, in the order they happened, and the status they must leave.
STORIES = {
    "delivered": ["delivery", "open", "click", "unsubscribe"],
    "bounced": ["soft bounce", "soft bounce", "bounce", "delivery"],
    "complained": ["delivery", "open", "spam", "click"],
    "rejected": ["reject", "suspension", "account_suspended_notice", "delivery"],
}


@pytest.fixture
def mailtrap(settings):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:9") | {
        "PROVIDERS": {
            "mailtrap": {
                "ADAPTER": "mailtrap",
                "API_TOKEN": "token",
                "API_URI": "http://127.0.0.1:9",
                "WEBHOOK_SECRET": SECRET,
            }
        },
        "DEFAULT_PROVIDER": "mailtrap",
    }


def story_of(index: int) -> str:
    return list(STORIES)[index % len(STORIES)]


def messages() -> list[Message]:
    return Message.objects.bulk_create(
        Message(
            route="domain",
            provider="mailtrap",
            route_domain="example.com",
            from_email={"email": "noreply@example.com", "name": ""},
            from_address="noreply@example.com",
            to=[{"email": f"user{i}@x.example", "name": ""}],
            subject=f"m{i}",
            status="sent",
            idempotency_key=f"load-{i}",
            content_hash="-",
            provider_message_id=f"mt-{i}",
        )
        for i in range(MESSAGES)
    )


def events_for(index: int, message: Message) -> list[dict]:
    start = 1_800_000_000 + index
    return [
        {
            "event": kind,
            "event_id": f"ev-{index}-{step}",
            "message_id": f"mt-{index}",
            "email": f"user{index}@x.example",
            "timestamp": start + step * 60,
            "sending_stream": "transactional",
            "sending_domain_name": "example.com",
            "custom_variables": {"txmail_id": str(message.pk)},
            **(
                {"bounce_category": "hard", "response": "550 no such user", "response_code": 550}
                if kind == "bounce"
                else {}
            ),
            **({"url": "https://shop.example/x"} if kind == "click" else {}),
        }
        for step, kind in enumerate(STORIES[story_of(index)])
    ]


def test_ten_thousand_events_with_duplicates_out_of_order_are_stored_once(client, mailtrap):
    rows = messages()
    unique = [event for i, m in enumerate(rows) for event in events_for(i, m)]
    assert len(unique) == 10_000
    rng = random.Random(20261121)
    sent = unique + rng.sample(unique, k=len(unique) // 5)
    rng.shuffle(sent)
    totals = Counter()
    for start in range(0, len(sent), 500):
        body = json.dumps({"events": sent[start : start + 500]}).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = client.post(
            URL, body, content_type="application/json", HTTP_MAILTRAP_SIGNATURE=signature
        )
        assert response.status_code == 200, response.content
        totals.update(response.json())
    assert totals["received"] == 12_000
    assert (totals["stored"], totals["duplicates"], totals["unmatched"]) == (10_000, 2_000, 0)
    assert DeliveryEvent.objects.count() == 10_000
    assert DeliveryEvent.objects.filter(type="unknown").count() == MESSAGES // 4
    final = dict(Message.objects.values_list("provider_message_id", "status"))
    recipients = dict(Message.objects.values_list("provider_message_id", "recipient_status"))
    for i in range(MESSAGES):
        expected = story_of(i)
        assert final[f"mt-{i}"] == expected, (i, STORIES[expected])
        assert recipients[f"mt-{i}"] == {f"user{i}@x.example": expected}


def test_jsonl_batches_are_accepted_too(client, mailtrap):
    [message] = Message.objects.bulk_create(
        [
            Message(
                route="domain",
                provider="mailtrap",
                from_email={"email": "a@x.example", "name": ""},
                from_address="a@x.example",
                to=[{"email": "user0@x.example", "name": ""}],
                status="sent",
                idempotency_key=str(uuid.uuid4()),
                provider_message_id="mt-0",
            )
        ]
    )
    body = "\n".join(json.dumps(e) for e in events_for(0, message)).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        URL, body, content_type="application/jsonl", HTTP_MAILTRAP_SIGNATURE=signature
    )
    assert response.json()["stored"] == 4
    message.refresh_from_db()
    assert message.status == "delivered"


def test_a_batch_with_one_malformed_event_is_refused_whole(client, mailtrap):
    rows = messages()[:3]
    batch = [e for i, m in enumerate(rows) for e in events_for(i, m)]
    batch[5] = batch[5] | {"timestamp": "yesterday"}
    body = json.dumps({"events": batch}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        URL, body, content_type="application/json", HTTP_MAILTRAP_SIGNATURE=signature
    )
    assert response.status_code == 400 and "Event 5" in response.json()["detail"]
    assert DeliveryEvent.objects.count() == 0
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}


def test_more_than_500_events_in_one_call_is_refused(client, mailtrap):
    rows = messages()[:126]
    batch = [e for i, m in enumerate(rows) for e in events_for(i, m)]
    body = json.dumps({"events": batch}).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        URL, body, content_type="application/json", HTTP_MAILTRAP_SIGNATURE=signature
    )
    assert response.status_code == 400 and DeliveryEvent.objects.count() == 0


@pytest.mark.parametrize(
    "field",
    [
        {"reason": "bad\u0000reason"},
        {"extra": "nul \u0000 in the raw payload only"},
        {"extra": float("nan")},
        {"reason": "\ud800"},
    ],
    ids=["nul-in-a-field", "nul-in-raw", "nan", "lone-surrogate"],
)
def test_values_a_database_cannot_store_make_a_400_not_a_500(client, mailtrap, field):
    [message] = messages()[:1]
    event = events_for(0, message)[0] | field
    text = json.dumps({"events": [event]}, ensure_ascii=True)  # NaN, \\u0000, \\ud800 as JSON
    body = text.encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        URL, body, content_type="application/json", HTTP_MAILTRAP_SIGNATURE=signature
    )
    assert response.status_code == 400, response.content
    assert DeliveryEvent.objects.count() == 0


def test_two_deliveries_of_one_batch_in_opposite_orders_store_each_event_once(
    mailtrap, transactional_db
):
    import threading

    from django.db import connections

    from django_txmail.providers.mailtrap.webhooks import parse
    from django_txmail.tracking.ingest import ingest

    rows = messages()[:100]
    events = parse(
        json.dumps(
            {"events": [e for i, m in enumerate(rows) for e in events_for(i, m)][:300]}
        ).encode()
    )
    errors = []

    def deliver(order):
        try:
            ingest("mailtrap", order)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=deliver, args=(events,)),
        threading.Thread(target=deliver, args=(events[::-1],)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert DeliveryEvent.objects.count() == 300
