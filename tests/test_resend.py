"""Resending a message as a new one, and retrying a failed one now (django_txmail.outbox.resend)."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.files.storage import default_storage

from django_txmail.models import Message
from django_txmail.outbox.resend import CannotResend, CannotRetry, resend, retry
from txmail_sandbox.faults import Fault

pytestmark = pytest.mark.django_db


def send(subject="Receipt", attachment=False) -> Message:
    msg = mail.EmailMultiAlternatives(
        subject, "Thanks.", "Shop <noreply@example.com>", ["Ann <ann@x.example>"]
    )
    msg.attach_alternative("<p>Thanks.</p>", "text/html")
    msg.metadata = {"order": 42}
    if attachment:
        msg.attach("receipt.pdf", b"%PDF receipt", "application/pdf")
    msg.send()
    return Message.objects.latest("created_at")


def test_a_resend_is_a_new_message_with_the_same_content_and_a_new_key(sandbox, domain):
    original = send()
    copy = resend(original)
    assert copy.pk != original.pk and copy.resent_from_id == original.pk
    assert copy.idempotency_key != original.idempotency_key
    assert copy.status == "sent" and copy.provider_message_id != original.provider_message_id
    for name in ("subject", "to", "from_email", "html_body", "text_body", "metadata"):
        assert getattr(copy, name) == getattr(original, name), name
    first, again = sandbox.messages
    assert again.idempotency_key == copy.idempotency_key
    assert again.payload["subject"] == first.payload["subject"] == "Receipt"


def test_a_resend_keeps_the_template_it_came_from(sandbox, domain):
    original = send()
    Message.objects.filter(pk=original.pk).update(
        template="receipt", template_version=4, template_language="de"
    )
    original.refresh_from_db()
    copy = resend(original)
    copy.refresh_from_db()
    assert (copy.template, copy.template_version, copy.template_language) == ("receipt", 4, "de")


def test_a_resend_has_its_own_copy_of_the_attachments(sandbox, domain):
    original = send(attachment=True)
    copy = resend(original)
    assert sandbox.messages[-1].attachments[0].content == b"%PDF receipt"
    mine, theirs = original.attachments.get(), copy.attachments.get()
    assert mine.storage_name != theirs.storage_name
    default_storage.delete(mine.storage_name)
    with default_storage.open(theirs.storage_name) as f:
        assert f.read() == b"%PDF receipt"


def test_a_message_is_resent_once_unless_forced(sandbox, domain):
    original = send()
    first = resend(original)
    with pytest.raises(CannotResend, match=f"already resent as {first.pk}"):
        resend(original)
    second = resend(original, force=True)
    assert second.resent_from_id == original.pk
    assert len(sandbox.messages) == 3


@pytest.mark.parametrize("status", ["queued", "scheduled", "sending"])
def test_a_message_not_sent_yet_is_not_resent(sandbox, domain, status):
    original = send()
    Message.objects.filter(pk=original.pk).update(status=status)
    with pytest.raises(CannotResend, match="has not been sent yet"):
        resend(original)
    assert Message.objects.count() == 1


def test_a_cancelled_message_is_only_resent_when_forced(sandbox, domain):
    original = send()
    Message.objects.filter(pk=original.pk).update(status="cancelled")
    with pytest.raises(CannotResend, match="was cancelled, so it was never sent.*--force"):
        resend(original)
    assert resend(original, force=True).resent_from_id == original.pk


def test_a_resend_that_fails_is_recorded_on_the_new_message(sandbox, domain):
    original = send()
    sandbox.inject(Fault(status=400, message="Recipient rejected"))
    copy = resend(original)
    assert copy.status == "failed" and "Recipient rejected" in copy.last_error
    assert Message.objects.get(pk=original.pk).status == "sent"


def test_a_resend_goes_through_a_task_when_delivery_is_by_task(
    sandbox, domain, settings, django_capture_on_commit_callbacks
):
    original = send()
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        copy = resend(original)
        assert Message.objects.get(pk=copy.pk).status == "queued"  # recorded, not sent inline
    assert callbacks
    assert Message.objects.get(pk=copy.pk).status == "sent"
    assert sandbox.messages[-1].idempotency_key == copy.idempotency_key


def test_retry_sends_a_failed_message_again_with_its_own_key(sandbox, domain):
    sandbox.inject(Fault(status=400, message="Domain not ready"))
    with pytest.raises(Exception, match="Domain not ready"):
        send()
    failed = Message.objects.get()
    assert failed.status == "failed" and failed.attempts == 1
    retried = retry(failed)
    assert retried.status == "sent" and retried.attempts == 2
    assert retried.attempt_log.count() == 2
    assert sandbox.messages[-1].idempotency_key == failed.idempotency_key
    assert Message.objects.count() == 1


def test_retry_also_sends_a_message_waiting_for_its_next_attempt_now(sandbox, domain):
    sandbox.inject(Fault(status=503))
    waiting = send()
    assert waiting.status == "queued" and waiting.next_attempt_at is not None
    assert retry(waiting).status == "sent"


@pytest.mark.parametrize("status", ["sent", "delivered", "scheduled", "cancelled"])
def test_only_failed_or_waiting_messages_can_be_retried(sandbox, domain, status):
    message = send()
    Message.objects.filter(pk=message.pk).update(status=status)
    with pytest.raises(CannotRetry, match=f"is {status}"):
        retry(message)
    assert len(sandbox.messages) == 1


def test_retry_goes_through_a_task_when_delivery_is_by_task(
    sandbox, domain, settings, django_capture_on_commit_callbacks
):
    sandbox.inject(Fault(status=400))
    with pytest.raises(Exception, match="400"):
        send()
    failed = Message.objects.get()
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    with django_capture_on_commit_callbacks(execute=True):
        assert retry(failed).status == "queued"
    failed.refresh_from_db()
    assert failed.status == "sent" and failed.attempts == 2
