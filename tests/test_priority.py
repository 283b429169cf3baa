"""Priority lanes: msg.priority, claims and tasks taking higher lanes first, resend keeping it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.test import override_settings
from django.urls import reverse

from django_txmail.compose import compose
from django_txmail.exceptions import InvalidMessage
from django_txmail.message import TxMessage
from django_txmail.models import Message
from django_txmail.outbox.claims import claim_batch
from django_txmail.outbox.resend import resend
from django_txmail.outbox.store import load
from django_txmail.sending import tasks
from django_txmail.sending.worker import Worker
from tests.test_worker import outbox

pytestmark = pytest.mark.django_db(transaction=True)


def msg(subject="Hi", **extras) -> TxMessage:
    message = TxMessage(subject, "b", "noreply@example.com", ["a@x.example"])
    for name, value in extras.items():
        setattr(message, name, value)
    return message


def test_the_priority_extra_is_recorded_and_loaded_back(sandbox, domain):
    message = msg(priority="high")
    message.send()
    row = Message.objects.get()
    assert row.priority == Message.Priority.HIGH and row.get_priority_display() == "high"
    assert load(row).priority == "high"


def test_without_the_extra_a_message_is_normal(sandbox, domain):
    msg().send()
    assert Message.objects.get().priority == Message.Priority.NORMAL


@pytest.mark.parametrize("value", ["urgent", 1, "HIGH"])
def test_a_priority_that_is_not_a_lane_is_refused_before_anything_is_recorded(value, sandbox):
    with pytest.raises(InvalidMessage, match="msg.priority.*'high', 'normal', 'low'"):
        compose(msg(priority=value))
    assert not Message.objects.exists()


def test_with_2000_low_messages_queued_a_high_one_goes_in_the_first_claim(sandbox, domain):
    outbox(2000)
    Message.objects.update(priority=Message.Priority.LOW)
    urgent = outbox(1)[0]
    Message.objects.filter(pk=urgent.pk).update(priority=Message.Priority.HIGH)
    claimed = claim_batch(8)
    assert claimed[0].pk == urgent.pk, "the first claim cycle takes the high message first"


def test_the_worker_sends_the_high_lane_before_the_low_one(sandbox, domain):
    outbox(30)
    Message.objects.update(priority=Message.Priority.LOW)
    urgent = outbox(1)[0]
    Message.objects.filter(pk=urgent.pk).update(priority=Message.Priority.HIGH)
    Worker(concurrency=1, batch=1).run(once=True)
    assert sandbox.requests[0].idempotency_key == urgent.idempotency_key


def test_resend_keeps_the_priority(sandbox, domain):
    msg(priority="low").send()
    original = Message.objects.get()
    copy = resend(original)
    assert copy.priority == Message.Priority.LOW


def test_task_mode_maps_lanes_onto_the_tasks_priority(sandbox, domain, settings, monkeypatch):
    enqueued = []
    delivery = tasks.deliver_message.using(backend=tasks.get_settings().task_backend)
    backend_class = type(delivery.get_backend())
    monkeypatch.setattr(backend_class, "supports_priority", True)
    monkeypatch.setattr(
        backend_class, "enqueue", lambda self, task, args, kwargs: enqueued.append(task.priority)
    )
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    for lane in ("low", "high", "normal"):
        msg(lane, priority=lane).send()
    assert enqueued == [-50, 50, 0]


def test_the_admin_list_filters_by_priority(sandbox, domain, client):
    msg("urgent one", priority="high").send()
    msg("bulk one", priority="low").send()
    client.force_login(User.objects.create_superuser("admin", "admin@x.example", "pw"))
    url = reverse("admin:django_txmail_message_changelist")
    page = client.get(url, {"priority__exact": Message.Priority.HIGH})
    assert page.status_code == 200
    assert "urgent one" in page.text and "bulk one" not in page.text


@override_settings(
    TXMAIL={
        "PROVIDERS": {
            "nylas": {
                "ADAPTER": "nylas",
                "API_KEY": "k",
                "API_URI": "http://127.0.0.1:9",
                "RATE_LIMIT": "10/s",
                "LANE_SHARES": {"bulk": 0.5},
            }
        }
    }
)
def test_a_lane_share_for_no_lane_is_a_check_error_naming_the_setting():
    errors = [e for e in run_checks() if e.id == "txmail.E001"]
    assert errors and "['LANE_SHARES']" in errors[0].msg and "high, normal, low" in errors[0].msg
