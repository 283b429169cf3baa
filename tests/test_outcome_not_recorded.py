"""A database error after the provider accepted a message: tried again, else reconciled."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.core import mail
from django.db import OperationalError, connection
from django.utils import timezone

from django_txmail.exceptions import AcceptedNotRecorded, TxMailError
from django_txmail.models import Attempt, Message, SendingDomain
from django_txmail.outbox.claims import claim_batch
from django_txmail.sending import attempt as delivery
from tests.conftest import use_our_backend
from tests.test_send_providers_e2e import MAILTRAP_FROM, accounts
from tests.test_states import with_echo
from tests.test_webhooks import SECRET, delivered, post

pytestmark = pytest.mark.django_db


@contextmanager
def attempt_inserts_fail(times: int | None = None):
    """Make INSERTs into the attempt log raise OperationalError (``times`` of them, or all)."""
    table = Attempt._meta.db_table
    failed = []

    def wrapper(execute, sql, params, many, context):
        # Alone, or in the WITH of the outcome's UPDATE (PostgreSQL).
        inserts = f'INSERT INTO "{table}"' in sql or f"INSERT INTO {table}" in sql
        if inserts and (times is None or len(failed) < times):
            failed.append(sql)
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield failed


@pytest.fixture
def no_pauses(monkeypatch):
    monkeypatch.setattr(delivery, "OUTCOME_WRITE_PAUSES", (0, 0, 0))


@pytest.fixture
def signed(sandbox, settings):
    settings.TXMAIL["PROVIDERS"]["nylas"]["WEBHOOK_SECRET"] = SECRET
    return sandbox


def test_an_outcome_write_that_meets_a_database_error_is_tried_again(sandbox, domain):
    with attempt_inserts_fail(times=2) as failed:
        assert mail.send_mail("Receipt", "Thanks", "noreply@example.com", ["ann@x.example"]) == 1
    assert len(failed) == 2
    message = Message.objects.get()
    assert message.status == "sent" and message.provider_message_id
    assert Attempt.objects.get().outcome == "sent"
    assert len(sandbox.messages) == 1


def test_an_acceptance_the_database_will_not_record_says_so_and_not_to_resend(
    signed, domain, no_pauses, client
):
    with attempt_inserts_fail() as failed, pytest.raises(AcceptedNotRecorded) as raised:
        mail.send_mail("Receipt", "Thanks", "noreply@example.com", ["ann@x.example"])
    assert len(failed) == 1 + len(delivery.OUTCOME_WRITE_PAUSES)
    assert isinstance(raised.value, TxMailError)
    assert "nylas accepted message" in str(raised.value)
    assert "Do not send it again" in str(raised.value)
    assert "OperationalError" not in type(raised.value).__name__
    assert len(signed.messages) == 1
    # Left as the process found it: "sending" under its lease, nobody takes it over meanwhile.
    message = Message.objects.get()
    assert message.status == "sending" and message.next_attempt_at > timezone.now()
    assert claim_batch(10) == []
    # The provider's webhook reconciles it.
    assert post(client, with_echo(delivered(message), message)).status_code == 200
    message.refresh_from_db()
    assert message.status == "delivered"
    assert claim_batch(10) == [] and len(signed.messages) == 1


def test_fail_silently_covers_an_acceptance_that_was_not_recorded(sandbox, domain, no_pauses):
    with attempt_inserts_fail():
        sent = mail.send_mail(
            "Receipt", "Thanks", "noreply@example.com", ["ann@x.example"], fail_silently=True
        )
    assert sent == 1, "the provider has it: counted, so the caller does not send it again"
    assert len(sandbox.messages) == 1


def test_a_batch_the_database_will_not_record_raises_the_same_error(
    txmail_sandbox, settings, no_pauses
):
    settings.TXMAIL = accounts(txmail_sandbox.url)
    use_our_backend(settings)
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    messages = [(f"Receipt {i}", "Thanks", MAILTRAP_FROM, [f"u{i}@x.example"]) for i in range(3)]
    with attempt_inserts_fail(), pytest.raises(AcceptedNotRecorded, match="mailtrap accepted"):
        mail.send_mass_mail(messages)
    assert [r.path for r in txmail_sandbox.requests] == ["/api/batch"]
    assert set(Message.objects.values_list("status", flat=True)) == {"sending"}


def test_a_real_database_error_in_the_outcome_leaves_the_callers_transaction_usable(
    sandbox, domain
):
    """Sent inside the caller's transaction (a test's, here), the outcome write meets an
    error the database itself raises (on PostgreSQL it aborts the transaction): the
    write is tried again in its savepoint and recorded, and the caller's transaction
    still answers queries."""
    failed = []

    def wrapper(execute, sql, params, many, context):
        if not failed and 'INSERT INTO "django_txmail_attempt"' in sql:
            failed.append(sql)
            return execute("SELECT * FROM txmail_no_such_table", None, False, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        assert mail.send_mail("Receipt", "Thanks", "noreply@example.com", ["ann@x.example"]) == 1
    assert len(failed) == 1
    message = Message.objects.get()  # the caller's transaction is not aborted
    assert message.status == "sent" and message.provider_message_id
    assert Attempt.objects.get().outcome == "sent"


def test_a_failure_the_database_would_not_take_leaves_the_instance_as_the_row(
    sandbox, domain, no_pauses, monkeypatch
):
    from django_txmail.compose import compose
    from django_txmail.conf import get_settings
    from django_txmail.message import TxMessage
    from django_txmail.outbox import states
    from django_txmail.outbox.store import plan, record
    from django_txmail.providers import load_adapter
    from django_txmail.routing import resolve
    from django_txmail.sending.transport import Transport
    from txmail_sandbox import Fault

    email = compose(TxMessage("Hi", "b", "noreply@example.com", ["ann@x.example"]))
    message, _ = record(plan(email, claim=True), resolve(email))
    sandbox.inject(Fault(status=503))
    fail, tries = states.fail, []

    def fail_then_roll_back(*args, **kwargs):
        fail(*args, **kwargs)  # written, and the instance changed with it
        tries.append(1)
        raise OperationalError("database is locked")  # the transaction rolls back

    monkeypatch.setattr(states, "fail", fail_then_roll_back)
    with Transport() as transport:
        delivery.attempt(message, load_adapter(get_settings().account("nylas")), transport)
    assert len(tries) == 1 + len(delivery.OUTCOME_WRITE_PAUSES)
    # Every try rolled back: the row is "sending" under its lease, and so is the instance
    # (not "queued" with the error the rolled-back write had set on it).
    names = [f.attname for f in Message._meta.concrete_fields]
    stored = Message.objects.get()
    assert {n: getattr(message, n) for n in names} == {n: getattr(stored, n) for n in names}
    assert (message.status, message.last_error) == ("sending", "")
