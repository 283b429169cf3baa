"""Hand a recorded message to its provider, once, and record what happened.

``deliver`` claims the ``Message`` row (see ``claims.py``), rebuilds the
OutboundEmail from the row, makes the HTTP call through a pooled session,
and records the attempt.

* Accepted: "sent", or "scheduled" when the provider holds it for later.
* Transient failure (429, 5xx, timeout, connection error, a request with the
  same key still in flight): back to "queued" with a jittered exponential
  backoff that honours ``Retry-After``, until ``MAX_ATTEMPTS``.
* Permanent failure (other 4xx, unreadable stored content, anything
  unexpected): "failed", and the error is raised.
* The outcome cannot be written (a database error, tried again briefly):
  the row stays "sending" under its lease, for the provider's webhook or a
  worker to reconcile; an acceptance raises ``AcceptedNotRecorded`` (sent:
  do not send again), never the raw database error.

The idempotency key is the message's own, so where the provider honours it
(Nylas) a retry of a request that timed out after the provider accepted it
is answered from the provider's idempotency cache instead of sending again;
a provider without one (Mailtrap, MailerLogic) sends it again. A row left
"sending" by a process that died becomes claimable again once its lease
runs out.

A message sent *while* another delivery reports its outcome — from a
``message_sent`` receiver, or from a log handler such as Django's
``AdminEmailHandler`` reacting to our error log — is delivered normally but
does not report its own outcome through signals or error logs, so a failing
receiver or handler cannot send mail about itself forever.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta

import requests
from django.db import DatabaseError, connections, router, transaction
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.exceptions import (
    AcceptedNotRecorded,
    DeliveryError,
    ProviderAPIError,
    TxMailError,
)
from django_txmail.grants import mark_gone
from django_txmail.models import Attempt, Message
from django_txmail.outbound_email import OutboundEmail
from django_txmail.outbox import bulk, states
from django_txmail.outbox.claims import claim, renew
from django_txmail.outbox.store import load
from django_txmail.providers import (
    Adapter,
    Route,
    SendResult,
    load_adapter,
)
from django_txmail.sending import failover, quota
from django_txmail.sending.transport import NO_ANSWER, Transport
from django_txmail.signals import message_sent

logger = logging.getLogger("django_txmail.sending.attempt")

#: Pauses (seconds) between tries of an outcome write that met a database error.
OUTCOME_WRITE_PAUSES = (0.05, 0.25, 1.0)


class Sender:
    """Adapters and one transport (a pooled HTTP session), shared by the threads of a sender.

    Adapters are pure and ``requests.Session`` may be shared by threads, so a
    worker's threads (or a task process) reuse connections to the provider.
    """

    def __init__(self, pool_size: int = 16, timeout: float | None = None) -> None:
        self.transport = Transport(pool_size, timeout)
        self._adapters: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def adapter(self, provider: str) -> Adapter:
        with self._lock:
            if provider not in self._adapters:
                self._adapters[provider] = load_adapter(get_settings().account(provider))
            return self._adapters[provider]

    @property
    def session(self) -> requests.Session:
        return self.transport.session

    def deliver(self, message: Message) -> SendResult | None:
        """Claim ``message`` and make one attempt (see :func:`deliver`)."""
        return deliver(message, self.adapter(message.provider), self.transport)

    def attempt(
        self, message: Message, email: OutboundEmail | None = None, slot: Slot | None = None
    ) -> SendResult | None:
        """One attempt at a message this sender has already claimed (``slot``: its slot in
        the account's quota, from :meth:`pace`; without it, one is taken now)."""
        return attempt(message, self.adapter(message.provider), self.transport, email, slot)

    def pace(self, messages: list[Message]) -> dict[object, Slot]:
        """A slot in its account's quota for each of claimed messages, in one transaction
        (see :func:`pace`)."""
        accounts: dict[str, list[Message]] = {}
        for message in messages:
            accounts.setdefault(message.provider, []).append(message)
        return pace([(self.adapter(name), group) for name, group in accounts.items()])

    def attempt_batch(
        self, messages: list[Message], emails: dict | None = None
    ) -> list[SendResult | TxMailError | None]:
        """One attempt at claimed messages of one account, in batch requests."""
        adapter = self.adapter(messages[0].provider)
        return attempt_batch(messages, adapter, self.transport, emails)

    def attempt_each(
        self, messages: list[Message], emails: dict | None = None
    ) -> list[SendResult | TxMailError | None]:
        """One attempt at each of claimed messages of one account, a request each."""
        adapter = self.adapter(messages[0].provider)
        return attempt_each(messages, adapter, self.transport, emails)

    def close(self) -> None:
        self.transport.close()


_reporting = threading.local()


@contextmanager
def _reporting_outcome() -> Iterator[bool]:
    """Mark this thread as reporting an outcome; yield whether it already was."""
    depth = getattr(_reporting, "depth", 0)
    _reporting.depth = depth + 1
    try:
        yield depth > 0
    finally:
        _reporting.depth = depth


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before the attempt after ``attempt``: exponential, jittered, capped."""
    first, largest = get_settings().retry_backoff
    ceiling = min(largest, first * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, largest))
    return delay


def route_of(message: Message) -> Route:
    return Route(
        message.route,
        message.provider,
        domain=message.route_domain,
        grant_id=message.route_grant_id,
    )


def deliver(message: Message, adapter: Adapter, transport: Transport) -> SendResult | None:
    """One attempt at sending ``message``.

    Returns the result when the provider accepted it, None when it stays in
    the outbox for a later attempt (or another process holds it); raises a
    ``TxMailError`` when it failed for good.
    """
    if not claim(message):
        return None
    return attempt(message, adapter, transport)


def attempt(
    message: Message,
    adapter: Adapter,
    transport: Transport,
    email: OutboundEmail | None = None,
    slot: Slot | None = None,
) -> SendResult | None:
    """One attempt at a message already claimed by this process (see :func:`deliver`).

    ``email`` is what the process that recorded the message planned to send
    (``outbox.store.plan``), its payload built when it was checked; without
    it, it is rebuilt from the row, identical, as for every retry. ``slot``
    is the message's slot in the account's quota when it was taken with
    others (:func:`pace`); without it, one is taken now.
    """
    with _reporting_outcome() as nested:
        return _attempt(message, adapter, transport, email, slot, report=not nested)


def _attempt(
    message: Message,
    adapter: Adapter,
    transport: Transport,
    email: OutboundEmail | None,
    slot: Slot | None,
    *,
    report: bool,
) -> SendResult | None:
    if _lease_half_gone(message) and not renew([message]):
        return None  # taken over by another sender while this one was busy
    if slot is None:
        slot = pace([(adapter, [message])]).get(message.pk)
    if slot is None or not slot():
        return None  # no slot in the account's quota soon: queued for later
    started, clock = timezone.now(), time.monotonic()
    outcome = _request(message, adapter, transport, email, report=report)
    outcome = _finish(message, started, clock, outcome, report=report)
    if isinstance(outcome, TxMailError):
        raise outcome
    return outcome


def _request(
    message: Message,
    adapter: Adapter,
    transport: Transport,
    email: OutboundEmail | None,
    *,
    report: bool,
) -> SendResult | TxMailError:
    """Send one message's request (``email``, or the message rebuilt from its row); what
    the provider answered, or the error that stands for what went wrong."""
    try:
        route = route_of(message)
        request = adapter.build_send(email or load(message), route)
        return transport.call(adapter, request, adapter.parse_send, route)
    except Exception as exc:
        return _as_error(exc, message, adapter, report)


def attempt_batch(
    messages: list[Message],
    adapter: Adapter,
    transport: Transport,
    emails: dict | None = None,
) -> list[SendResult | TxMailError | None]:
    """One attempt at several claimed messages of one account, in batch requests.

    ``emails`` maps message ids to what the recording process planned to
    send (see :func:`attempt`); the others are rebuilt from their rows.

    Returns, per message in order, its result when accepted, None when it
    waits for a retry, or the error it failed with (raised by nobody: one
    refused message must not hide the others' outcome). Each message's
    attempt is recorded on its own, as for a single send.
    """
    with _reporting_outcome() as nested:
        report = not nested
        outcomes: dict = {}
        planned = emails or {}
        loaded = []
        for message in messages:
            try:
                loaded.append(planned[message.pk] if message.pk in planned else load(message))
            except Exception as exc:
                error = _as_error(exc, message, adapter, report)
                outcomes[message.pk] = _finish(
                    message, timezone.now(), time.monotonic(), error, report=report
                )
        remaining = [
            (message, email)
            for message, email in zip(
                [m for m in messages if m.pk not in outcomes], loaded, strict=True
            )
        ]
        batches: list = []
        while remaining:
            if not batches:  # built once; again only if some were taken over
                try:
                    batches = adapter.build_batches(
                        [email for _, email in remaining], route_of(remaining[0][0])
                    )
                except Exception as exc:
                    for message, _ in remaining:
                        error = _as_error(exc, message, adapter, report)
                        outcomes[message.pk] = _finish(
                            message, timezone.now(), time.monotonic(), error, report=report
                        )
                    break
            request, count = batches.pop(0)
            chunk = [message for message, _ in remaining[:count]]
            # As for one message: a claim with half its lease left cannot have been
            # taken over; an older one is renewed first (those taken over are left).
            stale = any(_lease_half_gone(message) for message in chunk)
            owned = renew(chunk) if stale else {message.pk for message in chunk}
            if len(owned) < len(chunk):
                # Some were taken over by another sender: leave them, rebuild the requests.
                for message in chunk:
                    if message.pk not in owned:
                        outcomes[message.pk] = None
                remaining = [(m, e) for m, e in remaining if m.pk not in outcomes]
                batches = []
                continue
            # One request, one slot in the account's quota, at the chunk's highest lane.
            lane = min(m.priority for m in chunk)
            slots = quota.reserve(adapter.account, lane, 1, get_settings().quota_wait)
            next_free = _on_time(slots, 0, adapter, lane)
            if next_free is not None:  # no slot soon: these wait in the outbox for later
                later = [m for m, _ in remaining]
                _release(later, next_free)
                outcomes.update((m.pk, None) for m in later)
                break
            remaining = remaining[count:]
            started, clock = timezone.now(), time.monotonic()
            try:
                results = transport.call(adapter, request, adapter.parse_batch, count)
            except Exception as exc:
                results = [_as_error(exc, chunk[0], adapter, report)] * count
            took = _ms_since(clock)
            finished = _finish_all(
                [(m, r, started, took) for m, r in zip(chunk, results, strict=True)],
                report=report,
            )
            outcomes.update(zip([m.pk for m in chunk], finished, strict=True))
        return [outcomes[m.pk] for m in messages]


#: Sends to a provider that replays repeated keys (``Adapter.idempotency_window``)
#: have their outcomes recorded together: at most this many per transaction...
OUTCOMES_PER_COMMIT = 100
#: ... and at most this many seconds after the first of them was known.
OUTCOMES_WAIT = 1.0


def attempt_each(
    messages: list[Message],
    adapter: Adapter,
    transport: Transport,
    emails: dict | None = None,
) -> list[SendResult | TxMailError | None]:
    """One attempt at each of several claimed messages of one account, a request each.

    Where the provider's idempotency cache outlasts the lease, the outcomes
    are recorded together, one transaction for up to ``OUTCOMES_PER_COMMIT``
    of them (or ``OUTCOMES_WAIT`` seconds), not one per message: a crash
    before that commit leaves the accepted messages "sending", retried after
    the lease with the same key and answered from the provider's cache, so
    nothing is sent twice. With any other provider each outcome is recorded
    as soon as it is known. Whatever is known is recorded before an error
    (or an interrupt) gets through, and before half a lease has gone.

    ``emails`` as for :func:`attempt_batch`. Returns, per message in order,
    its result, None (waits for a retry, or another sender took it), or the
    error it failed with (raised by nobody, as for a batch).
    """
    with _reporting_outcome() as nested:
        report = not nested
        planned = emails or {}
        together = adapter.replays_within(get_settings().lease)
        outcomes: dict = {}
        pending: list[tuple[Message, SendResult | TxMailError, datetime, int]] = []
        first_known = 0.0
        slots = pace([(adapter, messages)], in_turn=True)
        outcomes.update((m.pk, None) for m in messages if m.pk not in slots)

        def record_pending() -> None:
            finished = _finish_all(pending, report=report)
            outcomes.update(zip([m.pk for m, *_ in pending], finished, strict=True))
            pending.clear()

        try:
            for index, message in enumerate(messages):
                if message.pk in outcomes:
                    continue  # taken over by another sender
                if _lease_half_gone(message):
                    record_pending()
                    rest = [m for m in messages[index:] if m.pk not in outcomes]
                    owned = renew(rest)
                    outcomes.update((m.pk, None) for m in rest if m.pk not in owned)
                    if message.pk not in owned:
                        continue
                if not slots[message.pk]():
                    outcomes[message.pk] = None  # its slot went by and none is free soon
                    continue
                started, clock = timezone.now(), time.monotonic()
                email = planned.get(message.pk)
                outcome = _request(message, adapter, transport, email, report=report)
                if not pending:
                    first_known = time.monotonic()
                pending.append((message, outcome, started, _ms_since(clock)))
                if (
                    not together
                    or len(pending) >= OUTCOMES_PER_COMMIT
                    or time.monotonic() - first_known >= OUTCOMES_WAIT
                ):
                    record_pending()
        finally:
            if pending:
                record_pending()
        return [outcomes[m.pk] for m in messages]


#: Waits for a message's slot in its account's quota; False when the message was given
#: back to the outbox instead (its slot went by and no new one is free soon).
Slot = Callable[[], bool]


def pace(
    groups: list[tuple[Adapter, list[Message]]], *, in_turn: bool = False
) -> dict[object, Slot]:
    """A slot in its account's quota for each message's request, ``groups`` pairing an
    account's adapter with its messages: message id → a :data:`Slot`. One
    transaction for all of them (``quota.reserve_all``), whatever their
    accounts and lanes.

    A slot that went by more than the account's ``late`` ago is replaced by a
    new one. ``in_turn``: one thread sends the messages one after another (an
    immediate call); when one of its slots went by, it and the rest are taken
    again together, so the call keeps one transaction while it keeps up and
    takes one more each time it falls behind.

    Messages with no slot within ``TXMAIL["QUOTA_WAIT"]`` are given back to the
    outbox, due when the account's next slot frees, and left out; so are those
    moved to a FAILOVER account because their account is down (``failover.py``).
    """
    lanes: list[tuple[Adapter, int, list[Message]]] = []
    for adapter, messages in groups:
        if failover.is_down(adapter.account):
            # The account is down: what may move goes to its fallback without trying it.
            messages = [m for m in messages if not _moved_before_trying(m, adapter)]
        by_rank: dict[int, list[Message]] = {}
        for message in messages:
            by_rank.setdefault(message.priority, []).append(message)
        lanes.extend((adapter, rank, by_rank[rank]) for rank in sorted(by_rank))
    lanes.sort(key=lambda lane: lane[1])  # higher lanes take their slots first
    asks = [(adapter.account, rank, len(group)) for adapter, rank, group in lanes]
    paced: dict[object, Slot] = {}
    for (adapter, _rank, group), slots in zip(
        lanes, quota.reserve_all(asks, get_settings().quota_wait), strict=True
    ):
        slots.in_turn = in_turn
        for index, message in enumerate(group[: len(slots.times)]):
            paced[message.pk] = functools.partial(_use_slot, slots, index, message, adapter)
        if len(slots.times) < len(group):
            _release(group[len(slots.times) :], slots.next_free)
    return paced


def _use_slot(slots: quota.Slots, index: int, message: Message, adapter: Adapter) -> bool:
    """Wait for slot ``index``, or for a new one if it went by too long ago; False (the
    message given back to the outbox) when none is free soon."""
    next_free = _on_time(slots, index, adapter, message.priority)
    if next_free is None:
        return True
    _release([message], next_free)
    return False


def _on_time(slots: quota.Slots, index: int, adapter: Adapter, lane: int) -> float | None:
    """Wait for slot ``index`` of ``slots`` (or, when it went by more than its ``late``
    ago, for a new one): None when it has come, else when the account's next
    slot frees (none soon).

    Slots used in turn by one sender (``slots.in_turn``) are taken again
    together when one went by: this one and the rest, in one transaction, so a
    slow call stays within the limit without a query per message while it
    keeps up.
    """
    wait = get_settings().quota_wait
    while index < len(slots.times):
        if slots.wait(index):
            return None
        if slots.in_turn:
            fresh = quota.reserve(adapter.account, lane, len(slots.times) - index, wait)
            slots.times[index:] = fresh.times
            slots.next_free = fresh.next_free
        else:
            slots, index = quota.reserve(adapter.account, lane, 1, wait), 0
    return slots.next_free


def _moved_before_trying(message: Message, adapter: Adapter) -> bool:
    to = failover.fallback(message)
    reason = (
        f"{adapter.account.name} was down (its circuit breaker open) and no attempt may "
        f"have been accepted, so it moved to {to}."
    )
    return bool(to) and states.move(message, to, reason)


def _release(messages: list[Message], next_free: float) -> None:
    """Give ``messages`` back to the outbox, due when the account's quota has room."""
    states.release_until(messages, datetime.fromtimestamp(next_free, tz=UTC))


def _explained(error: TxMailError, retry: bool) -> str:
    """The error as recorded on the message; a request that got no answer says what follows."""
    if retry and getattr(error, "error_type", "") in NO_ANSWER:
        return (
            f"{error}; the message stays in the outbox and is retried with the same idempotency key"
        )
    return str(error)


def _lease_half_gone(message: Message) -> bool:
    lease = timedelta(seconds=get_settings().lease)
    return message.next_attempt_at is None or (message.next_attempt_at - timezone.now() < lease / 2)


def _as_error(exc: Exception, message: Message, adapter: Adapter, report: bool) -> TxMailError:
    """What an exception raised while sending means for the message."""
    if isinstance(exc, ProviderAPIError) and exc.status == 429 and exc.retry_after:
        quota.pause(adapter.account, exc.retry_after)  # for every process, not only this one
    if isinstance(exc, TxMailError):
        return exc
    if isinstance(exc, OSError):
        return DeliveryError(
            f"The stored content of message {message.pk} cannot be read "
            f"({exc.strerror or exc}); it cannot be sent as recorded.",
            error_type="stored_content_missing",
        )
    logger.log(
        logging.ERROR if report else logging.DEBUG,
        "Message %s: unexpected error while sending",
        message.pk,
        exc_info=exc,
    )
    return DeliveryError(
        f"Unexpected error while sending: {type(exc).__name__}: {exc}",
        error_type="internal_error",
    )


def _finish(
    message: Message,
    started,
    clock: float,
    outcome: SendResult | TxMailError,
    *,
    report: bool,
) -> SendResult | TxMailError | None:
    """Record one attempt's outcome: the result, None (retry later) or the error."""
    return _finish_all([(message, outcome, started, _ms_since(clock))], report=report)[0]


def _ms_since(clock: float) -> int:
    return int((time.monotonic() - clock) * 1000)


def _finish_all(
    outcomes: list[tuple[Message, SendResult | TxMailError, datetime, int]],
    *,
    report: bool,
) -> list[SendResult | TxMailError | None]:
    """Record the outcomes of one or more requests in one transaction: per message, its
    outcome, when its request started and how many milliseconds it took.

    Returns, per message, the result, None (retry later, or it moved on), or
    the error it failed with. Signals and logs follow the commit.
    """
    now = timezone.now()
    entries, accepted, failures = [], [], []
    for message, outcome, started, duration in outcomes:
        entry = Attempt(
            message=message,
            number=message.attempts,
            started_at=started,
            duration_ms=duration,
            provider=message.provider,
        )
        entries.append(entry)
        if isinstance(outcome, SendResult):
            entry.outcome, entry.http_status = Attempt.Outcome.SENT, 200
            entry.request_id = outcome.request_id[:255]
            fields = {
                "provider_message_id": outcome.provider_message_id[:255],
                "provider_schedule_id": outcome.schedule_id[:255],
                "provider_request_id": outcome.request_id[:255],
                "next_attempt_at": None,
                "sent_at": now,
                "updated_at": now,
            }
            accepted.append((message, bool(message.options.get("provider_scheduled")), fields))
        else:
            failures.append(_Failure(message, entry, outcome))
    try:
        _record_outcomes(entries, accepted, failures)
    except DatabaseError as exc:
        return [_not_recorded(message, outcome, exc) for message, outcome, _, _ in outcomes]
    _count_for_breakers(entries, failures)
    failed = {failure.message.pk: failure for failure in failures}
    results: list[SendResult | TxMailError | None] = []
    for message, outcome, _, _ in outcomes:  # reported in the order sent
        if isinstance(outcome, SendResult):
            if report:
                # send_robust: a failing receiver must not make a sent message look unsent.
                message_sent.send_robust(sender=Message, message=message, result=outcome)
            results.append(outcome)
        else:
            failure = failed[message.pk]
            results.append(failure.error if failure.report(report) == "failed" else None)
    return results


def _count_for_breakers(entries: list[Attempt], failures: list[_Failure]) -> None:
    """Tell each account's circuit breaker how its requests went (``failover.record``)."""
    transient = {id(failure.entry) for failure in failures if failure.transient}
    counts: dict[str, list[int]] = {}
    for entry in entries:
        failed = id(entry) in transient
        counts.setdefault(entry.provider, [0, 0])[0 if failed else 1] += 1
    config = get_settings()
    for provider, (failed, succeeded) in counts.items():
        failover.record(config.account(provider), failed, succeeded)


def _record_outcomes(entries: list[Attempt], accepted: list, failures: list[_Failure]) -> None:
    """Write one request's outcomes in one transaction; try again briefly on a database error.

    The provider has answered by now, and may have accepted the messages: a
    passing database error (a lock, a dropped connection) must not lose that.
    """
    alias = router.db_for_write(Message)
    # The writes change the instances as they go: a rolled-back try puts them back too,
    # so the next try's guards (the attempt number) and what the caller reports are the rows'.
    instances = [message for message, _, _ in accepted] + [f.message for f in failures]
    before = [(message, dict(message.__dict__)) for message in instances]
    for pause in (*OUTCOME_WRITE_PAUSES, None):
        try:
            connection = connections[alias]
            if accepted and not failures and connection.vendor == "postgresql":
                # One statement writes the attempts and the outcomes: outside a
                # transaction it is its own, one round trip instead of four; inside
                # the caller's it takes a savepoint, so a database error leaves the
                # caller's transaction usable (and this loop can try again).
                alone = connection.get_autocommit()
                with nullcontext() if alone else transaction.atomic(using=alias):
                    states.accept_all(accepted, along=bulk.insert_statement(entries, alias))
                return
            with transaction.atomic(using=alias):
                bulk.insert(entries, alias)
                states.accept_all(accepted)
                for failure in failures:
                    failure.record()
            return
        except DatabaseError:
            for message, state in before:
                message.__dict__.update(state)
            if pause is None:
                raise
            logger.warning("Recording an attempt's outcome failed; trying again", exc_info=True)
            if not connections[alias].in_atomic_block:
                connections[alias].close_if_unusable_or_obsolete()  # reconnect if it dropped
            time.sleep(pause)


def _not_recorded(
    message: Message, outcome: SendResult | TxMailError, exc: DatabaseError
) -> TxMailError | None:
    """What the caller learns of an outcome the database would not take.

    The row stays "sending" under its lease, as if this process had stopped
    mid-send: the provider's webhook, or a worker once the lease runs out,
    reconciles it. An acceptance must not look like a failure (the caller
    would send the message again); a failure is what it was.
    """
    if isinstance(outcome, TxMailError):
        transient = isinstance(outcome, ProviderAPIError) and outcome.transient
        return None if transient else outcome
    logger.error(
        "Message %s: %s accepted it (provider message id %r) but recording that failed",
        message.pk,
        message.provider,
        outcome.provider_message_id,
        exc_info=exc,
    )
    return AcceptedNotRecorded(
        f"{message.provider} accepted message {message.pk} (provider message id "
        f"{outcome.provider_message_id!r}), but the database could not record it "
        f"({type(exc).__name__}: {exc}). Do not send it again: it stays in the outbox "
        "and is reconciled by the provider's webhook, or by a worker once its lease runs out."
    )


class _Failure:
    """A failed attempt: what it means for the message, recorded, then reported.

    The message changes only while this attempt still owns it (still
    "sending" with this attempt's number): if a delivery event, a cancel or
    another sender moved it meanwhile, only the attempt is recorded
    ("superseded") — a late failure must never undo "delivered" or send a
    message again.
    """

    def __init__(self, message: Message, entry: Attempt, error: TxMailError) -> None:
        self.message, self.entry, self.error = message, entry, error
        self.transient = isinstance(error, ProviderAPIError) and error.transient
        entry.outcome = Attempt.Outcome.TRANSIENT if self.transient else Attempt.Outcome.PERMANENT
        entry.error_message = str(error)
        entry.error_type = error.error_type[:128]
        if isinstance(error, ProviderAPIError):
            entry.http_status = error.status
            entry.request_id = error.request_id[:255]
        self.grant_gone = message.route == Message.Route.GRANT and bool(
            getattr(error, "grant_gone", False)
        )
        # The provider provably does not have it: never reached, or refused before
        # processing (429). Only then may the message move to a FAILOVER account.
        entry.maybe_accepted = not (
            isinstance(error, ProviderAPIError) and (not error.reached or error.status == 429)
        )
        self.retry = self.transient and message.attempts < get_settings().max_attempts
        self.delay = 0.0
        self.retry_at = None
        if self.retry:
            self.delay = retry_delay(message.attempts, error.retry_after)  # type: ignore[union-attr]
            self.retry_at = timezone.now() + timedelta(seconds=self.delay)
        self.owned = False

    def record(self) -> None:
        """Inside the outcome's transaction, after the attempt row is written."""
        if self.grant_gone:
            provider = self.message.provider  # the attempt's, whatever the row says after
            self.owned = states.hold(
                self.message, last_error=str(self.error), last_error_type=self.entry.error_type
            )
            mark_gone(provider, self.message.route_grant_id)
            return
        moved_to = ""
        if self.retry and not self.entry.maybe_accepted:
            moved_to = failover.fallback(self.message)
        if moved_to:
            self.retry_at, self.delay = timezone.now(), 0.0
        self.owned = states.fail(
            self.message,
            retry_at=self.retry_at,
            gave_up=self.transient,
            last_error=_explained(self.error, self.retry),
            last_error_type=self.entry.error_type,
            move_to=moved_to,
            move_reason=moved_to
            and (
                f"{self.message.provider} was not reached or did not take it ({self.error}); "
                f"no attempt may have been accepted, so it moved to {moved_to}."
            ),
        )

    def report(self, report: bool) -> str:
        """Log the outcome: "retry", "held", "failed", or "superseded"."""
        message = self.message
        if not self.owned:  # the instance has followed the row (``states``)
            logger.info(
                "Message %s: attempt %s failed after the message moved on (%s)",
                message.pk,
                self.entry.number,
                message.status,
            )
            return "superseded"
        if self.grant_gone:
            logger.warning(
                "Message %s waits: its grant %s is gone (%s)",
                message.pk,
                message.route_grant_id,
                self.error,
            )
            return "held"
        if self.retry:
            logger.log(
                logging.WARNING if report else logging.DEBUG,
                "Message %s: attempt %s failed (%s); next attempt in %.0f s",
                message.pk,
                message.attempts,
                self.error,
                self.delay,
            )
            return "retry"
        logger.log(
            logging.ERROR if report else logging.DEBUG,
            "Message %s failed after %s attempt(s): %s",
            message.pk,
            message.attempts,
            self.error,
        )
        return "failed"
