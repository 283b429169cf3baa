"""Task delivery on Celery: django-tasks-fennel, a real Celery worker, a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from celery import Celery
from celery import _state as celery_state

from django_txmail.backends import EmailBackend
from django_txmail.models import Message
from tests.test_tasks import assert_each_sent_exactly_once, message, redis_server  # noqa: F401
from tests.test_worker import ROOT, wait_until
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db(transaction=True)

CELERY = "django_tasks_fennel.CeleryBackend"


@pytest.fixture
def celery_mode(sandbox, settings, redis_server):  # noqa: F811
    """Task delivery through django-tasks-fennel on the test's Redis; yields the TXMAIL
    setting and the broker URL. This process enqueues with a Celery app of its own."""
    broker = f"redis://127.0.0.1:{redis_server}/3"
    settings.TASKS = {"default": {"BACKEND": CELERY}}
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task", "RETRY_BACKOFF": (0.5, 1)}
    previous = celery_state._tls.current_app
    app = Celery("txmail-tests", broker=broker, set_as_current=True)
    app.conf.task_default_queue = "default"
    try:
        yield settings.TXMAIL, broker, app
    finally:
        app.close()
        celery_state._set_current_app(previous)


def start_celery_worker(txmail: dict, broker: str) -> subprocess.Popen:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.celery_settings",
        "TXMAIL_TEST_TXMAIL": json.dumps(txmail),
        "TXMAIL_TEST_CELERY_BROKER": broker,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "django_tasks_fennel.app",
            "worker",
            "--pool=threads",
            "--concurrency=2",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_end_to_end_with_celery_and_redis_including_a_deferred_retry(celery_mode, domain, sandbox):
    txmail, broker, _ = celery_mode
    sandbox.inject(Fault(status=503))
    assert EmailBackend().send_messages([message(f"m{i}") for i in range(5)]) == 5
    assert sandbox.requests == [], "recorded and enqueued; the Celery worker sends"
    worker = start_celery_worker(txmail, broker)
    try:
        wait_until(
            lambda: Message.objects.filter(status="sent").count() == 5,
            60,
            "the Celery worker to send all five, the retry included",
        )
    finally:
        worker.terminate()
        out, err = worker.communicate(timeout=30)
    retried = assert_each_sent_exactly_once(sandbox, 5)
    first, second = retried.attempt_log.all()
    assert (second.started_at - first.started_at).total_seconds() >= 0.25, "deferred"
    assert "Traceback" not in err, err


def test_celery_takes_the_lane_as_the_tasks_priority(celery_mode, domain, sandbox, monkeypatch):
    _, _, app = celery_mode
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: sent.append(kwargs["priority"]))
    for lane in ("low", "normal", "high"):
        message(lane, priority=lane).send()
    assert sent[0] < sent[1] < sent[2], "Celery's 0-9, higher first"
