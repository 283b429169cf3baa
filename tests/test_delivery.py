"""Delivery: claiming, retries, backoff, failures, and what is recorded for each attempt."""

from __future__ import annotations

import logging
from datetime import timedelta
from email.utils import format_datetime

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.exceptions import DeliveryError, ProviderAPIError
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, Message, MessageAttachment, SendingDomain
from django_txmail.outbox.claims import claim
from django_txmail.providers import load_adapter
from django_txmail.providers.base import retry_after
from django_txmail.sending import attempt as delivery
from django_txmail.sending.attempt import deliver, retry_delay
from django_txmail.sending.transport import Transport
from django_txmail.signals import message_sent
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db


def adapter():
    return load_adapter(get_settings().account("nylas"))


def retry(message):
    with Transport() as transport:
        return deliver(message, adapter(), transport)


def queued_after(sandbox, fault):
    """A message whose first attempt met ``fault`` and waits for a retry."""
    sandbox.inject(fault)
    mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"])
    return Message.objects.get()


def test_backoff_grows_exponentially_with_jitter_and_a_cap(settings):
    settings.TXMAIL = settings.TXMAIL | {"RETRY_BACKOFF": (2, 60)}
    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        delays = [retry_delay(attempt) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), attempt
        assert max(delays) - min(delays) > ceiling / 10, "jittered"


def test_retry_after_is_honoured_up_to_the_largest_delay(settings):
    settings.TXMAIL = settings.TXMAIL | {"RETRY_BACKOFF": (1, 600)}
    assert retry_delay(1, retry_after=120) == 120
    assert retry_delay(1, retry_after=10_000) == 600


def test_retry_after_accepts_seconds_and_http_dates_with_or_without_zone():
    assert retry_after("7") == 7
    soon = timezone.now() + timedelta(seconds=90)
    assert 80 < retry_after(format_datetime(soon, usegmt=True)) <= 90
    assert retry_after("Wed, 21 Oct 2015 07:28:00 -0000") == 0
    assert retry_after("not a date") is None and retry_after("") is None


def test_a_transient_failure_records_the_attempt_and_schedules_a_retry(sandbox, domain):
    message = queued_after(sandbox, Fault(status=429, retry_after=30))
    assert message.status == "queued"
    assert 29 <= (message.next_attempt_at - timezone.now()).total_seconds() <= 31
    [attempt] = Attempt.objects.filter(message=message)
    assert (attempt.number, attempt.outcome, attempt.http_status) == (1, "transient", 429)
    assert attempt.error_type == "rate_limit_error" and attempt.duration_ms >= 0


def test_a_retry_succeeds_and_both_attempts_are_recorded(sandbox, domain):
    message = queued_after(sandbox, Fault(status=503))
    assert retry(message) is not None
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("sent", 2)
    outcomes = list(Attempt.objects.filter(message=message).values_list("number", "outcome"))
    assert outcomes == [(1, "transient"), (2, "sent")]


def test_max_attempts_ends_the_message_failed_with_the_reason(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {"MAX_ATTEMPTS": 2}
    message = queued_after(sandbox, Fault(status=502))
    sandbox.inject(Fault(status=502))
    with pytest.raises(ProviderAPIError):
        retry(message)
    message.refresh_from_db()
    assert message.status == "failed" and "502" in message.last_error
    assert message.attempts == 2


def test_a_queued_message_is_claimed_once(sandbox, domain):
    message = queued_after(sandbox, Fault(status=503))
    assert claim(message) is True
    assert claim(Message.objects.get(pk=message.pk)) is False


def test_a_message_abandoned_mid_send_is_claimable_after_its_lease(sandbox, domain):
    message = queued_after(sandbox, Fault(status=503))
    assert claim(message)
    assert not claim(Message.objects.get(pk=message.pk)), "lease still running"
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    assert retry(Message.objects.get(pk=message.pk)) is not None
    assert Message.objects.get(pk=message.pk).status == "sent"


def test_a_retry_does_not_need_the_sending_domain_row(sandbox, domain):
    message = queued_after(sandbox, Fault(status=503))
    SendingDomain.objects.all().delete()
    assert retry(Message.objects.get(pk=message.pk)) is not None
    assert sandbox.messages[0].domain == "example.com"


def test_missing_stored_attachment_fails_with_a_clear_reason(sandbox, domain):
    sandbox.inject(Fault(status=503))
    msg = mail.EmailMessage("s", "b", "noreply@example.com", ["a@x.example"])
    msg.attach("a.txt", "abc", "text/plain")
    msg.send()
    default_storage.delete(MessageAttachment.objects.get().storage_name)
    with pytest.raises(DeliveryError, match="cannot be read"):
        retry(Message.objects.get())
    message = Message.objects.get()
    assert message.status == "failed" and message.last_error_type == "stored_content_missing"


def test_an_unexpected_error_fails_the_message_instead_of_stranding_it(
    sandbox, domain, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("adapter bug")

    monkeypatch.setattr("django_txmail.providers.nylas.NylasAdapter.parse_send", broken)
    sent = mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"], fail_silently=True)
    assert sent == 0
    message = Message.objects.get()
    assert (message.status, message.last_error_type) == ("failed", "internal_error")
    assert "adapter bug" in Attempt.objects.get().error_message


def test_a_failing_message_sent_receiver_does_not_undo_the_send_or_loop(sandbox, domain, caplog):
    """Django logs the receiver's error to django.dispatch, and AdminEmailHandler mails
    it to ADMINS through this backend: that mail goes out once, without re-triggering."""

    def receiver(**kwargs):
        raise RuntimeError("receiver bug")

    message_sent.connect(receiver)
    try:
        with caplog.at_level(logging.ERROR):
            assert mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"]) == 1
    finally:
        message_sent.disconnect(receiver)
    assert Message.objects.get(subject="Hi").status == "sent"
    assert "receiver bug" in caplog.text
    admin_mail = Message.objects.exclude(subject="Hi")
    assert admin_mail.count() == 1 and admin_mail.get().to == [
        {"email": "ops@example.com", "name": admin_mail.get().to[0]["name"]}
    ]
    assert len(sandbox.messages) == 2


def test_message_sent_signal_carries_the_message_and_result(sandbox, domain):
    seen = []

    def receiver(sender, message, result, **kwargs):
        seen.append((message.pk, result.provider_message_id))

    message_sent.connect(receiver)
    try:
        mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"])
    finally:
        message_sent.disconnect(receiver)
    message = Message.objects.get()
    assert seen == [(message.pk, message.provider_message_id)]


def test_network_errors_say_which_host_and_that_the_message_waits(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {
        "PROVIDERS": {
            "nylas": settings.TXMAIL["PROVIDERS"]["nylas"] | {"API_URI": "http://127.0.0.1:9"}
        }
    }
    assert mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "queued" and message.last_error_type == "connection_error"
    assert "127.0.0.1:9" in message.last_error and "retried" in message.last_error


def test_send_at_on_the_domain_route_waits_in_the_outbox(sandbox, domain):
    when = timezone.now() + timedelta(hours=2)
    msg = TxMessage("Later", "b", "noreply@example.com", ["a@x.example"], send_at=when)
    assert msg.send() == 1
    message = Message.objects.get()
    assert (message.status, message.next_attempt_at) == ("scheduled", when)
    assert sandbox.requests == [] and msg.txmail.status == "scheduled"
    assert not claim(message), "not due yet"


def test_a_held_message_is_sent_without_send_at_once_due(sandbox, domain):
    when = timezone.now() + timedelta(hours=2)
    TxMessage("Later", "b", "noreply@example.com", ["a@x.example"], send_at=when).send()
    Message.objects.update(next_attempt_at=timezone.now())
    assert retry(Message.objects.get()) is not None
    assert "send_at" not in sandbox.messages[0].payload
    assert Message.objects.get().status == "sent"


@pytest.mark.parametrize(
    ("ahead", "provider_schedules"),
    [(timedelta(seconds=30), False), (timedelta(hours=1), True), (timedelta(days=40), False)],
)
def test_the_grant_route_hands_send_at_to_nylas_only_within_its_window(
    sandbox, grant, ahead, provider_schedules
):
    TxMessage(
        "Later", "b", "alice@example.org", ["a@x.example"], send_at=timezone.now() + ahead
    ).send()
    message = Message.objects.get()
    assert message.status == "scheduled"
    assert bool(sandbox.messages) is provider_schedules
    if provider_schedules:
        assert sandbox.messages[0].payload["send_at"] == int(message.send_at.timestamp())
        assert message.provider_schedule_id == sandbox.messages[0].schedule_id


def test_a_provider_scheduled_retry_sends_the_same_send_at(sandbox, grant, monkeypatch):
    when = timezone.now() + timedelta(seconds=95)
    sandbox.inject(Fault(status=503))
    TxMessage("Later", "b", "alice@example.org", ["a@x.example"], send_at=when).send()
    # Ten seconds later the message is closer than Nylas's window, and still the same request.
    later = timezone.now() + timedelta(seconds=10)
    monkeypatch.setattr(delivery.timezone, "now", lambda: later)
    assert retry(Message.objects.get()) is not None
    assert sandbox.messages[0].payload["send_at"] == int(when.timestamp())
