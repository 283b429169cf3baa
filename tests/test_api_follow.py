"""Following mail over the API: the message list (filters, cursor paging, no COUNT),
one message with its attempts and events, and the delivery events."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_txmail.models import Attempt, DeliveryEvent, Message
from tests.api_helpers import user_with
from tests.message_rows import message_row

pytestmark = pytest.mark.django_db

MESSAGES = reverse("txmail:message-list")
EVENTS = reverse("txmail:event-list")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def event(message: Message, kind: str, *, recipient: str = "ann@x.example", at=None):
    return DeliveryEvent.objects.create(
        message=message,
        provider="nylas",
        type=kind,
        provider_type=kind,
        provider_event_id=f"{message.pk}-{kind}",
        recipient=recipient,
        occurred_at=at or timezone.now(),
        ingest_batch="00000000-0000-0000-0000-000000000000",
    )


def test_the_list_is_newest_first(api):
    now = timezone.now()
    old = message_row(created_at=now - timedelta(hours=2))
    new = message_row(created_at=now - timedelta(hours=1))
    assert ids(api.get(MESSAGES)) == [str(new.pk), str(old.pk)]


@pytest.mark.parametrize(
    ("query", "wanted"),
    [
        ({"status": "bounced"}, "bounced"),
        ({"stream": "broadcast"}, "broadcast"),
        ({"recipient": "Bob@Y.example"}, "bob"),
        ({"domain": "other.example"}, "other"),
        ({"template": "welcome"}, "welcome"),
        ({"tag": "receipt"}, "tagged"),
        ({"metadata_key": "order", "metadata_value": "1042"}, "order"),
        ({"metadata_key": "order"}, "order"),
    ],
)
def test_each_filter_finds_only_its_messages(api, query, wanted):
    rows = {
        "plain": message_row(),
        "bounced": message_row(status=Message.Status.BOUNCED),
        "broadcast": message_row(stream="broadcast"),
        "bob": message_row(to="bob@y.example"),
        "bobby": message_row(to="bobby@y.example"),
        "other": message_row(route_domain="other.example"),
        "welcome": message_row(template="welcome"),
        "tagged": message_row(tags=["receipt", "shop"]),
        "receipts": message_row(tags=["receipts"]),
        "order": message_row(metadata={"order": "1042"}),
        "other_order": message_row(metadata={"ordered": "1042"}),
    }
    assert ids(api.get(MESSAGES, query)) == [str(rows[wanted].pk)]


def test_a_date_range_takes_the_messages_made_in_it(api):
    now = timezone.now()
    rows = [message_row(created_at=now - timedelta(days=d)) for d in (3, 2, 1)]
    query = {
        "after": (now - timedelta(days=2, hours=1)).isoformat(),
        "before": (now - timedelta(days=1, hours=1)).isoformat(),
    }
    assert ids(api.get(MESSAGES, query)) == [str(rows[1].pk)]


def test_an_unknown_filter_is_refused_not_ignored(api):
    message_row()
    response = api.get(MESSAGES, {"stauts": "failed"})
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_field"


def test_a_bad_filter_value_is_a_400(api):
    response = api.get(MESSAGES, {"status": "lost"})
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_choice"


def test_pages_follow_the_cursor_without_ever_counting(api):
    now = timezone.now()
    rows = [message_row(created_at=now - timedelta(minutes=m)) for m in range(5)]
    seen, url = [], MESSAGES + "?page_size=2"
    with CaptureQueriesContext(connection) as queries:
        while url:
            body = api.get(url).json()
            seen += [row["id"] for row in body["results"]]
            url = body["next"]
    assert seen == [str(m.pk) for m in rows]
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert "count" not in body


def test_the_list_needs_the_view_permission(client):
    message_row()
    client.force_login(user_with("send_message"))
    assert client.get(MESSAGES).status_code == 403


def test_a_message_shows_its_attempts_and_events(api):
    message = message_row()
    Attempt.objects.create(
        message=message, number=1, started_at=timezone.now(), duration_ms=12, outcome="accepted"
    )
    event(message, "delivered")
    body = api.get(reverse("txmail:message-detail", args=[message.pk])).json()
    assert [a["number"] for a in body["attempt_log"]] == [1]
    assert [e["type"] for e in body["events"]] == ["delivered"]


def test_events_need_their_own_view_permission_as_in_the_admin(client):
    message = message_row()
    event(message, "delivered")
    client.force_login(user_with("view_message"))
    body = client.get(reverse("txmail:message-detail", args=[message.pk])).json()
    assert "events" not in body and "attempt_log" not in body


def test_an_unknown_message_is_a_404_in_the_error_shape(api):
    response = api.get(
        reverse("txmail:message-detail", args=["0" * 8 + "-0000-0000-0000-" + "0" * 12])
    )
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize("by", ["type", "recipient", "message", "date"])
def test_events_are_filtered_by_type_recipient_message_and_date(api, by):
    now = timezone.now()
    first, second = message_row(), message_row()
    rows = {
        "type": event(first, "bounced", at=now - timedelta(days=3)),
        "recipient": event(
            first, "delivered", recipient="zed@z.example", at=now - timedelta(days=3)
        ),
        "message": event(second, "opened", at=now - timedelta(days=3)),
        "date": event(first, "clicked", at=now - timedelta(hours=1)),
    }
    query = {
        "type": {"type": "bounced"},
        "recipient": {"recipient": "ZED@z.example"},
        "message": {"message": str(second.pk)},
        "date": {"after": (now - timedelta(days=1)).isoformat()},
    }[by]
    assert ids(api.get(EVENTS, query)) == [rows[by].pk]


def test_events_need_the_view_permission_of_delivery_events(client):
    client.force_login(user_with("view_message"))
    assert client.get(EVENTS).status_code == 403
