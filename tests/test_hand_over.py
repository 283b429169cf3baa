"""Handing a call's messages over when the transaction commits: tasks enqueued
together (one commit on a database task backend), and mail recorded inside the
caller's transaction sent through one HTTP session."""

from __future__ import annotations

import logging

import pytest
from django.core import mail
from django.db import transaction
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult

from django_txmail.models import Message
from django_txmail.outbox import dispatch
from tests.test_tasks import DATABASE, DUMMY, message, task_mode  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_calls_tasks_go_to_a_database_task_backend_in_one_commit(
    task_mode,  # noqa: F811  (the fixture)
    domain,
    sandbox,
    commits,
):
    task_mode(DATABASE)
    assert mail.get_connection().send_messages([message(f"m{i}") for i in range(5)]) == 5
    assert len(commits) == 2  # the messages, then their five tasks
    tasks = DBTaskResult.objects.all()
    assert sorted(t.args_kwargs["args"][0] for t in tasks) == sorted(
        str(pk) for pk in Message.objects.values_list("pk", flat=True)
    )
    assert sandbox.requests == [], "the tasks send the messages"


def test_if_that_commit_fails_every_message_waits_for_the_worker(
    task_mode,  # noqa: F811  (the fixture)
    domain,
    sandbox,
    monkeypatch,
    caplog,
):
    task_mode(DATABASE)
    enqueue, calls = DatabaseBackend.enqueue, []

    def third_fails(self, task, args, kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        return enqueue(self, task, args, kwargs)

    monkeypatch.setattr(DatabaseBackend, "enqueue", third_fails)
    with caplog.at_level(logging.ERROR, logger="django_txmail.sending.tasks"):
        assert mail.get_connection().send_messages([message(f"m{i}") for i in range(4)]) == 4
    assert DBTaskResult.objects.count() == 0  # none half-enqueued
    assert set(Message.objects.values_list("status", flat=True)) == {"queued"}
    assert "4 message(s)" in caplog.text and "txmail_worker will send them" in caplog.text


def test_other_task_backends_get_one_enqueue_per_message(task_mode, domain, sandbox):  # noqa: F811
    from tests.test_tasks import task_backends

    task_mode(DUMMY)
    assert mail.get_connection().send_messages([message(f"m{i}") for i in range(3)]) == 3
    assert len(task_backends["txmail"].results) == 3


def test_mail_recorded_in_the_callers_transaction_goes_through_one_session(
    domain, sandbox, monkeypatch
):
    senders = []

    class Counted(dispatch.Sender):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            senders.append(self)

    monkeypatch.setattr(dispatch, "Sender", Counted)
    with transaction.atomic():
        assert mail.get_connection().send_messages([message(f"m{i}") for i in range(3)]) == 3
        assert sandbox.requests == []
    assert len(senders) == 1
    assert sorted(m.payload["subject"] for m in sandbox.messages) == ["m0", "m1", "m2"]
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
