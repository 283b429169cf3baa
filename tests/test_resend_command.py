"""``manage.py txmail_resend``: selection, dry run, confirmation, progress, refusals, summary."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.utils import timezone

from django_txmail.models import Message

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    """Typed answers on a terminal."""

    def isatty(self) -> bool:
        return True


def send(to="ann@x.example", subject="Receipt", **extras) -> Message:
    msg = mail.EmailMessage(subject, "Thanks.", "noreply@example.com", [to])
    for name, value in extras.items():
        setattr(msg, name, value)
    msg.send()
    return Message.objects.latest("created_at")


def run(*args, stdin=None, monkeypatch=None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", stdin or io.StringIO())
    call_command("txmail_resend", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def copies() -> list[Message]:
    return list(Message.objects.filter(resent_from__isnull=False).order_by("created_at"))


def test_resends_chosen_ids_and_ends_with_a_summary(sandbox, domain):
    first, second, other = send(), send(to="bob@x.example"), send(to="eve@x.example")
    out, _ = run("--id", str(first.pk), "--id", str(second.pk), "--yes")
    assert "Resent 2 message(s) (2 sent)." in out
    assert {c.resent_from_id for c in copies()} == {first.pk, second.pk}
    assert len(sandbox.messages) == 5  # three sent, two resent
    assert not Message.objects.filter(resent_from=other).exists()


def test_selects_by_status_recipient_domain_template_and_dates(sandbox, domain):
    bounced = send(to="Ann@X.example")
    Message.objects.filter(pk=bounced.pk).update(status="bounced", template="receipt")
    joann = send(to="joann@x.example")
    Message.objects.filter(pk=joann.pk).update(status="bounced")
    old = send(to="ann@x.example")
    Message.objects.filter(pk=old.pk).update(
        status="bounced", created_at=timezone.now() - timedelta(days=10)
    )
    out, _ = run("--status", "bounced", "--to", "ann@x.example", "--dry-run")
    assert str(bounced.pk) in out and str(old.pk) in out and str(joann.pk) not in out
    since = (timezone.now() - timedelta(days=2)).date().isoformat()
    out, _ = run("--to", "ann@x.example", "--since", since, "--dry-run")
    assert str(bounced.pk) in out and str(old.pk) not in out
    out, _ = run("--until", since, "--domain", "EXAMPLE.com", "--dry-run")
    assert str(old.pk) in out and str(bounced.pk) not in out
    out, _ = run("--template", "receipt", "--dry-run")
    assert "would resend 1 of 1" in out and str(bounced.pk) in out


def test_dry_run_lists_and_sends_nothing(sandbox, domain):
    message = send()
    out, _ = run("--id", str(message.pk), "--dry-run")
    assert out.startswith(f"resend {message.pk}") and "Receipt" in out
    assert "Dry run: would resend 1 of 1 message(s)." in out
    assert copies() == [] and len(sandbox.messages) == 1


def test_refuses_to_resend_everything_without_a_selector(sandbox, domain):
    send()
    with pytest.raises(CommandError, match="will not resend every message"):
        run("--yes")
    assert copies() == []


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--id", "not-a-uuid"], "is not a message id"),
        (["--id", str(uuid.UUID(int=7))], "No message with id 00000000-0000-0000-0000-0000000"),
        (["--since", "yesterday"], "--since 'yesterday' is not a date"),
        (["--until", "2026-02-30"], "--until '2026-02-30' is not a date"),
        (["--since", "2026-05-02", "--until", "2026-05-01"], "--since must come before --until"),
    ],
)
def test_refuses_bad_selectors_clearly(sandbox, domain, args, error):
    send()
    with pytest.raises(CommandError, match=error):
        run(*args, "--yes")
    assert copies() == []


def test_without_a_terminal_and_without_yes_it_refuses(sandbox, domain, monkeypatch):
    message = send()
    with pytest.raises(CommandError, match="no terminal to ask on.*--dry-run.*--yes"):
        run("--id", str(message.pk), monkeypatch=monkeypatch, stdin=io.StringIO("y\n"))
    assert copies() == []


def test_asks_on_a_terminal_and_a_no_sends_nothing(sandbox, domain, monkeypatch):
    message = send()
    with pytest.raises(CommandError, match="Cancelled; nothing was resent"):
        run("--id", str(message.pk), monkeypatch=monkeypatch, stdin=Terminal("n\n"))
    assert copies() == []
    out, _ = run("--id", str(message.pk), monkeypatch=monkeypatch, stdin=Terminal("y\n"))
    assert "Resent 1 message(s)" in out and len(copies()) == 1


def test_never_resends_a_message_already_resent_unless_forced(sandbox, domain):
    message = send()
    run("--id", str(message.pk), "--yes")
    out, _ = run("--id", str(message.pk), "--yes")
    assert "Nothing to resend; skipped 1 already resent (use --force" in out
    assert len(copies()) == 1
    out, _ = run("--id", str(message.pk), "--yes", "--force")
    assert "Resent 1 message(s)" in out and len(copies()) == 2


def test_skips_messages_not_sent_yet(sandbox, domain):
    message = send()
    Message.objects.filter(pk=message.pk).update(status="scheduled")
    out, _ = run("--id", str(message.pk), "--yes")
    assert "skipped 1 not sent yet" in out and copies() == []


def at(message: Message, moment: datetime) -> Message:
    Message.objects.filter(pk=message.pk).update(created_at=moment)
    return message


def test_until_a_date_includes_that_whole_day(sandbox, domain):
    day = datetime(2026, 5, 1)
    first = at(send(), timezone.make_aware(day))
    last = at(send(), timezone.make_aware(day + timedelta(days=1, seconds=-1)))
    next_day = at(send(), timezone.make_aware(day + timedelta(days=1)))
    out, _ = run("--until", "2026-05-01", "--dry-run")
    assert str(first.pk) in out and str(last.pk) in out and str(next_day.pk) not in out
    out, _ = run("--since", "2026-05-01", "--until", "2026-05-01", "--dry-run")
    assert "would resend 2 of 2" in out and str(next_day.pk) not in out
    out, _ = run("--until", "2026-05-01T23:59:59", "--dry-run")
    assert str(last.pk) not in out and str(first.pk) in out  # a time is taken as it is


def test_skips_cancelled_messages_unless_forced(sandbox, domain):
    message = send()
    Message.objects.filter(pk=message.pk).update(status="cancelled")
    out, _ = run("--id", str(message.pk), "--yes")
    assert "skipped 1 cancelled (use --force" in out and copies() == []
    out, _ = run("--id", str(message.pk), "--yes", "--force")
    assert "Resent 1 message(s)" in out and copies()[0].resent_from_id == message.pk


def test_long_runs_show_progress_on_stderr(sandbox, domain):
    for n in range(20):
        send(to=f"user{n}@x.example")
    out, err = run("--status", "sent", "--yes")
    assert "Resent 20 message(s) (20 sent)." in out
    lines = err.splitlines()
    assert lines[0] == "resent 2/20" and lines[-1] == "resent 20/20" and len(lines) == 10


def test_a_failed_resend_is_counted_and_pointed_at(sandbox, domain):
    from txmail_sandbox.faults import Fault

    message = send()
    sandbox.inject(Fault(status=400, message="Recipient rejected"))
    out, _ = run("--id", str(message.pk), "--yes")
    assert "Resent 1 message(s) (1 failed)." in out and "keep their error in the admin" in out


def test_on_a_terminal_progress_is_a_bar_redrawn_in_place(sandbox, domain):
    for n in range(3):
        send(to=f"user{n}@x.example")
    out, err = io.StringIO(), Terminal()
    call_command("txmail_resend", "--status", "sent", "--yes", stdout=out, stderr=err)
    assert err.getvalue() == (
        "\r[##########....................] 1/3"
        "\r[####################..........] 2/3"
        "\r[##############################] 3/3\n"
    )
