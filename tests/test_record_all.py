"""Recording a call's messages: every attempt sends the same bytes, a key repeated in
one call is one message, a call that raises recorded nothing, and a batch's
acceptances follow the same rule as one message's."""

from __future__ import annotations

import pytest
from django.core import mail
from django.db import IntegrityError, connection

from django_txmail.compose import compose
from django_txmail.conf import get_settings
from django_txmail.message import TxMessage
from django_txmail.models import Message, SendingDomain
from django_txmail.outbox import bulk, store
from django_txmail.outbox.store import load, plan, record
from django_txmail.providers import load_adapter
from django_txmail.routing import resolve
from tests.message_rows import message_row
from tests.test_batch import sandbox  # noqa: F401  (the fixture: sandbox, domains, our backend)
from tests.test_build_once import request_bytes
from tests.test_send_providers_e2e import accounts


@pytest.mark.django_db
def test_nested_non_string_keys_first_attempt_equals_retry(settings):
    # JSON writes {2: ..} as {"2": ..}: the planned message must order its keys as the row will.
    settings.TXMAIL = accounts("http://127.0.0.1:9")
    SendingDomain.objects.create(name="example.com", provider="nylas")
    msg = TxMessage("Hi", "text", "noreply@example.com", ["ann@x.example"])
    msg.esp_extra = {"metadata": {2: "two", 10: "ten"}}
    email = compose(msg)
    resolved = resolve(email)
    adapter = load_adapter(get_settings().account(resolved.account.name))
    planned = plan(email, adapter.scheduling_window(resolved.route), claim=True)
    adapter.check(planned.sent, resolved.route)
    message, _ = record(planned, resolved)
    first = request_bytes(adapter, planned.sent, resolved.route)
    retry = request_bytes(adapter, load(Message.objects.get(pk=message.pk)), resolved.route)
    assert first == retry


def _other_process_records_first(monkeypatch, make_row):
    """Simulate another process committing a row with the same key between record_all's
    look-up of known keys and its bulk INSERT (the race the IntegrityError fallback is for)."""
    original = store._store_files

    def racing(items):
        items = list(items)
        make_row(items)
        return original(items)

    monkeypatch.setattr(store, "_store_files", racing)


@pytest.mark.django_db
@pytest.mark.usefixtures("sandbox")
def test_a_key_repeated_in_one_call_answers_with_a_row_that_exists(monkeypatch):
    def make_row(items):
        first = items[0].message
        Message.objects.create(
            **{
                f.attname: getattr(first, f.attname)
                for f in Message._meta.concrete_fields
                if f.attname not in ("id",)
            }
        )

    _other_process_records_first(monkeypatch, make_row)
    a = TxMessage("Hi", "Body", "noreply@example.com", ["ann@x.example"])
    b = TxMessage("Hi", "Body", "noreply@example.com", ["ann@x.example"])
    a.idempotency_key = b.idempotency_key = "order-42-receipt"
    assert mail.get_connection().send_messages([a, b]) == 2
    [row] = Message.objects.filter(idempotency_key="order-42-receipt")
    assert a.txmail.message_id == row.pk
    # The second copy of the key must answer with the same (existing) row.
    assert b.txmail.message_id == row.pk
    assert Message.objects.filter(pk=b.txmail.message_id).exists()
    # Neither was recorded by this call, and each says so, with the row that was.
    assert (a.txmail.created, b.txmail.created) == (False, False)
    assert a.txmail.message.pk == b.txmail.message.pk == row.pk


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sandbox")
def test_a_send_that_raises_in_the_fallback_leaves_no_rows_and_no_dangling_files(monkeypatch):
    """A constraint other than the key fails (the second message's SendingDomain is
    deleted while the call runs): the call raises, and nothing of it is recorded."""
    SendingDomain.objects.create(name="other.example", provider="nylas")

    def make_row(items):
        SendingDomain.objects.filter(name="other.example").delete()

    _other_process_records_first(monkeypatch, make_row)
    a = TxMessage("A", "Body", "noreply@example.com", ["ann@x.example"])
    a.attach("a.txt", b"aaa", "text/plain")
    b = TxMessage("B", "Body", "noreply@other.example", ["bob@x.example"])
    b.attach("b.txt", b"bbb", "text/plain")
    with pytest.raises(IntegrityError):
        mail.get_connection().send_messages([a, b])
    storage = store.attachment_storage()
    leftovers = [
        (m.subject, m.status, [storage.exists(att.storage_name) for att in m.attachments.all()])
        for m in Message.objects.all()
    ]
    # A send that raises recorded nothing (and a recorded row would keep its files).
    assert leftovers == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "support",
    [(True, True), (True, False), (False, False)],
    ids=["one joined UPDATE RETURNING", "one joined UPDATE, then a SELECT", "executemany"],
)
@pytest.mark.parametrize("together", [True, False], ids=["one call", "a call each"])
def test_accept_all_matches_accept(settings, monkeypatch, support, together):
    from django.utils import timezone

    from django_txmail.outbox import states

    # As on databases that cannot return rows from an UPDATE, or join one to a list of values.
    monkeypatch.setattr(states, "_update_support", lambda connection: support)
    # Chunks of 3 rows: the statements split the list as a long batch does.
    # (A class attribute on Django 5.2, a property on 6.0+: replaced on the class.)
    monkeypatch.setattr(type(connection.features), "max_query_params", 2 * 6 + 3 * 8)

    S = Message.Status
    cases = [
        (S.SENDING, "", False, (S.SENT, "")),
        (S.QUEUED, "", True, (S.SCHEDULED, "")),
        (S.FAILED, "ours", False, (S.SENT, "")),
        (S.FAILED, "provider", False, (S.FAILED, "provider")),
        (S.DELIVERED, "", False, (S.DELIVERED, "")),
        (S.CANCELLED, "", False, (S.SENT, "")),
        (S.BOUNCED, "", True, (S.BOUNCED, "")),
    ]
    accepted, expected = [], {}
    now = timezone.now()
    for i, (status, origin, holds, want) in enumerate(cases + cases[:2]):  # three chunks
        m = message_row(status=status, failure_origin=origin)
        # An event got to the row first: its recipients' statuses are not the instance's.
        Message.objects.filter(pk=m.pk).update(
            recipient_status={"ann@x.example": f"e{i}"}, updated_at=timezone.now()
        )
        fields = {
            "provider_message_id": f"p{i}",
            "provider_schedule_id": "",
            "provider_request_id": f"r{i}",
            "next_attempt_at": None,
            "sent_at": now,
            "updated_at": now,
        }
        accepted.append((m, holds, fields))
        expected[m.pk] = want
    if together:
        states.accept_all(accepted)
    else:  # one request's outcome at a time, as single sends record them
        for one in accepted:
            states.accept_all([one])
    names = [f.attname for f in Message._meta.concrete_fields]
    for m, _, fields in accepted:
        db = Message.objects.get(pk=m.pk)
        assert (db.status, db.failure_origin) == expected[m.pk]
        assert db.provider_message_id == fields["provider_message_id"]
        assert db.sent_at == now
        # The instance is the row: what the UPDATE wrote, and what the event had.
        assert {n: getattr(m, n) for n in names} == {n: getattr(db, n) for n in names}


@pytest.mark.django_db
def test_where_nothing_raced_an_accept_without_returning_is_one_update(monkeypatch):
    """Databases without UPDATE ... RETURNING: the row untouched since this process wrote
    it (its updated_at), one UPDATE and no read; the instance is the row."""
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from django_txmail.outbox import states

    monkeypatch.setattr(states, "_update_support", lambda connection: (False, False))
    m = message_row(status=Message.Status.SENDING)
    now = timezone.now()
    fields = {"provider_message_id": "p", "sent_at": now, "updated_at": now}
    with CaptureQueriesContext(connection) as queries:
        states.accept_all([(m, False, fields)])
    assert [q["sql"].split()[0] for q in queries] == ["UPDATE"]
    names = [f.attname for f in Message._meta.concrete_fields]
    db = Message.objects.get(pk=m.pk)
    assert {n: getattr(m, n) for n in names} == {n: getattr(db, n) for n in names}
    assert db.status == Message.Status.SENT


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("sandbox")
def test_a_single_send_on_an_open_backend_pays_two_commits_and_no_other_query(commits):
    """The suppression list (one SELECT), record (one INSERT, its own transaction),
    then the outcome (the attempt and the status, one transaction; on PostgreSQL one
    statement): the route was looked up by the first send of the open backend."""
    import re

    from django.db import connection

    backend = mail.get_connection()
    backend.open()
    try:
        backend.send_messages([TxMessage("First", "Body", "noreply@example.com", ["a@x.example"])])
        commits.clear()
        statements = []

        def watch(execute, sql, params, many, context):
            if sql.split()[0] not in ("BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"):
                statements.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(watch):
            sent = backend.send_messages(
                [TxMessage("Second", "Body", "noreply@example.com", ["b@x.example"])]
            )
    finally:
        backend.close()
    assert sent == 1
    names = re.compile(r"\b(FROM|INSERT INTO|UPDATE) \"?(django_txmail_\w+)")
    assert [" ".join(found) for sql in statements for found in names.findall(sql)] == [
        "FROM django_txmail_suppression",
        "INSERT INTO django_txmail_message",
        "INSERT INTO django_txmail_attempt",
        "UPDATE django_txmail_message",
    ]
    assert len(commits) == 2
    if connection.vendor == "postgresql":  # the attempt rides in the UPDATE's WITH
        assert len(statements) == 3
    assert Message.objects.get(subject="Second").status == "sent"


@pytest.mark.django_db
def test_rows_inserted_by_record_read_back_as_bulk_create_writes_them():
    import uuid
    from datetime import UTC, datetime

    from django.db import router

    domain = SendingDomain.objects.create(name="example.com", provider="nylas")

    def row(key: str) -> Message:
        return Message(
            id=uuid.uuid4(),
            route="domain",
            provider="nylas",
            sending_domain=domain,
            route_domain="example.com",
            from_email={"email": "n@example.com", "name": 'Zoë "Z" ✉'},
            from_address="n@example.com",
            to=[{"email": "a@x.example", "name": ""}, {"email": "b@x.example", "name": "B"}],
            subject="Ünïcode 🎉 'quotes' \\ back",
            text_body=None,
            html_body="<p>é</p>",
            headers={"X-A": "1"},
            metadata={"nested": {"list": [1, 2.5, None, True, "x"]}, "n": 10**12},
            tags=["a", "b"],
            send_at=datetime(2031, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
            status="scheduled",
            idempotency_key=key,
            content_hash="f" * 64,
            attempts=0,
            attachment_count=1,
            next_attempt_at=datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC),
            template="welcome",
            template_version=3,
        )

    ours, django_s = row("ours"), row("bulk")
    bulk.insert([ours], router.db_for_write(Message))
    Message.objects.bulk_create([django_s])
    assert not ours._state.adding

    def stored(key: str) -> dict:
        message = Message.objects.get(idempotency_key=key)
        skip = {"id", "idempotency_key", "created_at", "updated_at"}
        return {
            f.attname: getattr(message, f.attname)
            for f in Message._meta.concrete_fields
            if f.attname not in skip
        }

    assert stored("ours") == stored("bulk")
    assert stored("ours")["metadata"] == {
        "nested": {"list": [1, 2.5, None, True, "x"]},
        "n": 10**12,
    }
    created = Message.objects.get(idempotency_key="ours").created_at
    assert created is not None and created == ours.created_at


@pytest.mark.django_db
def test_many_rows_inserted_at_once_read_back_as_bulk_create_writes_them():
    """Past ``COPY_FROM`` rows PostgreSQL takes them with COPY; every value comes back."""
    import uuid
    from datetime import UTC, datetime, timedelta

    from django.db import router

    from django_txmail.models import Attempt

    count = bulk.COPY_FROM + 5
    when = datetime(2031, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)

    def rows(prefix: str) -> list[Message]:
        return [
            Message(
                id=uuid.uuid4(),
                route="domain",
                provider="nylas",
                route_domain="example.com",
                from_email={"email": "n@example.com", "name": f'Zoë "{i}"\\t✉'},
                from_address="n@example.com",
                to=[{"email": f"a{i}@x.example", "name": "tab\\there"}],
                subject=f"{prefix} \\\\ back\\nslash {i} 🎉",
                text_body=None if i % 2 else "text",
                metadata={"n": i, "nested": [None, True, 1.5, "\\\\N"]},
                send_at=when + timedelta(seconds=i) if i % 3 else None,
                status="queued",
                idempotency_key=f"{prefix}-{i}",
                content_hash="f" * 64,
            )
            for i in range(count)
        ]

    ours = rows("ours")
    bulk.insert(ours, router.db_for_write(Message))
    Message.objects.bulk_create(rows("bulk"))

    def stored(prefix: str) -> list[dict]:
        skip = {"id", "idempotency_key", "created_at", "updated_at"}
        messages = Message.objects.filter(idempotency_key__startswith=f"{prefix}-")
        return [
            {
                f.attname: getattr(m, f.attname)
                for f in Message._meta.concrete_fields
                if f.attname not in skip
            }
            | {"subject": m.subject.replace(prefix, "")}
            for m in sorted(messages, key=lambda m: m.metadata["n"])
        ]

    assert stored("ours") == stored("bulk")
    assert len(stored("ours")) == count
    # An auto-increment key left to the database: attempts of those messages.
    entries = [Attempt(message=m, number=1, started_at=when, duration_ms=3) for m in ours]
    bulk.insert(entries, router.db_for_write(Message))
    assert Attempt.objects.filter(message__in=ours).count() == count
