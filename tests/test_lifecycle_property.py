"""The message lifecycle against a model of its documented rules.

Random interleavings of attempt outcomes, lease takeovers, cancels, resends,
retries and provider events (duplicated, reordered, late) drive the real
code — claims, attempts, cancel, resend and retry, webhook ingestion — with
the network replaced by an in-process provider. After every step each
message row must match a small model written from the rules in DESIGN.md
and ``outbox/states.py`` (status, failure origin, attempts, whether it is
due), and every status change must be one ``states.allowed`` permits for the
cause that made it.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import requests
from django.utils import timezone
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from django_txmail.compose import compose
from django_txmail.exceptions import CannotCancel, CannotResend, CannotRetry, TxMailError
from django_txmail.message import TxMessage
from django_txmail.models import DeliveryEvent, Message
from django_txmail.outbox import claims, states
from django_txmail.outbox.cancel import cancel
from django_txmail.outbox.resend import resend, retry
from django_txmail.outbox.states import Cause
from django_txmail.outbox.store import plan, record
from django_txmail.providers import ProviderResponse
from django_txmail.providers.base import WebhookEvent
from django_txmail.routing import resolve
from django_txmail.sending.attempt import Sender
from django_txmail.sending.transport import install_exchange
from django_txmail.tracking.ingest import ingest

pytestmark = pytest.mark.django_db

MAX_ATTEMPTS = 2

# --- The model: the documented rules, written again without states.py ------

#: How much a status says; a failure of ours says nothing (see ``evidence``).
EVIDENCE = {
    "sent": 1,
    "deferred": 2,
    "delivered": 3,
    "failed": 4,
    "rejected": 5,
    "bounced": 6,
    "complained": 7,
}
#: The status each event type reports; the others change no status.
REPORTS = {
    "sent": "sent",
    "deferred": "deferred",
    "delivered": "delivered",
    "opened": "delivered",
    "clicked": "delivered",
    "bounced": "bounced",
    "rejected": "rejected",
    "failed": "failed",
    "complained": "complained",
}
EVENT_TYPES = [*REPORTS, "queued", "unsubscribed", "unknown"]
NOT_SENT_YET = {"queued", "scheduled", "sending"}
#: What the provider answers a send with.
ANSWERS = ["accepted", "transient", "permanent", "timeout_after_accept"]


def evidence(status: str, origin: str) -> int:
    return 0 if status == "failed" and origin != "provider" else EVIDENCE.get(status, 0)


@dataclass
class Model:
    """What one message's row should say. ``due``: None (no next attempt), "now" or "later"."""

    pk: uuid.UUID
    key: str
    status: str
    attempts: int
    due: str | None
    origin: str = ""
    resent: bool = False
    at_provider: bool = False  # the provider has it (it may not have told us)
    id_recorded: bool = False  # our row holds the provider's message id

    def claimable(self) -> bool:
        return self.status == "queued" or (
            self.status in ("scheduled", "sending") and self.due == "now"
        )

    def due_for_worker(self) -> bool:
        return self.status in NOT_SENT_YET and self.due == "now"

    def claim(self) -> None:
        self.status, self.attempts, self.due = "sending", self.attempts + 1, "later"

    def answered(self, attempt: int, answer: str) -> Cause:
        """The provider's ``answer`` to attempt number ``attempt``, recorded; return its cause."""
        if answer in ("accepted", "timeout_after_accept"):
            self.at_provider = True
        if answer == "accepted":
            self.id_recorded, self.due = True, None
            # Accepted: anything not sent yet, our give-up included; never the provider's word.
            if self.status in ("sending", "queued", "cancelled") or (
                self.status == "failed" and self.origin != "provider"
            ):
                self.status, self.origin = "sent", ""
            return Cause.ACCEPT
        retry = answer != "permanent" and attempt < MAX_ATTEMPTS
        cause = Cause.TRANSIENT if retry else Cause.PERMANENT
        if answer != "permanent" and not retry:
            cause = Cause.GIVE_UP
        if self.status == "sending" and self.attempts == attempt:  # still this attempt's
            self.status = "queued" if retry else "failed"
            self.origin = "" if retry else "ours"
            self.due = "later" if retry else None
        return cause

    def hear(self, event_type: str) -> None:
        reported = REPORTS.get(event_type)
        if reported and EVIDENCE[reported] > evidence(self.status, self.origin):
            self.status, self.origin = reported, "provider" if reported == "failed" else ""


# --- The provider: answers sends in process ----------------------------------


class Provider:
    """Answers every send as told; keeps one message id per idempotency key."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.answer = "accepted"
        self.held: dict[str, str] = {}  # idempotency key -> the provider's message id
        self.seen: list[tuple[str, str]] = []  # (key, our row's status when it arrived)

    def take(self, key: str) -> str:
        return self.held.setdefault(key, f"pm-{len(self.held)}")

    def __call__(self, session, request, timeout) -> ProviderResponse:
        key = request.headers["Idempotency-Key"]
        self.seen.append((key, Message.objects.get(idempotency_key=key).status))
        if self.answer == "transient":
            return answer(503, {"error": {"type": "unavailable", "message": "Try later."}})
        if self.answer == "permanent":
            return answer(400, {"error": {"type": "invalid_request", "message": "No."}})
        provider_id = self.take(key)
        if self.answer == "timeout_after_accept":
            raise requests.ReadTimeout("accepted, but the answer never came")
        return answer(200, {"request_id": "req", "data": {"id": provider_id}})


def answer(status: int, body: dict) -> ProviderResponse:
    return ProviderResponse(status, {"Content-Type": "application/json"}, json.dumps(body).encode())


@pytest.fixture
def provider(settings):
    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": {
                "ADAPTER": "nylas",
                "API_KEY": "k",
                "API_URI": "https://api.nylas.invalid",
                "SANDBOX": True,
            }
        },
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
        "LEASE": 300,
        "MAX_ATTEMPTS": MAX_ATTEMPTS,
        "RETRY_BACKOFF": (60, 600),
    }
    fake = Provider()
    previous = install_exchange(fake)
    yield fake
    install_exchange(previous)


def email(**extras):
    return compose(
        TxMessage("Receipt", "Thanks.", "noreply@example.com", ["ann@x.example"], **extras)
    )


def row_of(pk) -> tuple[str, str, int, str | None]:
    """(status, failure origin, attempts, due) as stored."""
    row = Message.objects.values_list(
        "status", "failure_origin", "attempts", "next_attempt_at"
    ).get(pk=pk)
    return row[:3] + (due_of(row[3]),)


def due_of(when: datetime | None) -> str | None:
    return None if when is None else "now" if when <= timezone.now() else "later"


# --- The machine ---------------------------------------------------------------


@dataclass(eq=False)  # two senders' claims on one message are two claims
class Claim:
    """A sender's claim on a message: its copy of the row, with the attempt number it holds."""

    model: Model
    message: Message


@dataclass(eq=False)
class Report:
    """An event the provider will send to its webhook, about one of the model's messages."""

    event: WebhookEvent
    model: Model

    def __repr__(self) -> str:
        event = self.event
        echo = "our id" if event.message_id else "no id of ours"
        return f"<{event.provider_event_id} {event.type} at +{event.occurred_at.second}s, {echo}>"


indices = st.integers(min_value=0, max_value=7)
event_types = st.sampled_from(EVENT_TYPES)
#: Event times: a few seconds apart, some at the same time.
at = st.integers(min_value=0, max_value=5)
EVENT_TIME = datetime(2030, 1, 1, tzinfo=UTC)


class Lifecycle(RuleBasedStateMachine):
    """Up to a few messages, the senders holding claims on them, and the provider's reports.

    Each rule does something to the real rows and the same to the model; the
    invariant compares them after every rule.
    """

    def __init__(self, provider: Provider, sender: Sender) -> None:
        super().__init__()
        DeliveryEvent.objects.all().delete()
        Message.objects.all().delete()
        provider.reset()
        self.provider, self.sender = provider, sender
        self.rows: list[Model] = []
        self.claims: list[Claim] = []
        self.unsent_reports: list[Report] = []
        self.sent_reports: list[Report] = []
        self.stored: set[str] = set()
        self.last: dict = {}
        # The causes each rule applied, per message, with the status in between when known.
        self.steps: dict[uuid.UUID, list[tuple[Cause, tuple[str, str] | None]]] = {}

    def caused(self, model: Model, *chain) -> None:
        self.steps[model.pk] = [*self.steps.get(model.pk, []), *chain]

    def pick(self, rows: list, i: int):
        return rows[i % len(rows)]

    # Senders ---------------------------------------------------------------

    @precondition(lambda self: len(self.rows) < 3)
    @rule(kind=st.sampled_from(["queued", "claimed", "scheduled"]))
    def record(self, kind):
        later = {"send_at": timezone.now() + timedelta(days=1)} if kind == "scheduled" else {}
        outbound = email(**later)
        message, _ = record(plan(outbound, claim=kind == "claimed"), resolve(outbound))
        status = {"queued": "queued", "claimed": "sending", "scheduled": "scheduled"}[kind]
        model = Model(
            message.pk,
            message.idempotency_key,
            status,
            attempts=int(kind == "claimed"),
            due=None if kind == "queued" else "later",
        )
        self.rows.append(model)
        self.caused(model, (Cause.RECORD, None))
        if kind == "claimed":
            self.claims.append(Claim(model, message))

    @precondition(lambda self: self.rows and len(self.claims) < 4)
    @rule(i=indices)
    def claim(self, i):
        self.take(self.pick(self.rows, i))

    def take(self, model: Model) -> Claim | None:
        """A sender claims the message; the claim, if it got it."""
        message = Message.objects.get(pk=model.pk)
        expected = model.claimable()
        assert claims.claim(message) is expected
        if not expected:
            return None
        model.claim()
        self.claims.append(Claim(model, message))
        self.caused(model, (Cause.CLAIM, None))
        return self.claims[-1]

    @precondition(lambda self: len(self.claims) < 4 and any(m.due == "now" for m in self.rows))
    @rule()
    def worker_claims_what_is_due(self):
        for model in self.rows:  # abandoned too often: given up first
            if model.status == "sending" and model.due == "now" and model.attempts >= MAX_ATTEMPTS:
                model.status, model.origin, model.due = "failed", "ours", None
                self.caused(model, (Cause.GIVE_UP, None))
        expected = [model for model in self.rows if model.due_for_worker()]
        taken = claims.claim_batch(10)
        assert {m.pk for m in taken} == {model.pk for model in expected}
        by_pk = {model.pk: model for model in expected}
        for message in taken:
            by_pk[message.pk].claim()
            self.claims.append(Claim(by_pk[message.pk], message))
            self.caused(by_pk[message.pk], (Cause.CLAIM, None))

    @precondition(lambda self: self.claims)
    @rule(j=indices, newer=st.sampled_from([None, *ANSWERS]), late=st.sampled_from(ANSWERS))
    def late_answer_after_a_takeover(self, j, newer, late):
        """A sender outlives its lease and another takes the message over (and gets the
        provider's answer ``newer``, or None: is still waiting for it); then the first
        sender's answer arrives."""
        first = self.claims.pop(j % len(self.claims))
        model = first.model
        Message.objects.filter(pk=model.pk, status="sending").update(
            next_attempt_at=timezone.now() - timedelta(seconds=1)
        )
        if model.status == "sending":
            model.due = "now"
        second = self.take(model)
        self.rows_follow_the_rules()
        if second and newer:
            self.claims.remove(second)
            self.answer(second, newer)
            self.rows_follow_the_rules()
        self.answer(first, late)

    @precondition(lambda self: self.rows)
    @rule(i=indices)
    def time_passes(self, i):
        """Whatever the message waits for (a lease, a retry, its send_at) is due now."""
        model = self.pick(self.rows, i)
        Message.objects.filter(pk=model.pk, next_attempt_at__isnull=False).update(
            next_attempt_at=timezone.now() - timedelta(hours=1)
        )
        if model.due == "later":
            model.due = "now"

    @precondition(lambda self: self.claims)
    @rule(j=indices, reply=st.sampled_from(ANSWERS), slow=st.booleans())
    def attempt(self, j, reply, slow):
        """A sender makes its attempt; ``slow``: half its lease went by first."""
        self.answer(self.claims.pop(j % len(self.claims)), reply, slow=slow)

    def answer(self, claim: Claim, reply: str, *, slow: bool = False) -> None:
        """The attempt of ``claim``, answered by the provider with ``reply``."""
        model, message = claim.model, claim.message
        requests_before = len(self.provider.seen)
        if slow:
            message.next_attempt_at = timezone.now() - timedelta(seconds=1)
            if not (model.status == "sending" and model.attempts == message.attempts):
                assert self.sender.attempt(message) is None  # taken over: no request
                assert len(self.provider.seen) == requests_before
                return
            model.due = "later"  # the lease is renewed
        self.provider.answer = reply
        number = message.attempts  # the sender re-reads it when its outcome is superseded
        owned = model.status == "sending" and model.attempts == number
        try:
            self.sender.attempt(message)
            raised = False
        except TxMailError:
            raised = True
        # Raised only when it ends failed: refused for good, or the last attempt.
        ends_failed = reply == "permanent" or (reply != "accepted" and number >= MAX_ATTEMPTS)
        assert raised == (owned and ends_failed)
        assert len(self.provider.seen) == requests_before + 1
        self.caused(model, (model.answered(number, reply), None))

    @precondition(lambda self: self.claims)
    @rule(j=indices, reached_provider=st.booleans())
    def sender_dies(self, j, reached_provider):
        """The sending process stops mid-request; its claim stays until the lease runs out."""
        model = self.claims.pop(j % len(self.claims)).model
        if reached_provider:
            self.provider.take(model.key)
            model.at_provider = True

    @precondition(lambda self: self.claims)
    @rule(j=indices)
    def sender_gives_back(self, j):
        claim = self.claims.pop(j % len(self.claims))
        model = claim.model
        owned = model.status == "sending" and model.attempts == claim.message.attempts
        assert states.release(claim.message) is owned
        if owned:
            model.status, model.attempts, model.due = "queued", model.attempts - 1, "now"
            self.caused(model, (Cause.RELEASE, None))

    # Support ---------------------------------------------------------------

    @precondition(lambda self: self.rows)
    @rule(i=indices)
    def cancel(self, i):
        model = self.pick(self.rows, i)
        expected = model.status in ("queued", "scheduled")
        try:
            cancel(Message.objects.get(pk=model.pk))
            cancelled = True
        except CannotCancel:
            cancelled = False
        assert cancelled is expected
        if expected:
            model.status, model.due = "cancelled", None
            self.caused(model, (Cause.CANCEL, None))

    @precondition(lambda self: self.rows)
    @rule(i=indices, reply=st.sampled_from(ANSWERS))
    def retry_now(self, i, reply):
        model = self.pick(self.rows, i)
        expected = (model.status == "failed" and model.origin != "provider") or (
            model.status == "queued" and model.due is not None
        )
        self.provider.answer = reply
        try:
            retry(Message.objects.get(pk=model.pk), sender=self.sender)
        except CannotRetry:
            assert not expected
            return
        assert expected
        key, seen = self.provider.seen[-1]
        assert key == model.key
        model.status, model.origin = "queued", ""
        model.claim()
        cause = model.answered(model.attempts, reply)
        self.caused(
            model, (Cause.RETRY_NOW, ("queued", "")), (Cause.CLAIM, (seen, "")), (cause, None)
        )

    @precondition(lambda self: self.rows and len(self.rows) < 5)
    @rule(i=indices, reply=st.sampled_from(ANSWERS), force=st.booleans())
    def resend(self, i, reply, force):
        original = self.pick(self.rows, i)
        refused = original.status in NOT_SENT_YET or (
            not force and (original.status == "cancelled" or original.resent)
        )
        self.provider.answer = reply
        try:
            copy = resend(Message.objects.get(pk=original.pk), force=force, sender=self.sender)
        except CannotResend:
            assert refused
            return
        assert not refused and copy.resent_from_id == original.pk
        original.resent = True
        model = Model(copy.pk, copy.idempotency_key, "sending", attempts=1, due="later")
        self.rows.append(model)
        key, seen = self.provider.seen[-1]
        assert key == model.key
        cause = model.answered(1, reply)
        self.caused(model, (Cause.RECORD, (seen, "")), (cause, None))

    # The provider's webhooks -------------------------------------------------

    @precondition(lambda self: any(model.at_provider for model in self.rows))
    @rule(
        i=indices,
        reports=st.lists(st.tuples(event_types, st.booleans(), at), min_size=1, max_size=3),
    )
    def provider_reports(self, i, reports):
        """The provider has something to say: (event type, whether it echoes our message
        id, when it happened) each; its webhooks arrive later (see ``webhook``)."""
        model = self.pick([m for m in self.rows if m.at_provider], i)
        for kind, echoes_our_id, seconds in reports:
            number = len(self.unsent_reports) + len(self.sent_reports)
            event = WebhookEvent(
                provider_event_id=f"ev-{number:03d}",
                type=kind,
                provider_type=kind,
                occurred_at=EVENT_TIME + timedelta(seconds=seconds),
                raw={"number": number},
                provider_message_id=self.provider.held[model.key],
                message_id=str(model.pk) if echoes_our_id else "",
            )
            self.unsent_reports.append(Report(event, model))

    @precondition(lambda self: self.unsent_reports or self.sent_reports)
    @rule(data=st.data())
    def webhook(self, data):
        """Some reports arrive, in any order, some again (within the request or later)."""
        fresh = []
        if self.unsent_reports:
            reports = st.sampled_from(self.unsent_reports)
            fresh += data.draw(st.lists(reports, min_size=1, unique_by=id))
        if self.sent_reports:
            fresh += data.draw(st.lists(st.sampled_from(self.sent_reports), max_size=2))
        if not fresh:
            return
        batch = data.draw(st.permutations(fresh + fresh[: data.draw(st.integers(0, 1))]))
        for report in fresh:
            if report in self.unsent_reports:
                self.unsent_reports.remove(report)
                self.sent_reports.append(report)
        once = {report.event.provider_event_id: report for report in reversed(batch)}
        new = sorted(
            (report for key, report in once.items() if key not in self.stored),
            key=lambda report: (report.event.occurred_at, report.event.provider_event_id),
        )
        matched = [report for report in new if report.event.message_id or report.model.id_recorded]
        result = ingest("nylas", [report.event for report in batch])
        assert (result.stored, result.unmatched) == (len(new), len(new) - len(matched))
        self.stored.update(report.event.provider_event_id for report in new)
        for report in matched:
            report.model.hear(report.event.type)
            self.steps.setdefault(report.model.pk, [(Cause.EVENT, None)])

    # After every step ------------------------------------------------------------

    @invariant()
    def rows_follow_the_rules(self):
        stored = {
            pk: (status, origin, attempts, due_of(when))
            for pk, status, origin, attempts, when in Message.objects.values_list(
                "pk", "status", "failure_origin", "attempts", "next_attempt_at"
            )
        }
        expected = {m.pk: (m.status, m.origin, m.attempts, m.due) for m in self.rows}
        assert stored == expected
        for pk, now in stored.items():
            before = self.last.get(pk, (states.NEW, ""))
            chain = self.steps.pop(pk, [])
            assert chain or now[:2] == before[:2], f"{before} -> {now} with no cause"
            for cause, between in chain:
                after = between or now[:2]
                assert states.allowed(cause, before[0], after[0], before_origin=before[1]), (
                    f"{cause}: {before[:2]} -> {after}, outside the table"
                )
                before = after
        self.last = stored


# 100 runs of 40 steps: about a minute on a quiet machine, several on a busy one;
# the bound is for a run that hangs, not a pace.
@pytest.mark.timeout(900)
def test_every_interleaving_ends_where_the_rules_say(provider, domain, caplog, monkeypatch):
    caplog.set_level(logging.CRITICAL, logger="django_txmail")  # thousands of failed attempts
    # Bounces, complaints and unsubscribes would put the one recipient on the suppression
    # list, which this model of statuses leaves out (tests/test_suppressions.py covers it).
    monkeypatch.setattr("django_txmail.tracking.ingest.from_events", lambda events: [])
    sender = Sender(pool_size=1)
    try:
        run_state_machine_as_test(
            lambda: Lifecycle(provider, sender),
            settings=settings(
                max_examples=100,
                stateful_step_count=40,
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        sender.close()


# --- The transitions that matter most, one by one ------------------------------------


def report(kind: str, message: Message, number: int, seconds: int = 0) -> WebhookEvent:
    """A provider event about ``message`` that echoes our message id."""
    return WebhookEvent(
        provider_event_id=f"ev-{number}",
        type=kind,
        provider_type=kind,
        occurred_at=EVENT_TIME + timedelta(seconds=seconds),
        raw={},
        message_id=str(message.pk),
    )


def sent_message(provider: Provider) -> Message:
    message, _ = record(plan(outbound := email(), claim=True), resolve(outbound))
    provider.answer = "accepted"
    Sender().attempt(message)
    return message


def test_a_message_given_up_on_that_the_provider_delivers_ends_delivered(
    provider, domain, settings
):
    settings.TXMAIL = settings.TXMAIL | {"MAX_ATTEMPTS": 1}
    message, _ = record(plan(outbound := email(), claim=True), resolve(outbound))
    provider.answer = "timeout_after_accept"
    with pytest.raises(TxMailError):
        Sender().attempt(message)
    assert row_of(message.pk)[:2] == ("failed", "ours")
    ingest("nylas", [report("delivered", message, 1)])
    assert row_of(message.pk)[:2] == ("delivered", "")


def test_a_late_sent_after_delivered_stays_delivered(provider, domain):
    message = sent_message(provider)
    ingest("nylas", [report("delivered", message, 1, seconds=5)])
    ingest("nylas", [report("sent", message, 2, seconds=1)])
    assert row_of(message.pk)[:2] == ("delivered", "")


def test_a_provider_failure_then_a_late_delivered_stays_failed(provider, domain):
    message = sent_message(provider)
    ingest("nylas", [report("failed", message, 1)])
    ingest("nylas", [report("delivered", message, 2, seconds=5)])
    assert row_of(message.pk)[:2] == ("failed", "provider")
    with pytest.raises(CannotRetry):
        retry(Message.objects.get(pk=message.pk))


def test_a_provider_failure_reported_before_the_accept_is_not_undone_by_it(provider, domain):
    message, _ = record(plan(outbound := email(), claim=True), resolve(outbound))
    ingest("nylas", [report("failed", message, 1)])  # the webhook beat the HTTP answer
    provider.answer = "accepted"
    Sender().attempt(message)
    assert row_of(message.pk)[:2] == ("failed", "provider")


def test_the_table_never_lets_an_accept_undo_the_providers_failure():
    assert states.allowed(Cause.ACCEPT, "failed", "sent", before_origin="ours")
    assert not states.allowed(Cause.ACCEPT, "failed", "sent", before_origin="provider")


@pytest.mark.parametrize("first", ["claim", "cancel"])
def test_a_cancel_racing_a_claim_exactly_one_wins(provider, domain, first):
    message, _ = record(plan(outbound := email()), resolve(outbound))
    # Both read the row while it was queued.
    sender_copy, support_copy = (
        Message.objects.get(pk=message.pk),
        Message.objects.get(pk=message.pk),
    )
    race = {
        "claim": lambda: claims.claim(sender_copy),
        "cancel": lambda: states.cancel(support_copy),
    }
    second = "cancel" if first == "claim" else "claim"
    assert race[first]() is True
    assert race[second]() is False
    assert row_of(message.pk)[0] == {"claim": "sending", "cancel": "cancelled"}[first]
    if first == "claim":
        with pytest.raises(CannotCancel):
            cancel(Message.objects.get(pk=message.pk))


def test_a_sender_taken_over_after_its_lease_does_not_undo_the_newer_answer(provider, domain):
    # The first sender, attempt 1.
    message, _ = record(plan(outbound := email(), claim=True), resolve(outbound))
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(1))
    newer = Message.objects.get(pk=message.pk)
    assert claims.claim(newer)  # attempt 2
    provider.answer = "accepted"
    Sender().attempt(newer)
    provider.answer = "permanent"
    assert Sender().attempt(message) is None  # late, and superseded: not raised either
    assert row_of(message.pk)[:3] == ("sent", "", 2)


def test_reports_of_failure_end_in_one_status_whatever_order_they_arrive_in(provider, domain):
    ends = []
    for order in (["bounced", "failed"], ["failed", "bounced"]):
        message = sent_message(provider)
        seconds = {"bounced": 1, "failed": 2}
        for number, kind in enumerate(order):
            ingest("nylas", [report(kind, message, f"{message.pk}-{number}", seconds[kind])])
        ends.append(row_of(message.pk)[0])
    assert ends[0] == ends[1]
