"""The dashboard: mail per day as a server-rendered SVG chart, and each domain's rates."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_txmail.admin.dashboard import chart, daily, domain_health

from .message_rows import event_row, message_row

pytestmark = pytest.mark.django_db
URL = reverse("admin:django_txmail_dashboard")


def sent_days_ago(days: int, count: int = 1, **fields):
    when = timezone.now() - timedelta(days=days)
    return [message_row(sent_at=when, **fields) for _ in range(count)]


def test_days_count_sent_messages_and_delivered_bounced_complained_events():
    today = sent_days_ago(0, 3)
    for message, kind in zip(today, ["delivered", "bounced", "complained"], strict=True):
        event_row(message, kind)
        event_row(message, "opened")  # not charted
    sent_days_ago(2, 2)
    sent_days_ago(45, 5)  # outside the 30 days
    days = daily()
    assert len(days) == 30 and days[-1].day == timezone.localdate()
    assert (days[-1].sent, days[-1].delivered, days[-1].bounced, days[-1].complained) == (
        3,
        1,
        1,
        1,
    )
    assert days[-3].sent == 2
    assert sum(d.sent for d in days) == 5


def test_the_numbers_take_four_queries_whatever_the_days_and_messages(admin_client):
    """Messages sent, delivery events and suppressions added per day; domains' rates."""
    for n in range(10):
        event_row(sent_days_ago(n)[0], "delivered")
    with CaptureQueriesContext(connection) as queries:
        daily()
        domain_health()
    assert len(queries) == 4
    assert all("GROUP BY" in q["sql"].upper() for q in queries)


def test_domains_past_the_bounce_or_complaint_threshold_are_flagged():
    healthy = sent_days_ago(1, 100, route_domain="good.example")
    event_row(healthy[0], "delivered")
    bouncy = sent_days_ago(1, 20, route_domain="bouncy.example")
    for message in bouncy[:2]:  # 10 %
        message.status = "bounced"
        message.save(update_fields=["status"])
    noisy = sent_days_ago(1, 500, route_domain="noisy.example")
    noisy[0].status = "complained"  # 0.2 %
    noisy[0].save(update_fields=["status"])
    health = {d.domain: d for d in domain_health()}
    assert health["good.example"].warnings == []
    assert health["bouncy.example"].bounce_percent == 10.0
    assert "Bounce rate 10.0 % is above 4 %" in health["bouncy.example"].warnings[0]
    assert "Complaint rate 0.20 % is above 0.1 %" in health["noisy.example"].warnings[0]
    assert list(health) == ["noisy.example", "good.example", "bouncy.example"]  # busiest first


def test_thresholds_are_settings(settings):
    settings.TXMAIL = settings.TXMAIL | {"BOUNCE_WARNING_PERCENT": 20}
    bouncy = sent_days_ago(1, 10, route_domain="bouncy.example")
    bouncy[0].status = "bounced"
    bouncy[0].save(update_fields=["status"])
    assert domain_health()[0].warnings == []


def test_the_chart_scales_to_a_round_top_and_plots_every_day():
    days = daily()
    days[-1].sent = 7
    drawn = chart(days)
    assert [value for _, value in drawn.y_ticks] == [0, 2, 4, 6, 8, 10]
    sent = drawn.series[0]
    assert sent["name"] == "sent" and len(sent["dots"]) == 30 and sent["total"] == 7
    x, y, label = sent["dots"][-1]
    assert y == pytest.approx(drawn.bottom - (drawn.bottom - drawn.top) * 0.7, abs=0.1)
    assert label.endswith("7 sent")


def test_the_page_draws_an_inline_svg_chart_and_the_domain_table(admin_client):
    for message in sent_days_ago(0, 4, route_domain="shop.example"):
        event_row(message, "delivered")
    page = admin_client.get(URL).text
    svg = re.search(r"<svg class=\"txmail-chart\".*?</svg>", page, re.S)[0]
    assert svg.count("<polyline") == 5 and svg.count("<circle") == 150  # 5 series, 30 days
    assert "4 sent" in svg and "4 delivered" in svg
    assert "<script" not in page.split("<svg", 1)[1] and "cdn" not in page.lower()
    table = re.search(r'<table id="txmail-domains">.*?</table>', page, re.S)[0]
    assert "shop.example" in table and "0.0 %" in table
    assert "Warnings past 4 % bounces or 0.1 % complaints." in page


def test_the_dashboard_is_linked_from_the_message_list_and_the_app_page(admin_client):
    assert URL in admin_client.get(reverse("admin:django_txmail_message_changelist")).text
    assert URL in admin_client.get(reverse("admin:app_list", args=["django_txmail"])).text


def test_the_dashboard_needs_permission_to_view_messages(client):
    assert client.get(URL).status_code == 302
    client.force_login(User.objects.create_user("nobody", password="pw", is_staff=True))
    assert client.get(URL).status_code == 403


@pytest.mark.parametrize("value", [0, -1, 101, "4", True])
def test_a_threshold_that_is_not_a_percentage_is_a_clear_error(settings, value):
    from django.core.exceptions import ImproperlyConfigured

    from django_txmail.conf import get_settings

    settings.TXMAIL = settings.TXMAIL | {"COMPLAINT_WARNING_PERCENT": value}
    with pytest.raises(ImproperlyConfigured, match="COMPLAINT_WARNING_PERCENT.*percentage"):
        get_settings()
