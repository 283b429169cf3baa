"""Database round trips of the outbox: one transaction records a whole
send_messages() call, in bulk INSERTs; one transaction records the outcomes
of one batch request, in bulk statements."""

from __future__ import annotations

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_txmail.backends import EmailBackend
from django_txmail.message import TxMessage
from django_txmail.models import Message, MessageAttachment

pytestmark = pytest.mark.django_db


@pytest.fixture
def task_mode(sandbox, settings, domain):
    # Recorded and handed to a task that never runs: only the recording is measured.
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    settings.TASKS = {"default": {"BACKEND": _dummy()}}


def _dummy() -> str:
    import django

    framework = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
    return f"{framework}.backends.dummy.DummyBackend"


def folders() -> set[str]:
    """The attachment folders in storage (one per message with files)."""
    return set(default_storage.listdir("txmail")[0]) if default_storage.exists("txmail") else set()


def messages(count: int, **kwargs) -> list[TxMessage]:
    return [
        TxMessage(f"m{i}", "b", "noreply@example.com", [f"u{i}@x.example"], **kwargs)
        for i in range(count)
    ]


@pytest.mark.usefixtures("task_mode")
def test_a_call_inserts_its_messages_in_bulk():
    with CaptureQueriesContext(connection) as queries:
        assert EmailBackend().send_messages(messages(20)) == 20
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "django_txmail_message"')]
    assert Message.objects.count() == 20
    # Batched by the database's parameter limit, never one INSERT per message.
    assert len(inserts) <= 20 * len(Message._meta.concrete_fields) // 999 + 1


@pytest.mark.usefixtures("task_mode")
def test_a_call_that_cannot_be_recorded_records_nothing_and_leaves_no_file(monkeypatch):
    batch = messages(3)
    for message in batch:
        message.attach("a.txt", b"hello", "text/plain")
    original = MessageAttachment.objects.bulk_create

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(MessageAttachment.objects, "bulk_create", broken)
    before = folders()
    with pytest.raises(RuntimeError):
        EmailBackend().send_messages(batch)
    monkeypatch.setattr(MessageAttachment.objects, "bulk_create", original)
    assert Message.objects.count() == 0
    assert folders() == before


@pytest.mark.usefixtures("task_mode")
def test_a_refused_message_does_not_stop_the_others_of_the_call():
    first, second, third = messages(3)
    second.idempotency_key = third.idempotency_key = "same-key"
    third.subject = "other content"
    backend = EmailBackend(fail_silently=True)
    assert backend.send_messages([first, second, third]) == 2
    assert sorted(Message.objects.values_list("subject", flat=True)) == ["m0", "m1"]


def test_a_batch_requests_outcomes_are_recorded_in_bulk(txmail_sandbox, settings):
    from django_txmail.models import SendingDomain
    from tests.test_send_providers_e2e import MAILTRAP_FROM, accounts, use_our_backend

    settings.TXMAIL = accounts(txmail_sandbox.url)
    use_our_backend(settings)
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    batch = [TxMessage(f"m{i}", "b", MAILTRAP_FROM, [f"u{i}@x.example"]) for i in range(12)]
    with CaptureQueriesContext(connection) as queries:
        assert EmailBackend().send_messages(batch) == 12
    assert len(txmail_sandbox.requests) == 1  # one /api/batch request
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    sql = [q["sql"] for q in queries]
    updates = [q for q in sql if 'UPDATE "django_txmail_message"' in q]
    attempt_inserts = [
        q for q in sql if q.startswith('12 times: INSERT INTO "django_txmail_attempt"')
    ]
    # No lease to renew (it was taken with the record), then every outcome in one statement,
    # on PostgreSQL with the attempts' INSERT in its WITH.
    assert len(updates) == 1
    if connection.vendor == "postgresql":
        assert updates[0].startswith('WITH txmail_along AS (INSERT INTO "django_txmail_attempt"')
        carried = updates[0].split(" v (")[0]
        assert carried.count("), (") == 11  # the 12 attempts, in the WITH
        assert not [q for q in sql if 'INSERT INTO "django_txmail_attempt"' in q.split(" v (")[0]][
            1:
        ]
    else:
        assert updates[0].startswith("WITH v (")
        assert len(attempt_inserts) == 1
