"""A Nylas notification naming many recipients: stored once, capped, only the message's own."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from django_txmail.models import DeliveryEvent, WebhookPayload
from django_txmail.outbox.cleanup import cleanup
from tests.test_webhooks import delivered, post, sent_message

pytestmark = pytest.mark.django_db

# The SECRET and TXMAIL of tests.test_webhooks.
from tests.test_webhooks import webhook_settings  # noqa: E402, F401  (autouse fixture)


def two_recipient_message():
    return sent_message(to=[{"email": "ann@x.example", "name": ""}, {"email": "bob@x.example"}])


def many(count: int) -> list[str]:
    return ["ann@x.example", "bob@x.example"] + [f"r{n}@y.example" for n in range(count - 2)]


def stored_bytes() -> int:
    """The size of every stored payload, as the database holds it."""
    with connection.cursor() as cursor:
        total = 0
        for table in ("django_txmail_deliveryevent", "django_txmail_webhookpayload"):
            cursor.execute(f"SELECT COALESCE(SUM(LENGTH(CAST(raw AS TEXT))), 0) FROM {table}")
            total += cursor.fetchone()[0]
    return total


def test_recipients_the_message_does_not_have_are_ignored(client):
    message = two_recipient_message()
    body = delivered(message, many(2_000))
    response = post(client, body)
    assert response.status_code == 200
    assert response.json() | {} == {
        "received": 2_000,
        "stored": 2,
        "duplicates": 0,
        "unmatched": 0,
        "ignored": 1_998,
    }
    message.refresh_from_db()
    assert message.recipient_status == {
        "ann@x.example": "delivered",
        "bob@x.example": "delivered",
    }
    assert stored_bytes() < 3 * len(json.dumps(body))


def test_one_notification_for_several_recipients_is_stored_once(client):
    message = two_recipient_message()
    body = delivered(message, ["ann@x.example", "bob@x.example"])
    post(client, body)
    [payload] = WebhookPayload.objects.all()
    assert payload.raw == body
    events = list(DeliveryEvent.objects.all())
    assert len(events) == 2
    assert all(e.raw is None and e.provider_payload == body for e in events)
    assert stored_bytes() < 1.5 * len(json.dumps(body))


def test_a_redelivered_notification_leaves_no_second_payload(client):
    message = two_recipient_message()
    body = delivered(message, ["ann@x.example", "bob@x.example"])
    post(client, body)
    assert post(client, body).json()["duplicates"] == 2
    assert WebhookPayload.objects.count() == 1


def test_a_payload_goes_with_the_last_of_its_events_at_cleanup(client):
    message = two_recipient_message()
    post(client, delivered(message, ["ann@x.example", "bob@x.example"]))
    message.status = "delivered"
    message.save()
    cleanup(timezone.now() + timezone.timedelta(days=1))
    assert not DeliveryEvent.objects.exists() and not WebhookPayload.objects.exists()


def test_more_events_than_the_cap_are_refused_whole(client, settings):
    settings.TXMAIL = settings.TXMAIL | {"WEBHOOK_MAX_EVENTS": 10}
    message = two_recipient_message()
    response = post(client, delivered(message, many(11)))
    assert response.status_code == 413
    assert "Over 10 events" in response.json()["detail"]
    assert not DeliveryEvent.objects.exists() and not WebhookPayload.objects.exists()
    assert post(client, delivered(message, many(10))).status_code == 200


def test_a_message_page_stays_bounded_whatever_its_event_count(admin_client):
    message = two_recipient_message()
    now = timezone.now()
    DeliveryEvent.objects.bulk_create(
        DeliveryEvent(
            message=message,
            provider="nylas",
            type="opened",
            provider_type="message.opened",
            provider_event_id=f"open-{n}",
            recipient="ann@x.example",
            occurred_at=now + timezone.timedelta(seconds=n),
            raw={"n": n, "padding": "x" * 500},
            ingest_batch=uuid.uuid4(),
        )
        for n in range(3_000)
    )
    page = admin_client.get(reverse("admin:django_txmail_message_change", args=[message.pk]))
    assert page.status_code == 200
    assert "open-2999" in page.text and "open-2899" not in page.text  # the latest 100
    assert page.text.count("open-") == 100
    assert f"?message={message.pk}" in page.text and "3000" in page.text
    assert len(page.content) < 400_000
    other = two_recipient_message()
    DeliveryEvent.objects.filter(provider_event_id="open-0").update(message=other)
    listing = admin_client.get(
        reverse("admin:django_txmail_deliveryevent_changelist"), {"message": str(message.pk)}
    )
    shown = listing.context["cl"].result_list
    assert listing.status_code == 200 and len(shown) > 0
    assert {event.message_id for event in shown} == {message.pk}
