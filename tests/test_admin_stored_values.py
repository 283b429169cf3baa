"""No value stored in a row can break an admin page."""

from __future__ import annotations

import html
import json

import pytest
from django.db import connection
from django.urls import reverse

from tests.message_rows import event_row, message_row

pytestmark = pytest.mark.django_db


def deep(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.fixture
def deep_event():
    """An event whose raw JSON nests 2,000 deep (written as text, as an older version could)."""
    message = message_row()
    event = event_row(message, "delivered")
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE django_txmail_deliveryevent SET raw = %s WHERE id = %s",
            [deep(2_000), event.pk],
        )
    return event


def test_a_deeply_nested_event_breaks_neither_its_message_nor_its_own_page(
    admin_client, deep_event
):
    message_page = admin_client.get(
        reverse("admin:django_txmail_message_change", args=[deep_event.message_id])
    )
    assert message_page.status_code == 200
    event_page = admin_client.get(
        reverse("admin:django_txmail_deliveryevent_change", args=[deep_event.pk])
    )
    assert event_page.status_code == 200
    assert "nests too deeply to show" in event_page.text
    listing = admin_client.get(reverse("admin:django_txmail_deliveryevent_changelist"))
    assert listing.status_code == 200


def test_an_events_payload_is_shown_as_indented_json(admin_client):
    event = event_row(message_row(), "delivered", raw={"recipients": ["ann@x.example", "b"]})
    page = admin_client.get(reverse("admin:django_txmail_deliveryevent_change", args=[event.pk]))
    indented = json.dumps({"recipients": ["ann@x.example", "b"]}, indent=2)
    assert html.escape(indented) in page.text
