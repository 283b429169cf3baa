"""The Django email backend: ``EMAIL_BACKEND = "django_txmail.backends.EmailBackend"``.

Each message is composed into a provider-neutral form and validated, routed
by its From address, checked against what the provider can carry, recorded
in the outbox, and then delivered. Problems with the message itself raise
before anything is recorded or sent.

With ``TXMAIL["DELIVERY"] = "immediate"`` (the default) the provider is
called during ``send_messages()``. Inside a transaction (``atomic()``,
``ATOMIC_REQUESTS``) the message is recorded in that transaction and handed
to the provider when it commits: a rolled-back transaction sends nothing and
leaves no record, exactly like the data it belonged to. Django's test cases
do not count as a transaction here.

With ``"task"``, ``send_messages()`` only records the messages and enqueues
one Django Task per message when the transaction commits (see ``tasks.py``).

On Django 6.1+ the backend is configured in ``MAILERS`` with OPTIONS:

* ``provider`` — send only through this account of ``TXMAIL["PROVIDERS"]``;
* ``timeout`` — seconds for one provider request (default ``TXMAIL["TIMEOUT"]``).

Unknown OPTIONS raise Django's ``InvalidMailer``.

A backend kept open across calls (``get_connection()`` then ``open()``, or
``with get_connection() as connection:``) reuses its HTTP connections and
the routes it has looked up (``routing.ROUTE_MAX_AGE``): a run of sends
from one address then costs, per message, one INSERT and one commit to
record it and one transaction for its outcome, and nothing else.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.middleware.common import BrokenLinkEmailsMiddleware
from django.utils.log import AdminEmailHandler

from django_txmail import suppressions
from django_txmail.compose import compose
from django_txmail.conf import get_settings
from django_txmail.exceptions import TxMailError
from django_txmail.message import TxMailResult
from django_txmail.models import Message
from django_txmail.outbound_email import OutboundEmail
from django_txmail.outbox import states
from django_txmail.outbox.dispatch import announce_suppressed, delivery_mode, hand_over_all
from django_txmail.outbox.store import Plan, plan, record_all
from django_txmail.routing import ResolvedRoute, Routes
from django_txmail.sending.attempt import Sender
from django_txmail.unsubscribe import add_unsubscribe_headers

logger = logging.getLogger("django_txmail.backends")

#: Connections kept open per provider host by one backend instance.
POOL_SIZE = 16

_reporting = threading.local()

#: Django's error reporting, where it sends mail: ``AdminEmailHandler`` (every 500 and
#: every error record of the "django" logger, to ADMINS) and ``BrokenLinkEmailsMiddleware``
#: (broken links, to MANAGERS).
_ERROR_REPORTING = frozenset(
    method.__code__
    for method in (
        AdminEmailHandler.emit,
        AdminEmailHandler.send_mail,
        BrokenLinkEmailsMiddleware.process_response,
    )
)
SENT_BY_ERROR_REPORTING = "sent by Django's error reporting"


def _from_error_reporting() -> bool:
    """Whether Django's error reporting is sending this mail.

    Django 5.2 and 6.0 send it with ``fail_silently=True``; Django 6.1 with
    ``MAILERS`` does not, so an error of ours would escape the
    ``logger.error()`` of the very request being reported. Asked only once a
    send has failed: it walks the caller's stack.
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _ERROR_REPORTING:
            return True
        frame = frame.f_back
    return False


def _log_dropped(dropped: Sequence[tuple[EmailMessage | None, BaseException]], why: str) -> None:
    """Say what was not sent, and why that was not raised: a log line, never another email.

    Without this line an error report that cannot be sent (from Django's
    default ``SERVER_EMAIL``, say) leaves no trace. A handler that mails log
    records would send one more mail through this backend while the line is
    logged; if that fails too, it is not logged again, so reporting a drop
    cannot loop.
    """
    if getattr(_reporting, "active", False):
        return
    _reporting.active = True
    try:
        for message, error in dropped:
            what = (
                f"{message.subject!r} to {', '.join(message.recipients()) or 'no one'}"
                if message is not None
                else "a recorded message (its row in the outbox says why)"
            )
            logger.error(
                "Not sent: %s. %s: %s (not raised: %s)",
                what,
                type(error).__name__,
                error,
                why,
                exc_info=None if isinstance(error, TxMailError | ImproperlyConfigured) else error,
            )
    finally:
        _reporting.active = False


class EmailBackend(BaseEmailBackend):
    """Send Django email through providers' HTTP APIs, keeping every message in an outbox."""

    def __init__(
        self,
        fail_silently: bool = False,
        *,
        provider: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.fail_silently = fail_silently
        self.provider = provider or ""
        if self.provider:
            get_settings().account(self.provider)  # unknown account: ImproperlyConfigured
        if timeout is not None and (
            not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0
        ):
            raise ImproperlyConfigured(
                "The email backend's timeout must be a positive number of seconds, "
                f"not {timeout!r}."
            )
        self.timeout = timeout
        self.sender: Sender | None = None
        self._lock = threading.RLock()
        self._routes = Routes()  # kept while the backend is open
        # How this call delivers (TXMAIL["DELIVERY"], and whether the caller is in a transaction).
        self._by_task = self._after_commit = False

    @property
    def session(self):
        """The pooled HTTP session while the backend is open, else None."""
        return self.sender.session if self.sender else None

    def open(self) -> bool:
        """Open the pooled HTTP session; return True if this call opened it."""
        with self._lock:
            if self.sender is not None:
                return False
            self.sender = Sender(POOL_SIZE, self.timeout)
            self._routes.clear()
            return True

    def close(self) -> None:
        with self._lock:
            if self.sender is not None:
                self.sender.close()
                self.sender = None
            self._routes.clear()

    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        """Send each message; return how many were accepted for delivery.

        A message that met a transient provider error is still counted: it
        waits in the outbox for its retry and must not be sent again by the
        caller. Its ``msg.txmail.status`` says "queued". So is a message
        scheduled for later, handed to a task, or waiting for the caller's
        transaction to commit.

        All messages are recorded first, then sent — several messages for an
        account whose provider takes batches go in batch requests. A message
        that cannot be recorded or is refused does not stop the others; the
        first such error is raised once they are all done. With
        ``fail_silently`` it is logged on ``django_txmail.backends`` instead;
        so is any error, configuration included, while Django's error
        reporting sends (``AdminEmailHandler``, ``BrokenLinkEmailsMiddleware``):
        reporting one error must not raise another.
        """
        if not email_messages:
            return 0
        with self._lock:
            try:
                # Before anything is opened or recorded: a task backend that cannot take a
                # task raises here.
                self._by_task, self._after_commit = delivery_mode()
                opened = self.open()
                try:
                    return self._send_all(email_messages)
                finally:
                    if opened:
                        self.close()
            except Exception as exc:
                if not _from_error_reporting():
                    raise
                _log_dropped([(m, exc) for m in email_messages], SENT_BY_ERROR_REPORTING)
                return 0

    def _send_all(self, email_messages: Sequence[EmailMessage]) -> int:
        planned: list[tuple[EmailMessage, ResolvedRoute, list[Plan]]] = []
        errors: list[tuple[int, TxMailError]] = []
        unexpected: BaseException | None = None
        composed: list[tuple[int, EmailMessage, OutboundEmail]] = []
        for index, django_message in enumerate(email_messages):
            try:
                composed.append((index, django_message, compose(django_message)))
            except TxMailError as exc:
                errors.append((index, exc))
            except ImproperlyConfigured:
                raise  # the configuration, not this message: nothing of the call is recorded
            except Exception as exc:
                # Record and send what is planned before letting this through.
                unexpected = exc
                break
        # Every recipient of the call against the suppression list: one query.
        found = suppressions.lookup(
            (a.email.lower() for _, _, email in composed for a in email.recipients),
            {email.stream for _, _, email in composed},
        )
        for index, django_message, email in composed:
            try:
                planned.append((django_message, *self._plan(email, found)))
            except TxMailError as exc:
                errors.append((index, exc))
            except ImproperlyConfigured:
                raise
            except Exception as exc:
                unexpected = exc
                break
        errors.sort(key=lambda item: item[0])
        failures = [(email_messages[index], exc) for index, exc in errors]
        recorded, claimed = self._record(planned, failures)
        failures += [(None, exc) for exc in self._deliver_claimed(claimed)]
        if unexpected is not None:
            raise unexpected
        sent = 0
        for django_message, messages, created in recorded:
            django_message.txmail = _result(messages, created)  # type: ignore[attr-defined]
            sent += not all(m.status in states.NOT_SENT for m, _ in messages)
        if failures:
            reporting = _from_error_reporting()
            if not (self.fail_silently or reporting):
                raise failures[0][1]
            _log_dropped(failures, SENT_BY_ERROR_REPORTING if reporting else "fail_silently=True")
        return sent

    def _plan(
        self, email: OutboundEmail, found: dict[tuple[str, str], str]
    ) -> tuple[ResolvedRoute, list[Plan]]:
        """Route, plan and check one composed message (maybe in parts).

        Nothing is written: every part is checked, as the provider will get
        it (without its suppressed recipients), before any part of any
        message of the call is recorded.
        """
        assert self.sender is not None
        suppressed = {
            address: reason
            for address in dict.fromkeys(a.email.lower() for a in email.recipients)
            if (reason := suppressions.reason_for(found, address, email.stream))
        }
        stream = get_settings().stream(email.stream)
        if stream.provider and not (email.provider or self.provider or email.grant_id):
            email.provider = stream.provider
        if stream.unsubscribe:
            add_unsubscribe_headers(
                email,
                stream,
                [a.email for a in email.recipients if a.email.lower() not in suppressed],
            )
        resolved = self._routes.resolve(email, provider=self.provider)
        adapter = self.sender.adapter(resolved.account.name)
        adapter.check_account()
        window = adapter.scheduling_window(resolved.route)
        claim = not (self._by_task or self._after_commit)
        plans = [
            plan(part, window, claim=claim, suppressed=suppressed) for part in adapter.split(email)
        ]
        for planned in plans:
            if planned.status != Message.Status.SUPPRESSED:
                adapter.check(planned.sent, resolved.route)
        return resolved, plans

    def _record(
        self,
        planned: list[tuple[EmailMessage, ResolvedRoute, list[Plan]]],
        errors: list[tuple[EmailMessage | None, TxMailError]],
    ) -> tuple[
        list[tuple[EmailMessage, list[tuple[Message, dict[str, str]]], bool]],
        list[tuple[Message, OutboundEmail]],
    ]:
        """Record every planned message of the call in one transaction.

        Returns each Django message with its rows (and the recipients taken off
        each, with why) and whether any of them is new, and the rows newly recorded
        claimed ("sending") with the email their first attempt sends (the one
        checked, its payload already built): this call sends those. A reused
        idempotency key answers with the existing row, which this call must
        not send (another process may be sending it); a refused part adds its
        Django message and error to ``errors``.
        """
        outcomes = iter(
            record_all([(p, resolved) for _, resolved, plans in planned for p in plans])
        )
        recorded, claimed, new = [], [], []
        taken_off: list[tuple[Message, dict[str, str]]] = []
        for django_message, _, plans in planned:
            messages, refused, created_any = [], None, False
            for planned_part in plans:
                outcome = next(outcomes)
                if isinstance(outcome, TxMailError):
                    refused = refused or outcome
                    continue
                message, created = outcome
                messages.append((message, planned_part.suppressed))
                created_any = created_any or created
                if not created:
                    continue
                new.append(message)
                if planned_part.suppressed:
                    taken_off.append((message, planned_part.suppressed))
                if message.status == Message.Status.SENDING:
                    claimed.append((message, planned_part.sent))
            if refused is not None:
                errors.append((django_message, refused))
            else:
                recorded.append((django_message, messages, created_any))
        # Rows recorded claimed ("sending") are this call's to send (``_deliver_claimed``);
        # the others go to tasks or wait for the caller's commit, all in one hand-over;
        # held ones wait in the outbox until due (``txmail_worker`` sends them).
        hand_over_all(
            [m for m in new if m.status != Message.Status.SUPPRESSED],
            by_task=self._by_task,
            after_commit=self._after_commit,
            timeout=self.timeout,
        )
        announce_suppressed(taken_off)
        return recorded, claimed

    def _deliver_claimed(self, claimed: list[tuple[Message, OutboundEmail]]) -> list[TxMailError]:
        """Send the messages this call recorded as claimed; return the failures."""
        assert self.sender is not None
        # One batch per account and route kind (and grant); sending domains may mix.
        groups: dict[tuple[str, str, str], list[tuple[Message, OutboundEmail]]] = defaultdict(list)
        singles: list[tuple[Message, OutboundEmail]] = []
        errors: list[TxMailError] = []
        for message, email in claimed:
            if self.sender.adapter(message.provider).batches and not message.attachment_count:
                key = (message.provider, message.route, message.route_grant_id)
                groups[key].append((message, email))
            else:
                singles.append((message, email))
        for group in groups.values():
            if len(group) == 1:
                singles += group
                continue
            messages = [message for message, _ in group]
            outcomes = self.sender.attempt_batch(messages, {m.pk: email for m, email in group})
            errors += [outcome for outcome in outcomes if isinstance(outcome, TxMailError)]
        # One request each, in the order recorded; outcomes recorded together per account
        # where the provider replays repeated keys (``attempt_each``).
        by_account: dict[str, list[tuple[Message, OutboundEmail]]] = defaultdict(list)
        for message, email in singles:
            by_account[message.provider].append((message, email))
        for group in by_account.values():
            messages = [message for message, _ in group]
            outcomes = self.sender.attempt_each(messages, {m.pk: email for m, email in group})
            errors += [outcome for outcome in outcomes if isinstance(outcome, TxMailError)]
        return errors + self._deliver_moved([message for message, _ in claimed])

    def _deliver_moved(self, messages: list[Message]) -> list[TxMailError]:
        """One attempt now at the messages that moved to a FAILOVER account during this
        call (their account could not be reached); a further failure waits for a worker."""
        assert self.sender is not None
        errors: list[TxMailError] = []
        for message in messages:
            if message.failover_from and message.status == Message.Status.QUEUED:
                try:
                    self.sender.deliver(message)
                except TxMailError as exc:
                    errors.append(exc)
        return errors


def _result(messages: list[tuple[Message, dict[str, str]]], created: bool) -> TxMailResult:
    """``msg.txmail``: what became of a Django message, recorded as ``messages``
    (each with the recipients taken off it, and why); ``created``: by this call."""
    recipients, suppressed = {}, {}
    for message, taken_off in messages:
        for address in message.recipients:
            reason = taken_off.get(address.lower())
            recipients[address] = states.RECIPIENT_SUPPRESSED if reason else message.status
            if reason:
                suppressed[address] = reason
    first = messages[0][0]
    return TxMailResult(
        message_id=first.pk,
        status=first.status,
        provider=first.provider,
        provider_message_ids=[m.provider_message_id for m, _ in messages if m.provider_message_id],
        recipients=recipients,
        message_ids=[m.pk for m, _ in messages],
        suppressed=suppressed,
        created=created,
        message=first,
    )
