"""Races between senders, workers and delivery events: nothing sent twice, no status undone."""

from __future__ import annotations

import pytest
from django.utils import timezone

from django_txmail.backends import EmailBackend
from django_txmail.compose import compose
from django_txmail.conf import get_settings
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, DeliveryEvent, Message
from django_txmail.outbox.store import plan, record
from django_txmail.providers import load_adapter
from django_txmail.routing import resolve
from django_txmail.sending.attempt import attempt
from django_txmail.sending.transport import Transport
from django_txmail.sending.worker import Worker
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db


def msg(subject="Hi", **kwargs):
    return TxMessage(subject, "b", "noreply@example.com", ["ann@x.example"], **kwargs)


def test_the_same_key_twice_in_one_call_sends_once(sandbox, domain):
    assert EmailBackend().send_messages([msg(idempotency_key="k1"), msg(idempotency_key="k1")])
    assert len(sandbox.messages) == 1 and Message.objects.count() == 1


def test_a_reused_key_never_sends_a_row_another_process_is_sending(sandbox, domain):
    email = compose(msg(idempotency_key="order-9"))
    other, _ = record(plan(email, claim=True), resolve(email))  # process A, mid-send
    again = msg(idempotency_key="order-9")
    again.send()  # process B: a retried web request
    assert sandbox.requests == []
    assert again.txmail.status == "sending" and Message.objects.count() == 1
    assert again.txmail.created is False and again.txmail.message.pk == other.pk


def event(message, kind="delivered"):
    return DeliveryEvent.objects.create(
        message=message,
        provider="nylas",
        type=kind,
        provider_type=kind,
        provider_event_id=f"e-{kind}",
        occurred_at=timezone.now(),
        raw={},
        ingest_batch="00000000-0000-0000-0000-000000000000",
    )


def test_a_late_failure_never_undoes_delivered_nor_sends_again(sandbox, domain):
    email = compose(msg())
    message, _ = record(plan(email, claim=True), resolve(email))
    Message.objects.filter(pk=message.pk).update(status="delivered")  # a webhook got there first
    sandbox.inject(Fault(status=503))
    with Transport() as transport:
        assert attempt(message, load_adapter(get_settings().account("nylas")), transport) is None
    stored = Message.objects.get()
    assert stored.status == "delivered"
    assert message.status == "delivered", "the instance follows the row, as msg.txmail shows it"
    assert Attempt.objects.get().outcome == "transient", "the attempt is still on record"
    assert Worker().run(once=True).attempted == 0


def test_a_slow_attempt_that_succeeds_after_being_given_up_ends_sent(sandbox, domain):
    email = compose(msg())
    message, _ = record(plan(email, claim=True), resolve(email))
    Message.objects.filter(pk=message.pk).update(status="failed", last_error_type="abandoned")
    with Transport() as transport:
        assert attempt(message, load_adapter(get_settings().account("nylas")), transport)
    stored = Message.objects.get()
    assert stored.status == "sent" and stored.provider_message_id == sandbox.messages[0].id


def test_a_message_taken_over_after_its_lease_is_not_sent_by_the_first_sender(sandbox, domain):
    email = compose(msg())
    message, _ = record(plan(email, claim=True), resolve(email))
    # The lease ran out and a worker claimed it (attempt 2) while we were busy.
    Message.objects.filter(pk=message.pk).update(attempts=2, next_attempt_at=timezone.now())
    message.next_attempt_at = timezone.now()
    with Transport() as transport:
        assert attempt(message, load_adapter(get_settings().account("nylas")), transport) is None
    assert sandbox.requests == []


def test_a_batch_leaves_out_messages_another_sender_took_over(txmail_sandbox, settings, db):
    from django_txmail.models import SendingDomain
    from django_txmail.sending.attempt import attempt_batch
    from tests.test_send_providers_e2e import MAILTRAP_FROM, accounts

    settings.TXMAIL = accounts(txmail_sandbox.url)
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    rows = []
    for i in range(3):
        email = compose(TxMessage(f"m{i}", "b", MAILTRAP_FROM, [f"u{i}@x.example"]))
        rows.append(record(plan(email, claim=True), resolve(email))[0])
    # We were busy past that message's lease, and a worker claimed it (attempt 2).
    rows[1].next_attempt_at = timezone.now()
    Message.objects.filter(pk=rows[1].pk).update(attempts=2)
    adapter = load_adapter(get_settings().account("mailtrap"))
    with Transport() as transport:
        outcomes = attempt_batch(rows, adapter, transport)
    assert outcomes[1] is None and outcomes[0] and outcomes[2]
    assert sorted(m.payload["subject"] for m in txmail_sandbox.messages) == ["m0", "m2"]
    assert [r.path for r in txmail_sandbox.requests] == ["/api/batch"]
    assert Message.objects.get(pk=rows[1].pk).status == "sending"


def _as_stored(message) -> tuple[dict, dict]:
    """Every column of the instance, and of its row as stored."""
    names = [field.attname for field in Message._meta.concrete_fields]
    stored = Message.objects.get(pk=message.pk)
    return {n: getattr(message, n) for n in names}, {n: getattr(stored, n) for n in names}


def _taken_over_and_sent(message) -> None:
    """Our lease ran out; a worker claimed the message (attempt 2) and sent it, and its
    first event arrived."""
    Message.objects.filter(pk=message.pk).update(
        status="delivered",
        attempts=2,
        provider_message_id="sent-by-the-worker",
        sent_at=timezone.now(),
        recipient_status={"ann@x.example": "delivered"},
        next_attempt_at=None,
        updated_at=timezone.now(),
    )


@pytest.mark.parametrize("write", ["fail", "release", "hold", "release_until", "claim", "renew"])
def test_a_guarded_write_that_finds_the_row_moved_on_leaves_the_instance_as_the_row(
    sandbox, domain, write
):
    from django_txmail.outbox import claims, states

    email = compose(msg())
    message, _ = record(plan(email, claim=True), resolve(email))
    _taken_over_and_sent(message)
    later = timezone.now()
    if write == "fail":
        owned = states.fail(
            message, retry_at=later, gave_up=False, last_error="x", last_error_type="http_503"
        )
    elif write == "release":
        owned = states.release(message)
    elif write == "hold":
        owned = states.hold(message, last_error="gone", last_error_type="grant_gone")
    elif write == "release_until":
        owned = states.release_until([message], later)
    elif write == "claim":
        owned = claims.claim(message)
    else:
        owned = bool(claims.renew([message]))
    assert not owned
    ours, stored = _as_stored(message)
    assert ours == stored
    assert (message.status, message.provider_message_id) == ("delivered", "sent-by-the-worker")


def test_a_row_deleted_meanwhile_leaves_the_instance_as_it_was(sandbox, domain):
    from django_txmail.outbox import states

    email = compose(msg())
    message, _ = record(plan(email, claim=True), resolve(email))
    Message.objects.all().delete()
    assert not states.release(message)
    assert (message.status, message.attempts) == ("sending", 1)
