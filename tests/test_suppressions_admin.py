"""The Suppressions admin page, the message detail's suppressed recipients, the stream
filter and the dashboard's suppressions per day; one run in a real browser."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from django_txmail import suppressions
from django_txmail.admin import dashboard
from django_txmail.message import TxMessage
from django_txmail.models import DeliveryEvent, Message, Suppression

FROM = "Shop <noreply@example.com>"
LIST = "/admin/django_txmail/suppression/"


@pytest.fixture
def admin_client_(db):
    User.objects.create_superuser("support", "support@example.com", "pw")
    client = Client()
    client.login(username="support", password="pw")
    return client


def staff(*codenames: str) -> Client:
    user = User.objects.create_user("staff", "staff@example.com", "pw", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.login(username="staff", password="pw")
    return client


@pytest.mark.django_db
def test_search_by_address_in_any_spelling_and_filter_by_reason_and_stream(admin_client_):
    suppressions.suppress("ann@example.com", reason="hard_bounce")
    suppressions.suppress("ann@example.com", stream="broadcast", reason="unsubscribe")
    suppressions.suppress("bob@example.com", reason="complaint")
    page = admin_client_.get(LIST, {"q": "ANN@Example.com"})
    assert [e.address for e in page.context["cl"].result_list] == ["ann@example.com"] * 2
    page = admin_client_.get(LIST, {"reason": "complaint"})
    assert [e.address for e in page.context["cl"].result_list] == ["bob@example.com"]
    page = admin_client_.get(LIST, {"stream": "broadcast"})
    assert [e.reason for e in page.context["cl"].result_list] == ["unsubscribe"]
    page = admin_client_.get(LIST, {"stream": "*"})
    assert len(page.context["cl"].result_list) == 2


@pytest.mark.django_db
def test_the_causing_event_is_linked(admin_client_, sandbox, domain):
    TxMessage("Receipt", "Thanks", FROM, ["ann@x.example"]).send()
    message = Message.objects.get()
    event = DeliveryEvent.objects.create(
        message=message,
        provider="nylas",
        type="bounced",
        provider_type="bounced",
        provider_event_id="e1",
        recipient="ann@x.example",
        occurred_at=timezone.now(),
        raw={},
        ingest_batch="00000000-0000-0000-0000-000000000001",
    )
    suppressions.suppress("ann@x.example", reason="hard_bounce", event=event)
    page = admin_client_.get(LIST)
    assert f"/admin/django_txmail/message/{message.pk}/change/" in page.content.decode()


@pytest.mark.django_db
def test_adding_normalises_the_address_and_needs_the_add_permission(admin_client_):
    response = admin_client_.post(
        f"{LIST}add/", {"address": "Ann@Bücher.Example", "stream": "", "reason": "manual"}
    )
    assert response.status_code == 302
    assert Suppression.objects.get().address == "ann@xn--bcher-kva.example"
    response = admin_client_.post(
        f"{LIST}add/", {"address": "nope", "stream": "", "reason": "manual"}
    )
    assert response.status_code == 200 and Suppression.objects.count() == 1
    assert (
        staff("view_suppression")
        .post(f"{LIST}add/", {"address": "c@example.com", "stream": "", "reason": "manual"})
        .status_code
        == 403
    )


@pytest.mark.django_db
def test_lifting_is_a_post_with_a_reason_kept_in_the_admin_log(admin_client_):
    entry, _ = suppressions.suppress("ann@example.com", reason="hard_bounce")
    lift_url = f"{LIST}{entry.pk}/lift/"
    assert admin_client_.get(f"{LIST}{entry.pk}/delete/").url == lift_url
    page = admin_client_.get(lift_url)
    assert page.status_code == 200 and Suppression.objects.exists()
    assert admin_client_.post(lift_url, {"reason": ""}).status_code == 200  # a reason is needed
    assert Suppression.objects.exists()
    response = admin_client_.post(lift_url, {"reason": "Mailbox fixed, said on the phone"})
    assert response.status_code == 302
    assert not Suppression.objects.exists()
    log = LogEntry.objects.get()
    assert (log.action_flag, log.change_message) == (DELETION, "Mailbox fixed, said on the phone")


@pytest.mark.django_db
def test_lifting_needs_the_delete_permission(db):
    entry, _ = suppressions.suppress("ann@example.com")
    client = staff("view_suppression")
    assert client.post(f"{LIST}{entry.pk}/lift/", {"reason": "x"}).status_code == 403
    assert Suppression.objects.exists()


@pytest.mark.django_db
def test_the_message_detail_shows_suppressed_recipients_and_the_list_filters_by_stream(
    admin_client_, sandbox, domain, settings
):
    settings.TXMAIL = {**settings.TXMAIL, "BASE_URL": "https://mail.example.com"}
    suppressions.suppress("gone@x.example")
    TxMessage("Receipt", "Thanks", FROM, ["ann@x.example", "gone@x.example"]).send()
    TxMessage("News", "Hi", FROM, ["ann@x.example"], stream="broadcast").send()
    receipt = Message.objects.get(subject="Receipt")
    page = admin_client_.get(f"/admin/django_txmail/message/{receipt.pk}/change/")
    detail = page.content.decode()
    assert 'href="/admin/django_txmail/suppression/?q=gone@x.example">gone@x.example</a>' in detail
    listed = admin_client_.get("/admin/django_txmail/message/", {"stream": "broadcast"})
    assert [m.subject for m in listed.context["cl"].result_list] == ["News"]


@pytest.mark.django_db
def test_the_dashboard_counts_suppressions_added_per_day_and_filters_by_stream(admin_client_):
    suppressions.suppress("a@example.com")
    suppressions.suppress("b@example.com", stream="broadcast", reason="unsubscribe")
    suppressions.suppress("c@example.com", stream="transactional")
    assert dashboard.daily()[-1].suppressed == 3
    assert dashboard.daily(stream="broadcast")[-1].suppressed == 2  # its own and every-stream
    page = admin_client_.get("/admin/django_txmail/message/dashboard/", {"stream": "broadcast"})
    assert page.status_code == 200
    totals = {s["name"]: s["total"] for s in page.context["chart"].series}
    assert totals["suppressed"] == 2


# --- In a browser ----------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_support_finds_a_suppression_and_lifts_it_in_a_browser(live_server, monkeypatch):
    from playwright.sync_api import expect

    from tests.browser import ARTIFACTS, admin_browser, log_in

    suppressions.suppress("ann@example.com", reason="hard_bounce", note="550 user unknown")
    suppressions.suppress("bob@example.com", reason="complaint")
    with admin_browser(live_server, monkeypatch) as page:
        log_in(page, LIST)
        expect(page.locator("#result_list tbody tr")).to_have_count(2)
        page.locator("#changelist-filter a", has_text="hard bounce").click()
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        page.fill("#searchbar", "ANN@example.com")
        page.press("#searchbar", "Enter")
        expect(page.locator("#result_list tbody tr")).to_have_count(1)
        page.screenshot(path=str(ARTIFACTS / "admin-suppressions.png"), full_page=True)
        page.locator("#result_list a", has_text="ann@example.com").click()
        expect(page.get_by_text("550 user unknown")).to_be_visible()
        page.locator(".submit-row a.deletelink").click()  # a link, or role=button on Django 6
        page.fill("#id_reason", "The recipient fixed their mailbox")
        page.get_by_role("button", name="Lift the suppression").click()
        expect(page.locator(".messagelist .success")).to_contain_text("ann@example.com")
    assert list(Suppression.objects.values_list("address", flat=True)) == ["bob@example.com"]
    assert LogEntry.objects.get().change_message == "The recipient fixed their mailbox"


@pytest.mark.django_db
def test_the_api_tells_a_messages_stream_and_its_suppressed_recipients(
    admin_client_, sandbox, domain
):
    suppressions.suppress("gone@x.example")
    msg = TxMessage("Receipt", "Thanks", FROM, ["ann@x.example", "gone@x.example"])
    msg.send()
    data = admin_client_.get(f"/txmail/api/messages/{msg.txmail.message_id}/").json()
    assert data["stream"] == "transactional"
    assert data["recipient_status"] == {"gone@x.example": "suppressed"}
