"""Cancelling messages that have not been sent: in the outbox and at the provider."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse
from django.utils import timezone

from django_txmail.exceptions import CannotCancel
from django_txmail.message import TxMessage
from django_txmail.models import Message
from django_txmail.outbox.cancel import cancel
from django_txmail.sending.worker import Worker
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db


def scheduled(sender: str, ahead: timedelta) -> Message:
    TxMessage("Later", "b", sender, ["a@x.example"], send_at=timezone.now() + ahead).send()
    return Message.objects.get(subject="Later")


@pytest.mark.django_db(transaction=True)
def test_mail_held_in_the_outbox_is_cancelled_and_never_sent(sandbox, domain):
    message = scheduled("noreply@example.com", timedelta(hours=3))
    cancel(message)
    assert message.status == "cancelled" and message.next_attempt_at is None
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert Worker().run(once=True).attempted == 0
    assert sandbox.requests == []


def test_mail_scheduled_at_nylas_is_cancelled_through_its_schedules_api(sandbox, grant):
    message = scheduled("alice@example.org", timedelta(hours=3))
    assert message.provider_schedule_id
    cancel(message)
    assert message.status == "cancelled"
    [received] = sandbox.messages
    assert received.cancelled
    assert [r.method for r in sandbox.requests] == ["POST", "DELETE"]
    assert sandbox.requests[1].path.endswith(f"/schedules/{message.provider_schedule_id}")


def test_a_queued_retry_can_be_cancelled(sandbox, domain):
    sandbox.inject(Fault(status=503))
    TxMessage("Retry", "b", "noreply@example.com", ["a@x.example"]).send()
    message = Message.objects.get()
    cancel(message)
    assert message.status == "cancelled"


def test_a_sent_message_cannot_be_cancelled(sandbox, domain):
    TxMessage("Now", "b", "noreply@example.com", ["a@x.example"]).send()
    with pytest.raises(CannotCancel, match="only queued or scheduled"):
        cancel(Message.objects.get())


def test_when_nylas_no_longer_holds_it_the_cancel_is_refused(sandbox, grant):
    message = scheduled("alice@example.org", timedelta(hours=3))
    cancel(message)
    Message.objects.filter(pk=message.pk).update(status="scheduled")
    with pytest.raises(CannotCancel, match="no longer holds"):
        cancel(message)
    assert Message.objects.get(pk=message.pk).status == "scheduled"


def test_admin_cancel_action_needs_the_cancel_permission(client, sandbox, domain):
    message = scheduled("noreply@example.com", timedelta(hours=3))
    url = reverse("admin:django_txmail_message_changelist")
    data = {"action": "cancel_messages", "_selected_action": [str(message.pk)]}
    staff = User.objects.create_user("support", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(staff)
    response = client.post(url, data)
    assert Message.objects.get(pk=message.pk).status == "scheduled"
    assert response.status_code in (200, 302)
    staff.user_permissions.add(Permission.objects.get(codename="cancel_message"))
    response = client.post(url, data, follow=True)
    assert Message.objects.get(pk=message.pk).status == "cancelled"
    assert "Cancelled 1 message." in response.text


def test_admin_cancel_action_reports_messages_it_could_not_cancel(admin_client, sandbox, domain):
    TxMessage("Now", "b", "noreply@example.com", ["a@x.example"]).send()
    message = Message.objects.get()
    response = admin_client.post(
        reverse("admin:django_txmail_message_changelist"),
        {"action": "cancel_messages", "_selected_action": [str(message.pk)]},
        follow=True,
    )
    assert "only queued or scheduled" in response.text
    assert Message.objects.get().status == "sent"


def test_the_admin_cancel_action_is_a_post_with_csrf(sandbox, domain):
    from django.test import Client

    message = scheduled("noreply@example.com", timedelta(hours=3))
    admin = User.objects.create_superuser("root", password="pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin)
    response = client.post(
        reverse("admin:django_txmail_message_changelist"),
        {"action": "cancel_messages", "_selected_action": [str(message.pk)]},
    )
    assert response.status_code == 403
    assert Message.objects.get(pk=message.pk).status == "scheduled"
