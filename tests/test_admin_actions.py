"""Resend, retry and cancel in the admin: POST with CSRF, behind permissions, confirmed first."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_txmail.models import DeliveryEvent, Message
from txmail_sandbox.faults import Fault

from .message_rows import event_row, message_row

pytestmark = pytest.mark.django_db
LIST = reverse("admin:django_txmail_message_changelist")


def url(name: str, message: Message) -> str:
    return reverse(f"admin:django_txmail_message_{name}", args=[message.pk])


@pytest.fixture
def sent(sandbox, domain) -> Message:
    mail.send_mail("Receipt", "Thanks.", "noreply@example.com", ["ann@x.example"])
    return Message.objects.get()


def support_client(*codenames: str, view: bool = True) -> Client:
    user = User.objects.create_user("support", password="pw", is_staff=True)
    for codename in ("view_message",) * view + codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, path: str, data: dict | None = None, *, page: str):
    """POST like the browser does: with the CSRF token of the page the form is on."""
    client.get(page)
    return client.post(
        path, {**(data or {}), "csrfmiddlewaretoken": client.cookies["csrftoken"].value}
    )


def test_resend_asks_first_then_opens_the_new_message(sent, sandbox):
    client = support_client("resend_message")
    confirm = client.get(url("resend", sent))
    assert confirm.status_code == 200
    assert "will be resent" in confirm.text and "ann@x.example" in confirm.text
    assert Message.objects.count() == 1  # a GET sends nothing
    response = csrf_post(client, url("resend", sent), {"post": "yes"}, page=url("resend", sent))
    copy = Message.objects.exclude(pk=sent.pk).get()
    assert response.status_code == 302 and response["Location"] == url("change", copy)
    assert copy.resent_from_id == sent.pk and copy.status == "sent"
    assert len(sandbox.messages) == 2


def test_resend_without_the_csrf_token_is_refused(sent):
    client = support_client("resend_message")
    assert client.post(url("resend", sent), {"post": "yes"}).status_code == 403
    assert Message.objects.count() == 1


def test_resend_retry_and_cancel_need_their_permission(sent):
    client = support_client()
    for name in ("resend", "retry", "cancel"):
        response = csrf_post(client, url(name, sent), {"post": "yes"}, page=url("change", sent))
        assert response.status_code == 403, name
    assert client.get(url("resend", sent)).status_code == 403
    assert Message.objects.count() == 1


def test_acting_on_a_message_needs_the_permission_to_view_it(sent):
    client = support_client("resend_message", "retry_message", "cancel_message", view=False)
    confirm = client.get(url("resend", sent))
    assert confirm.status_code == 403 and "Receipt" not in confirm.text
    for name in ("resend", "retry", "cancel"):
        response = csrf_post(client, url(name, sent), {"post": "yes"}, page="/admin/")
        assert response.status_code == 403, name
    assert Message.objects.count() == 1
    sent.refresh_from_db()
    assert sent.status == "sent"


def test_messages_cannot_be_deleted_in_the_admin(admin_client, sent):
    assert "delete_selected" not in admin_client.get(LIST).text
    assert admin_client.get(url("delete", sent)).status_code == 403
    admin_client.post(LIST, {"action": "delete_selected", ACTION_CHECKBOX_NAME: [str(sent.pk)]})
    assert admin_client.post(url("delete", sent), {"post": "yes"}).status_code == 403
    assert Message.objects.filter(pk=sent.pk).exists()


def test_retry_and_cancel_are_post_only(sent):
    client = support_client("retry_message", "cancel_message")
    for name in ("retry", "cancel"):
        assert client.get(url(name, sent)).status_code == 405


def test_retry_button_sends_a_failed_message_now(sandbox, domain):
    sandbox.inject(Fault(status=400, message="Domain not ready"))
    with pytest.raises(Exception, match="Domain not ready"):
        mail.send_mail("Receipt", "Thanks.", "noreply@example.com", ["ann@x.example"])
    failed = Message.objects.get()
    client = support_client("retry_message")
    response = csrf_post(client, url("retry", failed), page=url("change", failed))
    assert response.status_code == 302 and response["Location"] == url("change", failed)
    failed.refresh_from_db()
    assert failed.status == "sent" and failed.attempts == 2
    page = client.get(url("change", failed)).text
    assert f"Retried message {failed.pk}; it is sent now." in page


def test_retry_of_a_message_that_is_not_failed_says_why(sent):
    client = support_client("retry_message")
    csrf_post(client, url("retry", sent), page=url("change", sent))
    page = client.get(url("change", sent)).text
    assert "only failed messages and messages waiting for a retry can be retried" in page


def test_cancel_button_stops_a_scheduled_message(sandbox, domain):
    msg = mail.EmailMessage("Later", "b", "noreply@example.com", ["ann@x.example"])
    msg.send_at = timezone.now() + timedelta(days=30)
    msg.send()
    scheduled = Message.objects.get()
    assert scheduled.status == "scheduled"
    client = support_client("cancel_message")
    csrf_post(client, url("cancel", scheduled), page=url("change", scheduled))
    scheduled.refresh_from_db()
    assert scheduled.status == "cancelled"


def bulk(client, action: str, messages, **extra):
    data = {"action": action, ACTION_CHECKBOX_NAME: [str(m.pk) for m in messages], **extra}
    return csrf_post(client, LIST, data, page=LIST)


def test_bulk_resend_lists_what_goes_and_what_is_skipped_before_sending(sent, sandbox, domain):
    waiting = Message.objects.create(
        **{
            f.attname: getattr(sent, f.attname)
            for f in Message._meta.concrete_fields
            if f.attname not in ("id", "idempotency_key", "status", "created_at", "updated_at")
        },
        idempotency_key="waiting",
        status="scheduled",
    )
    client = support_client("resend_message")
    confirm = bulk(client, "resend_messages", [sent, waiting])
    assert confirm.status_code == 200
    assert "This sends 1 message again" in confirm.text
    assert "has not been sent yet" in confirm.text
    assert Message.objects.count() == 2
    done = bulk(client, "resend_messages", [sent, waiting], post="yes")
    assert done.status_code == 302
    assert Message.objects.filter(resent_from=sent).count() == 1
    assert not Message.objects.filter(resent_from=waiting).exists()
    assert len(sandbox.messages) == 2


def test_bulk_resend_is_not_offered_without_the_permission(sent):
    client = support_client()
    page = client.get(LIST).text
    assert "resend_messages" not in page
    response = bulk(client, "resend_messages", [sent], post="yes")
    assert response.status_code == 200
    assert Message.objects.count() == 1


def test_bulk_retry_and_cancel_report_each_refusal(sent):
    client = support_client("retry_message", "cancel_message")
    bulk(client, "retry_messages", [sent])
    assert "only failed messages" in client.get(LIST).text
    bulk(client, "cancel_messages", [sent])
    assert "only queued or scheduled messages" in client.get(LIST).text


def later(**fields) -> Message:
    soon = timezone.now() + timedelta(days=1)
    return message_row(status="scheduled", send_at=soon, next_attempt_at=soon, **fields)


def test_select_all_is_not_offered_and_a_select_across_is_refused(admin_client):
    for n in range(150):
        later(subject=f"s{n}")
    page = admin_client.get(LIST).text
    assert "Select all 1" not in page and 'class="question' not in page
    ticked = Message.objects.order_by("-created_at").first()
    data = {"action": "cancel_messages", "index": "0", ACTION_CHECKBOX_NAME: [str(ticked.pk)]}
    response = admin_client.post(LIST, {**data, "select_across": "1"}, follow=True)
    assert "Selecting across all pages is not available here" in response.text
    assert not Message.objects.filter(status="cancelled").exists()
    admin_client.post(LIST, {**data, "select_across": "0"})
    assert list(Message.objects.filter(status="cancelled")) == [ticked]


def test_the_event_list_refuses_select_across_too(admin_client):
    events = reverse("admin:django_txmail_deliveryevent_changelist")
    ticked = event_row(message_row(), "delivered")
    event_row(None, "bounced")
    assert 'class="question' not in admin_client.get(events).text
    data = {"action": "delete_selected", "select_across": "1", "index": "0"}
    response = admin_client.post(events, {**data, ACTION_CHECKBOX_NAME: [ticked.pk]}, follow=True)
    assert "Selecting across all pages is not available here" in response.text
    assert DeliveryEvent.objects.count() == 2


@pytest.mark.parametrize("action", ["retry_messages", "cancel_messages", "resend_messages"])
def test_bulk_actions_take_at_most_500_messages(admin_client, action):
    chosen = [later() for _ in range(501)]
    response = bulk(admin_client, action, chosen)
    verb = action.removesuffix("_messages")
    assert f"Choose at most 500 messages to {verb} here" in admin_client.get(LIST).text
    assert response.status_code == 302
    assert not Message.objects.exclude(status="scheduled").exists()
    assert Message.objects.count() == 501


def test_bulk_resend_confirmation_costs_the_same_queries_for_2_or_20_messages(admin_client):
    def confirm(messages) -> int:
        with CaptureQueriesContext(connection) as queries:
            page = bulk(admin_client, "resend_messages", messages)
        assert page.status_code == 200 and "will be resent" in page.text
        return len(queries)

    few = [message_row() for _ in range(2)]
    many = [message_row() for _ in range(20)]
    message_row(resent_from=many[0])
    assert confirm(many) == confirm(few)
