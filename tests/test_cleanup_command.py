"""``manage.py txmail_cleanup``: old messages, their attempts, events and files go, in batches."""

from __future__ import annotations

import io
import os
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import TestCase
from django.utils import timezone

from django_txmail.models import Attempt, DeliveryEvent, Message, MessageAttachment
from django_txmail.outbox.cleanup import cleanup, parse_age

from .message_rows import event_row, message_row

pytestmark = pytest.mark.django_db


def age(message: Message, days: int) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=days))
    return message


def send_with_attachment(subject: str) -> Message:
    msg = mail.EmailMessage(subject, "b", "noreply@example.com", ["ann@x.example"])
    msg.attach("a.txt", b"attached", "text/plain")
    msg.send()
    message = Message.objects.get(subject=subject)
    event_row(message, "delivered", occurred_at=timezone.now() - timedelta(days=100))
    return message


def run(*args) -> str:
    out = io.StringIO()
    call_command("txmail_cleanup", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90d", timedelta(days=90)), ("36h", timedelta(hours=36)), (" 7D ", timedelta(days=7))],
)
def test_ages_are_days_or_hours(text, expected):
    assert parse_age(text) == expected


@pytest.mark.parametrize(
    "text", ["90", "0d", "000h", "-5d", "3w", "1.5d", "ninety days", "", "١٢d"]
)
def test_nonsense_ages_are_refused_with_an_example(text):
    with pytest.raises(CommandError, match="such as 90d or 36h"):
        run(f"--older-than={text}")


@pytest.mark.parametrize("text", ["36501d", "876001h", "800000d", "99999999999d", "9" * 5000 + "d"])
def test_ages_beyond_a_century_are_refused_not_crashing(text):
    with pytest.raises(CommandError, match="too long ago; give at most 36500d"):
        run(f"--older-than={text}", "--dry-run")
    assert parse_age("36500d") == timedelta(days=36500)


def test_a_clean_up_its_caller_rolls_back_keeps_the_files(sandbox, domain):
    old = age(send_with_attachment("old"), 100)
    name = old.attachments.get().storage_name
    with pytest.raises(RuntimeError), transaction.atomic():
        cleanup(timezone.now() - timedelta(days=90))
        assert default_storage.exists(name)  # not before the caller commits
        raise RuntimeError("the caller gives up")
    assert Message.objects.filter(pk=old.pk).exists()
    assert default_storage.exists(name)
    with TestCase.captureOnCommitCallbacks(execute=True):
        report = cleanup(timezone.now() - timedelta(days=90))
    assert report.attachment_files == 1 and not default_storage.exists(name)


@pytest.mark.django_db(transaction=True)  # commits as from cron: files go on commit
def test_old_messages_go_with_their_attempts_events_and_files(sandbox, domain):
    old = age(send_with_attachment("old"), 100)
    recent = send_with_attachment("recent")
    old_file = old.attachments.get().storage_name
    recent_file = recent.attachments.get().storage_name
    out = run("--older-than", "90d")
    assert "1 message(s) deleted, with 1 attempt(s), 1 delivery event(s) and 1 attachment" in out
    assert list(Message.objects.values_list("subject", flat=True)) == ["recent"]
    assert not Attempt.objects.filter(message_id=old.pk).exists()
    assert not DeliveryEvent.objects.filter(message_id=old.pk).exists()
    assert not MessageAttachment.objects.filter(message_id=old.pk).exists()
    assert not default_storage.exists(old_file)
    assert not os.path.exists(default_storage.path(os.path.dirname(old_file)))
    assert default_storage.exists(recent_file)


def test_dry_run_counts_and_deletes_nothing(sandbox, domain):
    old = age(send_with_attachment("old"), 100)
    out = run("--older-than", "90d", "--dry-run")
    assert "Dry run: nothing deleted." in out
    assert "1 message(s) would be deleted, with 1 attempt(s), 1 delivery event(s)" in out
    assert Message.objects.filter(pk=old.pk).exists()
    assert default_storage.exists(old.attachments.get().storage_name)


@pytest.mark.parametrize("status", ["queued", "scheduled", "sending"])
def test_old_messages_still_to_be_sent_are_kept_and_explained(status):
    waiting = age(message_row(status=status), 200)
    out = run("--older-than", "90d")
    assert Message.objects.filter(pk=waiting.pk).exists()
    assert "Kept 1 older message(s) still to be sent" in out and "Cancel them" in out


def test_old_unattached_events_go_too():
    old = event_row(None, "bounced", occurred_at=timezone.now() - timedelta(days=100))
    recent = event_row(None, "bounced")
    out = run("--older-than", "90d")
    assert "1 delivery event(s) that matched no message deleted" in out
    assert list(DeliveryEvent.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not DeliveryEvent.objects.filter(pk=old.pk).exists()


def test_deletes_in_batches_and_keeps_links_from_newer_resends():
    olds = [age(message_row(subject=f"old {n}"), 30) for n in range(7)]
    resend = message_row(subject="resent copy", resent_from=olds[0])
    batches = []
    report = cleanup(timezone.now() - timedelta(days=10), batch_size=3, on_batch=batches.append)
    assert report.messages == 7 and len(batches) == 3
    resend.refresh_from_db()
    assert resend.resent_from_id is None


def test_hours_work_for_short_retention():
    age(message_row(subject="two days"), 2)
    message_row(subject="now")
    run("--older-than", "36h")
    assert list(Message.objects.values_list("subject", flat=True)) == ["now"]


def test_batch_size_must_be_positive():
    with pytest.raises(CommandError, match="--batch-size must be"):
        run("--older-than", "90d", "--batch-size", "0")
