"""txmail_worker: delivers what is due, once, with any number of workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from django_txmail.compose import compose
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, Message, MessageAttachment
from django_txmail.outbox.claims import claim_batch
from django_txmail.outbox.store import plan, record
from django_txmail.routing import resolve
from django_txmail.sending.worker import Worker
from tests.conftest import txmail_settings
from txmail_sandbox import Fault, FaultPlan

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent


def outbox(count: int, *, due: bool = True) -> list[Message]:
    """``count`` recorded, unsent messages (due now unless ``due`` is False)."""
    messages = []
    for i in range(count):
        email = compose(TxMessage(f"m{i}", "b", "noreply@example.com", [f"u{i}@x.example"]))
        messages.append(record(plan(email), resolve(email))[0])
    if due:
        Message.objects.update(next_attempt_at=timezone.now())
    return messages


def test_once_delivers_everything_due_and_nothing_else(sandbox, domain):
    outbox(3)
    now = timezone.now()
    retry_later = outbox(1, due=False)[0]
    Message.objects.filter(pk=retry_later.pk).update(next_attempt_at=now + timedelta(hours=1))
    held = TxMessage(
        "held", "b", "noreply@example.com", ["a@x.example"], send_at=now + timedelta(hours=2)
    )
    held.send()
    stats = Worker(concurrency=2).run(once=True)
    assert stats.sent == 3 and len(sandbox.messages) == 3
    assert Message.objects.get(pk=retry_later.pk).status == "queued"
    assert Message.objects.get(subject="held").status == "scheduled"


def test_due_scheduled_mail_abandoned_sends_and_orphans_are_picked_up(sandbox, domain):
    scheduled, abandoned, orphan = outbox(3)
    now = timezone.now()
    Message.objects.filter(pk=scheduled.pk).update(status="scheduled", next_attempt_at=now)
    Message.objects.filter(pk=abandoned.pk).update(
        status="sending", attempts=1, next_attempt_at=now
    )
    Message.objects.filter(pk=orphan.pk).update(
        next_attempt_at=None, created_at=now - timedelta(minutes=5)
    )
    fresh = outbox(1, due=False)[0]  # being sent by the process that recorded it
    Message.objects.filter(pk=fresh.pk).update(next_attempt_at=None)
    assert Worker().run(once=True).sent == 3
    assert Message.objects.get(pk=abandoned.pk).attempts == 2
    assert Message.objects.get(pk=fresh.pk).status == "queued"


def test_a_message_abandoned_too_often_ends_failed(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {"MAX_ATTEMPTS": 3}
    [message] = outbox(1)
    Message.objects.filter(pk=message.pk).update(
        status="sending", attempts=3, next_attempt_at=timezone.now()
    )
    assert claim_batch(10) == []
    message.refresh_from_db()
    assert (message.status, message.last_error_type) == ("failed", "abandoned")


def test_transient_failures_are_retried_by_the_worker(sandbox, domain, settings):
    # Retries at least 30 s away, however slow the machine: not due within the first run.
    settings.TXMAIL = settings.TXMAIL | {"RETRY_BACKOFF": (60, 120)}
    outbox(4)
    sandbox.inject(Fault(status=503), times=3)
    first = Worker(concurrency=2).run(once=True)
    assert (first.sent, first.retrying) == (1, 3), "retries are not due yet"
    waiting = Message.objects.filter(status="queued")
    assert all(m.next_attempt_at > timezone.now() for m in waiting)
    waiting.update(next_attempt_at=timezone.now())  # the backoff has passed
    assert Worker(concurrency=2).run(once=True).sent == 3
    assert Message.objects.filter(status="sent").count() == 4
    assert Attempt.objects.filter(outcome="transient").count() == 3
    assert len(sandbox.messages) == 4


def test_concurrent_threads_send_each_message_once(sandbox, domain):
    outbox(40)
    assert Worker(concurrency=8, batch=5).run(once=True).sent == 40
    assert len({m.idempotency_key for m in sandbox.messages}) == len(sandbox.messages) == 40


def test_missing_stored_content_fails_the_message_and_the_worker_goes_on(sandbox, domain):
    sandbox.inject(Fault(status=503))
    msg = mail.EmailMessage("broken", "b", "noreply@example.com", ["a@x.example"])
    msg.attach("a.txt", "abc", "text/plain")
    msg.send()
    default_storage.delete(MessageAttachment.objects.get().storage_name)
    outbox(2)
    stats = Worker().run(once=True)
    assert (stats.sent, stats.failed) == (2, 1)
    broken = Message.objects.get(subject="broken")
    assert broken.status == "failed" and "cannot be read" in broken.last_error


def test_stop_finishes_current_sends_and_gives_back_the_rest(sandbox, domain):
    outbox(10)
    worker = Worker(concurrency=1, batch=10)
    worker.on_result = lambda message, outcome: worker.stop()
    stats = worker.run()
    assert stats.sent == 1 and stats.released >= 1
    assert Message.objects.filter(status="sending").count() == 0
    assert Message.objects.filter(status="queued", attempts=0).count() == 9


def test_the_command_reports_what_it_did(sandbox, domain, capsys):
    outbox(2)
    call_command("txmail_worker", "--once", "--concurrency", "2", verbosity=2)
    out = capsys.readouterr().out
    assert out.count(" sent") == 2 and "Delivered 2, retrying 0, failed 0." in out


@pytest.mark.parametrize("args", [["--batch", "0"], ["--concurrency", "x"], ["--interval", "0"]])
def test_the_command_refuses_bad_options(args):
    with pytest.raises(CommandError):
        call_command("txmail_worker", "--once", *args)


# -- real worker processes -------------------------------------------------------------


def start_worker(txmail: dict, *args: str) -> subprocess.Popen:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.worker_settings",
        "TXMAIL_TEST_TXMAIL": json.dumps(txmail),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "django", "txmail_worker", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


#: How long a test waits for a worker process: a bound for a hang, not a pace
#: (a busy machine takes minutes to start and run one).
WAIT = 400


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    return out


def assert_sent_exactly_once(sandbox, count: int) -> None:
    messages = Message.objects.all()
    assert messages.count() == count
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    received = sandbox.messages
    assert len(received) == count, "the provider holds every message exactly once"
    assert len({r.idempotency_key for r in received}) == count
    by_key = {r.idempotency_key: r.id for r in received}
    assert all(by_key[m.idempotency_key] == m.provider_message_id for m in messages)


def test_fault_storm_two_workers_exactly_once(txmail_sandbox, settings, domain):
    # 1,000 messages on PostgreSQL; fewer on SQLite, whose writers queue for one lock.
    count = 1000 if connection.vendor == "postgresql" else 300
    txmail = txmail_settings(txmail_sandbox.url) | {
        "TIMEOUT": 0.5,
        "LEASE": 10,
        "MAX_ATTEMPTS": 25,
        "RETRY_BACKOFF": [0.05, 0.5],
    }
    settings.TXMAIL = txmail
    outbox(count)
    txmail_sandbox.set_fault_plan(FaultPlan(seed=7, rate=0.3, hang=1.0, slow=0.1))
    workers = [
        start_worker(txmail, "--concurrency", "8", "--batch", "20", "--interval", "0.1")
        for _ in range(2)
    ]
    try:
        wait_until(
            lambda: Message.objects.filter(status="sent").count() == count,
            WAIT,
            f"all {count} messages to be sent",
        )
    finally:
        outputs = [stop(worker) for worker in workers]
    faults = txmail_sandbox.fault_stats
    txmail_sandbox.set_fault_plan(None)
    assert_sent_exactly_once(txmail_sandbox, count)
    assert faults["timeout-after-accept"] > 0 and sum(faults.values()) > count // 5
    assert Attempt.objects.filter(outcome="transient").count() > count // 5
    assert all("Delivered" in out for out in outputs)
    print(f"fault storm: {faults}")


def test_a_worker_killed_mid_batch_then_restarted_sends_exactly_once(
    txmail_sandbox, settings, domain
):
    txmail = txmail_settings(txmail_sandbox.url) | {"TIMEOUT": 2, "LEASE": 3}
    settings.TXMAIL = txmail
    outbox(120)
    # Every send is accepted, then answered late: a kill lands after the provider has it.
    txmail_sandbox.set_fault_plan(FaultPlan(seed=1, rate=1.0, kinds={"slow": 1}, slow=0.2))
    worker = start_worker(txmail, "--concurrency", "4", "--batch", "8", "--interval", "0.1")
    wait_until(lambda: len(txmail_sandbox.messages) >= 30, WAIT, "the worker to be mid-batch")
    worker.kill()
    worker.wait(timeout=10)
    stuck = Message.objects.filter(status="sending").count()
    assert stuck > 0, "the kill left claimed messages behind"
    time.sleep(3.2)  # the lease of the dead worker's claims runs out
    txmail_sandbox.set_fault_plan(None)
    restarted = start_worker(txmail, "--once", "--concurrency", "4")
    out, err = restarted.communicate(timeout=WAIT)
    assert restarted.returncode == 0, err
    assert_sent_exactly_once(txmail_sandbox, 120)
    assert Message.objects.filter(attempts__gte=2).count() >= stuck


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_worker_process_stops_cleanly_on_a_signal(txmail_sandbox, settings, domain, signum):
    txmail = txmail_settings(txmail_sandbox.url)
    settings.TXMAIL = txmail
    outbox(30)
    txmail_sandbox.set_fault_plan(FaultPlan(seed=3, rate=1.0, kinds={"slow": 1}, slow=0.1))
    worker = start_worker(txmail, "--concurrency", "2", "--batch", "4", "--interval", "0.1")
    wait_until(lambda: len(txmail_sandbox.messages) >= 4, WAIT, "the worker to be sending")
    worker.send_signal(signum)
    out, err = worker.communicate(timeout=WAIT)
    assert worker.returncode == 0, err
    assert "Delivered" in out and "Traceback" not in err
    assert Message.objects.filter(status="sending").count() == 0, "claims were given back"
    sent = Message.objects.filter(status="sent").count()
    assert 4 <= sent < 30 and len(txmail_sandbox.messages) == sent
