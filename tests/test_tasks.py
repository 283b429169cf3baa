"""Task delivery: ``TXMAIL["DELIVERY"] = "task"`` with real task backends and their workers.

django-tasks-db's ``db_worker`` and django-rq's ``rqworker`` run in this
process (the test database is in memory on SQLite), against a real Redis
server started from the system's ``redis-server`` for RQ.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import django
import django_rq
import pytest
import redis
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq.registry import FinishedJobRegistry, ScheduledJobRegistry

from django_txmail.backends import EmailBackend
from django_txmail.checks import check_settings
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, Message
from django_txmail.outbox.claims import ORPHAN_AFTER, due
from django_txmail.sending.tasks import _sender, deliver_message, enqueue_delivery
from txmail_sandbox import Fault

if django.VERSION >= (6, 0):
    from django.tasks import task_backends
else:
    from django_tasks import task_backends

FRAMEWORK = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
DUMMY = f"{FRAMEWORK}.backends.dummy.DummyBackend"
IMMEDIATE = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"
DATABASE = "django_tasks_db.DatabaseBackend"
RQ = "django_tasks_rq.RQBackend"
#: Burst-worker runs a test allows before it calls the delivery stuck.
MAX_RUNS = 25


def message(subject="Hi", **kwargs):
    return TxMessage(subject, "b", "noreply@example.com", ["a@x.example"], **kwargs)


@pytest.fixture
def task_mode(sandbox, settings):
    """Switch to task delivery on a task backend, under the alias "txmail"."""

    def configure(backend: str, **txmail) -> None:
        settings.TASKS = {"default": {"BACKEND": IMMEDIATE}, "txmail": {"BACKEND": backend}}
        settings.TXMAIL = settings.TXMAIL | {
            "DELIVERY": "task",
            "TASK_BACKEND": "txmail",
            "RETRY_BACKOFF": (0.2, 0.4),
            **txmail,
        }

    return configure


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_server() -> Iterator[int]:
    """A throwaway Redis server on a free loopback port; yields the port."""
    binary = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/sbin:/sbin")
    if binary is None:
        reason = "redis-server is not installed; apt-get install redis-server to run the RQ tests"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start on port {port}")
                time.sleep(0.05)
        client.close()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def rq_mode(task_mode, redis_server, settings):
    """Task delivery through django-tasks-rq on the test's Redis server, emptied first."""
    settings.RQ_QUEUES = {"default": {"HOST": "127.0.0.1", "PORT": redis_server, "DB": 0}}
    task_mode(RQ)
    django_rq.get_connection("default").flushdb()


@contextmanager
def worker_in_this_process() -> Iterator[None]:
    """Run a worker command here, then give pytest back what the worker took over.

    Workers install their own SIGINT/SIGTERM handlers; RQ's job timeout uses
    SIGALRM and cancels the alarm pytest-timeout set for the test.
    """
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGALRM]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    alarm, _ = signal.getitimer(signal.ITIMER_REAL)
    loggers = {name: logging.getLogger(name).level for name in ("django_tasks_db", FRAMEWORK)}
    started = time.monotonic()
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, max(alarm - (time.monotonic() - started), 0.01))
        for name, level in loggers.items():
            logging.getLogger(name).setLevel(level)


def run_workers_until_final(run_once: Callable[[], None], next_task_due) -> int:
    """Run a burst worker whenever a task is due, until no message waits to be sent;
    return how many runs it took.

    A burst worker exits once no task is ready, so a retry deferred to a later
    time needs another run when that time has come. The loop waits for that
    time (``next_task_due()``: when the earliest task may run, None when there
    is none) rather than racing a deadline: a slow machine makes it slower,
    never wrong.
    """
    runs = 0
    while waiting := list(Message.objects.exclude(status__in=("sent", "failed"))):
        due = next_task_due()
        assert due is not None, f"no task is left for {[(m.subject, m.status) for m in waiting]}"
        time.sleep(max((due - timezone.now()).total_seconds(), 0))
        with worker_in_this_process():
            run_once()
        runs += 1
        assert runs <= MAX_RUNS, f"{runs} worker runs and still {len(waiting)} to send"
    return runs


def db_task_due():
    """When the earliest task django-tasks-db holds may run; None if it holds none."""
    ready = DBTaskResult.objects.filter(status="READY").order_by("run_after").first()
    if ready is None:
        return None
    return ready.task_result.task.run_after or timezone.now()


def rq_task_due():
    """When the earliest task of RQ's default queue may run; None if it holds none."""
    queue = django_rq.get_queue("default")
    if queue.count:
        return timezone.now()
    registry = ScheduledJobRegistry(queue=queue)
    return min(map(registry.get_scheduled_time, registry.get_job_ids()), default=None)


def assert_each_sent_exactly_once(sandbox, count: int) -> Message:
    """Every message sent, each held once by the provider; return the one retried."""
    stored = list(Message.objects.all())
    assert len(stored) == count
    assert {m.status for m in stored} == {"sent"}
    received = sandbox.messages
    assert sorted(r.idempotency_key for r in received) == sorted(m.idempotency_key for m in stored)
    assert {m.provider_message_id for m in stored} == {r.id for r in received}
    assert Attempt.objects.count() == count + 1
    [retried] = [m for m in stored if m.attempts == 2]
    assert [(a.outcome, a.http_status) for a in retried.attempt_log.all()] == [
        ("transient", 503),
        ("sent", 200),
    ]
    assert all(m.attempts == 1 for m in stored if m != retried)
    return retried


# -- enqueueing ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_task_is_enqueued_when_the_transaction_commits(task_mode, domain, sandbox):
    task_mode(DUMMY)
    backend = task_backends["txmail"]
    with transaction.atomic():
        msg = message()
        assert msg.send() == 1
        assert msg.txmail.status == "queued" and backend.results == []
    [result] = backend.results
    assert result.task.module_path == "django_txmail.sending.tasks.deliver_message"
    assert result.args == [str(msg.txmail.message_id)] and result.task.run_after is None
    assert sandbox.requests == [], "the task sends the message, not send_messages()"


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_enqueues_nothing(task_mode, domain, sandbox):
    task_mode(DUMMY)
    with pytest.raises(RuntimeError), transaction.atomic():
        message().send()
        raise RuntimeError("the view failed")
    assert task_backends["txmail"].results == []
    assert Message.objects.count() == 0 and sandbox.requests == []


@pytest.mark.django_db(transaction=True)
def test_mail_held_until_send_at_gets_a_task_deferred_to_then(task_mode, domain, sandbox):
    task_mode(DUMMY)
    send_at = timezone.now() + timedelta(hours=1, microseconds=1)
    msg = message(send_at=send_at)
    msg.send()
    assert msg.txmail.status == "scheduled"
    [result] = task_backends["txmail"].results
    # Whole seconds, rounded up: RQ would otherwise run the task before it is due.
    assert result.task.run_after == send_at.replace(microsecond=0) + timedelta(seconds=1)


@pytest.mark.django_db(transaction=True)
def test_held_mail_that_is_due_by_the_time_it_is_enqueued_gets_a_task_now(
    task_mode, domain, sandbox
):
    task_mode(DUMMY)
    message(send_at=timezone.now() + timedelta(hours=1)).send()
    backend = task_backends["txmail"]
    backend.results.clear()
    stored = Message.objects.get()
    stored.next_attempt_at = timezone.now() - timedelta(seconds=1)
    enqueue_delivery(stored)
    [result] = backend.results
    assert result.task.run_after is None


@pytest.mark.django_db(transaction=True)
def test_with_a_backend_that_cannot_defer_held_mail_is_left_to_txmail_worker(
    task_mode, domain, sandbox, caplog
):
    task_mode(IMMEDIATE, MAX_ATTEMPTS=1)
    caplog.set_level(logging.INFO, logger="django_txmail.sending.tasks")
    msg = message(send_at=timezone.now() + timedelta(hours=1))
    msg.send()
    assert Message.objects.get().status == "scheduled" and sandbox.requests == []
    assert "cannot defer tasks, so txmail_worker will send it" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_immediate_backend_sends_when_the_transaction_commits(task_mode, domain, sandbox):
    task_mode(IMMEDIATE, MAX_ATTEMPTS=1)
    with transaction.atomic():
        message().send()
        assert sandbox.requests == []
    assert len(sandbox.messages) == 1 and Message.objects.get().status == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_broker_down_at_enqueue_leaves_the_message_queued_for_the_worker(
    task_mode, domain, sandbox, settings, caplog
):
    nothing_listens = free_port()
    settings.RQ_QUEUES = {
        "default": {
            "HOST": "127.0.0.1",
            "PORT": nothing_listens,
            "REDIS_CLIENT_KWARGS": {"retry": Retry(NoBackoff(), 0)},
        }
    }
    task_mode(RQ)
    msg = message()
    assert msg.send() == 1, "the message is recorded: it counts as accepted"
    stored = Message.objects.get()
    assert (stored.status, stored.next_attempt_at, sandbox.requests) == ("queued", None, [])
    assert "could not enqueue its delivery task" in caplog.text
    now = timezone.now()
    assert not Message.objects.filter(due(now)).exists(), "its task may still come"
    later = now + ORPHAN_AFTER + timedelta(seconds=1)
    assert list(Message.objects.filter(due(later))) == [stored], "txmail_worker takes it then"


@pytest.mark.django_db(transaction=True)
def test_a_message_in_no_state_to_send_gets_no_task(task_mode, domain, sandbox):
    task_mode(DUMMY)
    message().send()
    stored = Message.objects.get()
    backend = task_backends["txmail"]
    backend.results.clear()
    stored.status = Message.Status.SENT
    enqueue_delivery(stored)
    assert backend.results == []


# -- the task --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_transient_failure_enqueues_the_retry_for_its_time(task_mode, domain, sandbox):
    task_mode(DUMMY)
    sandbox.inject(Fault(status=503))
    message().send()
    backend = task_backends["txmail"]
    [first] = backend.results
    first.task.call(*first.args)
    stored = Message.objects.get()
    # Later than the failed attempt (not than now: on a busy machine a 0.2 s
    # backoff may be over by the time this line runs).
    [attempt] = stored.attempt_log.all()
    assert stored.status == "queued" and stored.next_attempt_at > attempt.started_at
    [_, retry] = backend.results
    assert retry.args == first.args
    assert retry.task.run_after == stored.next_attempt_at.replace(microsecond=0) + timedelta(
        seconds=1
    )


@pytest.mark.django_db(transaction=True)
def test_a_task_that_runs_before_the_message_is_due_comes_back_later(task_mode, domain, sandbox):
    task_mode(DUMMY)
    message(send_at=timezone.now() + timedelta(minutes=5)).send()
    backend = task_backends["txmail"]
    [deferred] = backend.results
    deliver_message.call(*deferred.args)  # as a backend that ran it early would
    assert sandbox.requests == [] and Message.objects.get().status == "scheduled"
    assert [r.task.run_after for r in backend.results] == [deferred.task.run_after] * 2


@pytest.mark.django_db(transaction=True)
def test_a_permanent_failure_is_recorded_on_the_message_not_raised(
    task_mode, domain, sandbox, caplog
):
    task_mode(DUMMY)
    sandbox.inject(Fault(status=400))
    message().send()
    [result] = task_backends["txmail"].results
    caplog.set_level(logging.INFO, logger="django_txmail.sending.tasks")
    deliver_message.call(*result.args)
    stored = Message.objects.get()
    assert stored.status == "failed" and stored.last_error
    assert "was not sent" in caplog.text
    assert len(task_backends["txmail"].results) == 1, "a failed message is not retried"


@pytest.mark.django_db(transaction=True)
def test_a_task_for_a_message_that_is_gone_does_nothing(task_mode, sandbox):
    task_mode(DUMMY)
    deliver_message.call(str(uuid.uuid4()))
    assert sandbox.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_task_run_twice_sends_once(task_mode, domain, sandbox):
    task_mode(DUMMY)
    message().send()
    [result] = task_backends["txmail"].results
    deliver_message.call(*result.args)
    deliver_message.call(*result.args)
    assert len(sandbox.requests) == 1 and Message.objects.get().attempts == 1


def test_each_worker_thread_keeps_one_sender(task_mode):
    task_mode(DUMMY)
    mine = _sender()
    assert _sender() is mine
    theirs = []
    thread = threading.Thread(target=lambda: theirs.append(_sender()))
    thread.start()
    thread.join()
    assert theirs[0] is not mine


def test_a_change_of_settings_gives_the_thread_a_new_sender(task_mode, settings):
    task_mode(DUMMY)
    before = _sender()
    settings.TXMAIL = settings.TXMAIL | {"TIMEOUT": 3}
    assert _sender() is not before


# -- real task backends and workers ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_end_to_end_with_django_tasks_db_and_db_worker(task_mode, domain, sandbox):
    task_mode(DATABASE)
    sandbox.inject(Fault(status=503))
    assert EmailBackend().send_messages([message(f"m{i}") for i in range(5)]) == 5
    assert DBTaskResult.objects.count() == 5 and sandbox.requests == []

    run_workers_until_final(
        lambda: call_command(
            "db_worker",
            "--batch",
            "--backend=txmail",
            "--interval=0",
            "--no-startup-delay",
            "--no-reload",
            verbosity=0,
        ),
        db_task_due,
    )

    assert_each_sent_exactly_once(sandbox, 5)
    tasks = DBTaskResult.objects.all()
    assert [t.status for t in tasks] == ["SUCCESSFUL"] * 6
    assert len([t for t in tasks if t.task_result.task.run_after is not None]) == 1


@pytest.mark.django_db(transaction=True)
def test_end_to_end_with_rq_and_redis(rq_mode, domain, sandbox):
    sandbox.inject(Fault(status=503))
    assert EmailBackend().send_messages([message(f"m{i}") for i in range(5)]) == 5
    queue = django_rq.get_queue("default")
    assert queue.count == 5 and sandbox.requests == []

    runs = run_workers_until_final(
        lambda: call_command(
            "rqworker",
            "default",
            "--burst",
            "--with-scheduler",
            "--worker-class=rq.SimpleWorker",
            "--job-class=django_tasks_rq.Job",
            verbosity=0,
        ),
        rq_task_due,
    )

    assert runs >= 2, "the retry was deferred past the first run"
    assert_each_sent_exactly_once(sandbox, 5)
    assert FinishedJobRegistry(queue=queue).count == 6
    assert ScheduledJobRegistry(queue=queue).count == 0 and queue.count == 0


@pytest.mark.django_db(transaction=True)
def test_rq_sends_mail_held_in_the_outbox_when_it_is_due(rq_mode, domain, sandbox, monkeypatch):
    # Recorded at a fixed instant a second before it is due, however long
    # recording takes on a busy machine.
    recorded_at = timezone.now().replace(microsecond=0)
    msg = message(send_at=recorded_at + timedelta(seconds=1))
    with monkeypatch.context() as frozen:
        frozen.setattr(timezone, "now", lambda: recorded_at)
        msg.send()
    assert msg.txmail.status == "scheduled"
    queue = django_rq.get_queue("default")
    registry = ScheduledJobRegistry(queue=queue)
    [job_id] = registry.get_job_ids()
    assert queue.count == 0 and registry.get_scheduled_time(job_id) == msg.send_at
    runs = run_workers_until_final(
        lambda: call_command(
            "rqworker",
            "--burst",
            "--with-scheduler",
            "--worker-class=rq.SimpleWorker",
            "--job-class=django_tasks_rq.Job",
            verbosity=0,
        ),
        rq_task_due,
    )
    stored = Message.objects.get()
    assert runs >= 1 and stored.status == "sent" and stored.sent_at >= stored.send_at
    assert len(sandbox.messages) == 1


# -- configuration -----------------------------------------------------------------------


def ids(errors):
    return [e.id for e in errors]


def test_task_delivery_on_a_backend_that_can_defer_passes_the_checks(task_mode):
    task_mode(DATABASE)
    assert check_settings() == []


def test_a_task_backend_missing_from_tasks_is_reported(task_mode, settings):
    task_mode(DATABASE)
    settings.TXMAIL = settings.TXMAIL | {"TASK_BACKEND": "mail"}
    [error] = check_settings()
    assert error.id == "txmail.E008" and "'mail'" in error.msg and "'txmail'" in error.msg


def test_a_task_backend_that_cannot_be_loaded_is_reported(task_mode):
    task_mode("no.such.Backend")
    assert ids(check_settings()) == ["txmail.E008"]


def test_a_backend_that_cannot_defer_with_retries_configured_is_reported(task_mode):
    task_mode(IMMEDIATE)
    [error] = check_settings()
    assert error.id == "txmail.E009" and "ImmediateBackend" in error.msg
    assert "django-tasks-db" in error.hint and "MAX_ATTEMPTS'] = 1" in error.hint


def test_a_backend_that_cannot_defer_is_fine_without_retries(task_mode):
    task_mode(IMMEDIATE, MAX_ATTEMPTS=1)
    assert check_settings() == []


def test_a_missing_tasks_framework_is_reported(task_mode, monkeypatch):
    task_mode(DATABASE)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, FRAMEWORK, None)
        [error] = check_settings()
    assert error.id == "txmail.E007" and "pip install django-tasks" in error.hint


def test_immediate_delivery_needs_no_tasks_framework(monkeypatch):
    monkeypatch.setitem(sys.modules, FRAMEWORK, None)
    assert check_settings() == []


@pytest.mark.skipif(django.VERSION >= (6, 0), reason="Django 6.0+ ships django.tasks")
def test_sending_in_task_mode_without_the_backport_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "django_txmail.sending.tasks")
    with monkeypatch.context() as patch, pytest.raises(ImproperlyConfigured) as error:
        patch.setitem(sys.modules, "django_tasks", None)
        importlib.import_module("django_txmail.sending.tasks")
    assert "pip install django-tasks" in str(error.value)


def test_an_unknown_task_backend_is_a_clear_error_when_the_task_is_loaded(settings, monkeypatch):
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task", "TASK_BACKEND": "mail"}
    monkeypatch.delitem(sys.modules, "django_txmail.sending.tasks")
    with pytest.raises(ImproperlyConfigured, match="TASK_BACKEND'] is 'mail'"):
        importlib.import_module("django_txmail.sending.tasks")
