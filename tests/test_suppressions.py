"""The suppression list: normalised entries, enforced by the outbox in one query per
call, added by hard bounces, complaints and unsubscribes, honoured by resend and retry."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_txmail import suppressions
from django_txmail.exceptions import InvalidMessage, UnroutableSender
from django_txmail.message import TxMessage
from django_txmail.models import DeliveryEvent, Message, Suppression
from django_txmail.outbox import resend, states
from django_txmail.providers.base import WebhookEvent
from django_txmail.signals import message_suppressed
from django_txmail.tracking.ingest import ingest
from tests.conftest import txmail_settings

FROM = "Shop <noreply@example.com>"

pytestmark = pytest.mark.django_db


def send(*recipients, **extras):
    msg = TxMessage("Receipt", "Thanks", FROM, list(recipients), **extras)
    count = msg.send()
    return count, msg


def suppression_selects(queries) -> int:
    return sum(1 for q in queries.captured_queries if "django_txmail_suppression" in q["sql"])


# --- The list ---------------------------------------------------------------------


def test_an_address_is_one_entry_whatever_its_case_or_domain_spelling(db):
    suppressions.suppress("Ann@Example.COM")
    _, created = suppressions.suppress("ann@example.com")
    assert not created
    suppressions.suppress("Bob@Bücher.Example")
    assert sorted(Suppression.objects.values_list("address", flat=True)) == [
        "ann@example.com",
        "bob@xn--bcher-kva.example",
    ]
    assert suppressions.is_suppressed("ANN@example.com")
    assert suppressions.is_suppressed("bob@bücher.example")


def test_a_blank_stream_holds_in_every_stream_and_a_named_one_only_in_its_own(db):
    suppressions.suppress("a@x.example")
    suppressions.suppress("b@x.example", stream="broadcast", reason="unsubscribe")
    assert suppressions.is_suppressed("a@x.example", "broadcast")
    assert suppressions.is_suppressed("b@x.example", "broadcast")
    assert not suppressions.is_suppressed("b@x.example", "transactional")


def test_unsuppress_takes_one_stream_or_every_entry_off(db):
    suppressions.suppress("a@x.example")
    suppressions.suppress("a@x.example", stream="broadcast")
    assert suppressions.unsuppress("A@x.example", stream="broadcast") == 1
    assert suppressions.is_suppressed("a@x.example", "broadcast")  # the every-stream one
    assert suppressions.unsuppress("a@x.example") == 1
    assert not Suppression.objects.exists()


def test_bad_addresses_reasons_and_streams_are_refused(db):
    with pytest.raises(InvalidMessage):
        suppressions.suppress("not an address")
    with pytest.raises(ValueError):
        suppressions.suppress("a@x.example", reason="bored")
    with pytest.raises(ImproperlyConfigured):
        suppressions.suppress("a@x.example", stream="newsletters")
    assert not Suppression.objects.exists()


# --- Enforcement --------------------------------------------------------------------


def test_a_message_to_a_suppressed_address_sends_nothing_raises_nothing_and_counts_zero(
    sandbox, domain
):
    suppressions.suppress("gone@x.example", reason="hard_bounce")
    count, msg = send("Gone@X.example")
    assert count == 0
    assert sandbox.requests == []
    row = Message.objects.get(pk=msg.txmail.message_id)
    assert row.status == "suppressed"
    assert row.recipient_status == {"gone@x.example": "suppressed"}
    assert row.attempts == 0
    assert msg.txmail.status == "suppressed"
    # As the message names it (the domain part lower-cased, as every address is).
    assert msg.txmail.suppressed == {"Gone@x.example": "hard_bounce"}
    assert msg.txmail.recipients == {"Gone@x.example": "suppressed"}


def test_a_suppressed_recipient_is_left_out_and_the_others_get_the_message(sandbox, domain):
    suppressions.suppress("gone@x.example", reason="complaint")
    count, msg = send("ann@x.example", "gone@x.example", cc=["cc@x.example"])
    assert count == 1
    [received] = sandbox.messages
    sent_to = [r["email"] for field in ("to", "cc", "bcc") for r in received.payload.get(field, [])]
    assert sent_to == ["ann@x.example", "cc@x.example"]
    row = Message.objects.get(pk=msg.txmail.message_id)
    assert row.status == "sent"
    assert row.recipient_status["gone@x.example"] == "suppressed"
    assert [r["email"] for r in row.to] == ["ann@x.example", "gone@x.example"]  # as asked
    assert msg.txmail.recipients == {
        "ann@x.example": "sent",
        "gone@x.example": "suppressed",
        "cc@x.example": "sent",
    }
    assert msg.txmail.suppressed == {"gone@x.example": "complaint"}


def test_the_list_is_read_once_per_call_however_many_recipients(sandbox, domain):
    suppressions.suppress("gone@x.example")
    messages = [
        TxMessage("Receipt", "Thanks", FROM, [f"user{i}@x.example", "gone@x.example"])
        for i in range(5)
    ] + [TxMessage("News", "Hi", FROM, ["gone@x.example"])]
    with CaptureQueriesContext(connection) as queries:
        sent = mail.get_connection().send_messages(messages)
    assert sent == 5
    assert suppression_selects(queries) == 1
    assert len(sandbox.messages) == 5
    assert Message.objects.filter(status="suppressed").count() == 1


def test_a_send_that_raises_recorded_nothing_though_the_list_was_read(sandbox, domain):
    suppressions.suppress("gone@x.example")
    messages = [
        TxMessage("Receipt", "Thanks", FROM, ["gone@x.example"]),
        TxMessage("Receipt", "Thanks", "nobody@unknown.example", ["ann@x.example"]),
    ]
    with pytest.raises(UnroutableSender):
        mail.get_connection().send_messages(messages[1:])
    assert not Message.objects.exists()
    # A refused message does not stop the others: the suppressed one is recorded.
    with pytest.raises(UnroutableSender):
        mail.get_connection().send_messages(messages)
    assert list(Message.objects.values_list("status", flat=True)) == ["suppressed"]


def test_a_stream_has_its_own_suppressions(sandbox, domain, settings):
    settings.TXMAIL = {**settings.TXMAIL, "BASE_URL": "https://mail.example.com"}
    suppressions.suppress("ann@x.example", stream="broadcast", reason="unsubscribe")
    assert send("ann@x.example")[0] == 1  # transactional: still mailed
    count, msg = send("ann@x.example", stream="broadcast")
    assert count == 0
    assert Message.objects.get(pk=msg.txmail.message_id).stream == "broadcast"


def test_an_unknown_stream_is_refused_before_anything_is_recorded(sandbox, domain):
    with pytest.raises(InvalidMessage, match="newsletters"):
        send("ann@x.example", stream="newsletters")
    assert not Message.objects.exists()


def test_message_suppressed_names_the_recipients_taken_off_and_why(
    sandbox, domain, django_capture_on_commit_callbacks
):
    suppressions.suppress("gone@x.example", reason="hard_bounce")
    heard = []

    def listener(sender, message, recipients, **kwargs):
        heard.append((message.status, recipients))

    message_suppressed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            send("gone@x.example")
            send("ann@x.example", "gone@x.example")
            send("ann@x.example")
    finally:
        message_suppressed.disconnect(listener)
    assert heard == [
        ("suppressed", {"gone@x.example": "hard_bounce"}),
        ("sent", {"gone@x.example": "hard_bounce"}),
    ]


def test_a_retry_of_a_message_whose_recipients_are_now_all_suppressed_sends_nothing(
    sandbox, domain
):
    from txmail_sandbox import Fault

    sandbox.inject(Fault(status=400), times=1)
    with pytest.raises(Exception):  # noqa: B017 - the provider refused it for good
        send("ann@x.example")
    row = Message.objects.get()
    assert row.status == "failed"
    requests_before = len(sandbox.requests)
    suppressions.suppress("ann@x.example", reason="complaint")
    after = resend.retry(row)
    assert after.status == "suppressed"
    assert after.recipient_status == {"ann@x.example": "suppressed"}
    assert len(sandbox.requests) == requests_before


def test_a_resend_leaves_out_recipients_suppressed_since(sandbox, domain):
    send("ann@x.example", "bob@x.example")
    original = Message.objects.get()
    suppressions.suppress("bob@x.example", reason="hard_bounce")
    copy = resend.resend(original, force=True)
    assert copy.status == "sent"
    assert copy.recipient_status == {"bob@x.example": "suppressed"}
    last = sandbox.messages[-1]
    assert [r["email"] for r in last.payload["to"]] == ["ann@x.example"]
    suppressions.suppress("ann@x.example", reason="hard_bounce")
    requests_before = len(sandbox.requests)
    copy = resend.resend(original, force=True)
    assert copy.status == "suppressed"
    assert len(sandbox.requests) == requests_before


def test_no_event_changes_a_suppressed_recipient_or_a_suppressed_message():
    assert states.recipient_after_event("suppressed", "delivered") == "suppressed"
    assert not states.allowed(states.Cause.EVENT, "suppressed", "delivered")


# --- Automatic suppression -----------------------------------------------------------


def event(message, kind, recipient, event_id, **fields):
    return WebhookEvent(
        provider_event_id=event_id,
        type=kind,
        provider_type=fields.pop("provider_type", kind),
        occurred_at=timezone.now(),
        raw={},
        provider_message_id=message.provider_message_id,
        recipient=recipient,
        **fields,
    )


@pytest.fixture
def sent_message(sandbox, domain):
    send("ann@x.example", "bob@x.example")
    return Message.objects.get()


def test_a_hard_bounce_suppresses_and_keeps_the_providers_diagnostic(sent_message):
    ingest(
        "nylas",
        [
            event(
                sent_message,
                "bounced",
                "Ann@x.example",
                "e1",
                bounce_type="MailboxFull",
                reason="552 5.2.2 mailbox full",
            )
        ],
    )
    entry = Suppression.objects.get()
    assert (entry.address, entry.stream, entry.reason) == (
        "ann@x.example",
        "transactional",
        "hard_bounce",
    )
    assert entry.event == DeliveryEvent.objects.get(provider_event_id="e1")
    assert "MailboxFull" in entry.note and "552 5.2.2 mailbox full" in entry.note


def test_a_soft_bounce_never_suppresses(sent_message):
    ingest("nylas", [event(sent_message, "bounced", "ann@x.example", "e1", bounce_type="soft")])
    ingest("nylas", [event(sent_message, "deferred", "ann@x.example", "e2")])
    assert not Suppression.objects.exists()


def test_complaints_and_unsubscribes_suppress_per_suppress_on(sent_message, settings):
    ingest("nylas", [event(sent_message, "complained", "ann@x.example", "e1")])
    assert Suppression.objects.get().reason == "complaint"
    settings.TXMAIL = {
        **settings.TXMAIL,
        "STREAMS": {"transactional": {"SUPPRESS_ON": ["hard_bounce"]}},
    }
    ingest("nylas", [event(sent_message, "complained", "bob@x.example", "e2")])
    assert not suppressions.is_suppressed("bob@x.example")
    ingest("nylas", [event(sent_message, "unsubscribed", "bob@x.example", "e3")])
    assert Suppression.objects.get(address="bob@x.example").reason == "unsubscribe"


def test_a_redelivered_bounce_adds_no_second_entry(sent_message):
    for _ in range(2):
        ingest("nylas", [event(sent_message, "bounced", "ann@x.example", "e1")])
    ingest("nylas", [event(sent_message, "bounced", "ann@x.example", "e2")])
    assert Suppression.objects.count() == 1
    assert Suppression.objects.get().event.provider_event_id == "e1"


def test_streams_setting_is_validated(settings):
    from django_txmail.conf import get_settings

    for streams, problem in [
        ({"broadcast": {}}, "needs the 'transactional' stream"),
        ({"transactional": {"SUPPRESS_ON": ["soft_bounce"]}}, "SUPPRESS_ON"),
        ({"transactional": {"UNSUBSCRIBE": True, "COLOUR": 1}}, "unknown options"),
        ({"transactional": {"PROVIDER": "nope"}}, "not a key"),
    ]:
        settings.TXMAIL = txmail_settings("http://127.0.0.1:9", STREAMS=streams)
        with pytest.raises(ImproperlyConfigured, match=re.escape(problem)):
            get_settings()
