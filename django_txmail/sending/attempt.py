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

The idempotency key is the message's own, so a retry of a request that
timed out after the provider accepted it is answered from the provider's
idempotency cache instead of sending again. A row left "sending" by a
process that died becomes claimable again once its lease runs out.

A message sent *while* another delivery reports its outcome — from a
``message_sent`` receiver, or from a log handler such as Django's
``AdminEmailHandler`` reacting to our error log — is delivered normally but
does not report its own outcome through signals or error logs, so a failing
receiver or handler cannot send mail about itself forever.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.db import router, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies

from django_txmail.conf import get_settings
from django_txmail.exceptions import DeliveryError, ProviderAPIError, TxMailError
from django_txmail.models import Attempt, Message
from django_txmail.outbox.claims import claim, renew
from django_txmail.outbox.store import load
from django_txmail.providers import (
    Adapter,
    ProviderRequest,
    ProviderResponse,
    Route,
    SendResult,
    load_adapter,
)
from django_txmail.signals import message_sent

logger = logging.getLogger("django_txmail.sending.attempt")


def new_session(pool_size: int = 16) -> requests.Session:
    """A pooled session that reads the environment once, not on every request.

    With ``trust_env`` requests looks up proxy variables and ``~/.netrc`` for
    every call; here proxies are worked out once per provider host (see
    ``_proxies``) and a CA bundle named in the environment is kept.
    """
    session = requests.Session()
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    pool = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", pool)
    session.mount("http://", pool)
    return session


@functools.lru_cache(maxsize=64)
def _proxies(origin: str) -> dict[str, str]:
    """The proxies the environment sets for ``origin`` (honouring NO_PROXY)."""
    return get_environ_proxies(origin)


class Sender:
    """Adapters and one pooled HTTP session, shared by all threads of a sender.

    Adapters are pure and ``requests.Session`` may be shared by threads, so a
    worker's threads (or a task process) reuse connections to the provider.
    """

    def __init__(self, pool_size: int = 16, timeout: float | None = None) -> None:
        self.session = new_session(pool_size)
        self.timeout = timeout
        self._adapters: dict[str, Adapter] = {}
        self._lock = threading.Lock()

    def adapter(self, provider: str) -> Adapter:
        with self._lock:
            if provider not in self._adapters:
                self._adapters[provider] = load_adapter(get_settings().account(provider))
            return self._adapters[provider]

    def deliver(self, message: Message) -> SendResult | None:
        """Claim ``message`` and make one attempt (see :func:`deliver`)."""
        return deliver(message, self.adapter(message.provider), self.session, timeout=self.timeout)

    def attempt(self, message: Message) -> SendResult | None:
        """One attempt at a message this sender has already claimed."""
        return attempt(message, self.adapter(message.provider), self.session, timeout=self.timeout)

    def attempt_batch(self, messages: list[Message]) -> list[SendResult | TxMailError | None]:
        """One attempt at claimed messages of one account, in batch requests."""
        adapter = self.adapter(messages[0].provider)
        return attempt_batch(messages, adapter, self.session, timeout=self.timeout)

    def close(self) -> None:
        self.session.close()


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


def http(
    session: requests.Session, request: ProviderRequest, timeout: float | None
) -> ProviderResponse:
    """Make ``request`` with ``session``; the body stream is closed either way."""
    parts = urlsplit(request.url)
    try:
        response = session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=timeout or get_settings().timeout,
            proxies=_proxies(f"{parts.scheme}://{parts.netloc}"),
        )
    finally:
        request.close()
    return ProviderResponse(response.status_code, dict(response.headers), response.content)


def network_error(provider: str, url: str, exc: requests.RequestException) -> ProviderAPIError:
    host = urlsplit(url).netloc
    if isinstance(exc, requests.Timeout):
        kind, what = "timeout", f"no answer from {host} in time"
    else:
        kind, what = "connection_error", f"cannot reach {host} ({type(exc).__name__})"
    return ProviderAPIError(
        f"{what}; the message stays in the outbox and is retried with the same idempotency key",
        provider=provider,
        error_type=kind,
        transient=True,
    )


def deliver(
    message: Message,
    adapter: Adapter,
    session: requests.Session,
    *,
    timeout: float | None = None,
) -> SendResult | None:
    """One attempt at sending ``message``.

    Returns the result when the provider accepted it, None when it stays in
    the outbox for a later attempt (or another process holds it); raises a
    ``TxMailError`` when it failed for good.
    """
    if not claim(message):
        return None
    return attempt(message, adapter, session, timeout=timeout)


def attempt(
    message: Message,
    adapter: Adapter,
    session: requests.Session,
    *,
    timeout: float | None = None,
) -> SendResult | None:
    """One attempt at a message already claimed by this process (see :func:`deliver`)."""
    with _reporting_outcome() as nested:
        return _attempt(message, adapter, session, timeout, report=not nested)


def _attempt(
    message: Message,
    adapter: Adapter,
    session: requests.Session,
    timeout: float | None,
    *,
    report: bool,
) -> SendResult | None:
    if _lease_half_gone(message) and not renew([message]):
        return None  # taken over by another sender while this one was busy
    started, clock = timezone.now(), time.monotonic()
    outcome: SendResult | TxMailError
    try:
        route = route_of(message)
        request = adapter.build_send(load(message), route)
        outcome = adapter.parse_send(http(session, request, timeout), route)
    except Exception as exc:
        outcome = _as_error(exc, message, adapter, report)
    outcome = _finish(message, started, clock, outcome, report=report)
    if isinstance(outcome, TxMailError):
        raise outcome
    return outcome


def attempt_batch(
    messages: list[Message],
    adapter: Adapter,
    session: requests.Session,
    *,
    timeout: float | None = None,
) -> list[SendResult | TxMailError | None]:
    """One attempt at several claimed messages of one account, in batch requests.

    Returns, per message in order, its result when accepted, None when it
    waits for a retry, or the error it failed with (raised by nobody: one
    refused message must not hide the others' outcome). Each message's
    attempt is recorded on its own, as for a single send.
    """
    with _reporting_outcome() as nested:
        report = not nested
        outcomes: dict = {}
        emails = []
        for message in messages:
            try:
                emails.append(load(message))
            except Exception as exc:
                error = _as_error(exc, message, adapter, report)
                outcomes[message.pk] = _finish(
                    message, timezone.now(), time.monotonic(), error, report=report
                )
        remaining = [
            (message, email)
            for message, email in zip(
                [m for m in messages if m.pk not in outcomes], emails, strict=True
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
            owned = renew(chunk)
            if len(owned) < len(chunk):
                # Some were taken over by another sender: leave them, rebuild the requests.
                for message in chunk:
                    if message.pk not in owned:
                        outcomes[message.pk] = None
                remaining = [(m, e) for m, e in remaining if m.pk not in outcomes]
                batches = []
                continue
            remaining = remaining[count:]
            started, clock = timezone.now(), time.monotonic()
            try:
                results = adapter.parse_batch(http(session, request, timeout), count)
            except Exception as exc:
                results = [_as_error(exc, chunk[0], adapter, report)] * count
            for message, result in zip(chunk, results, strict=True):
                outcomes[message.pk] = _finish(message, started, clock, result, report=report)
        return [outcomes[m.pk] for m in messages]


def _lease_half_gone(message: Message) -> bool:
    lease = timedelta(seconds=get_settings().lease)
    return message.next_attempt_at is None or (message.next_attempt_at - timezone.now() < lease / 2)


def _as_error(exc: Exception, message: Message, adapter: Adapter, report: bool) -> TxMailError:
    """What an exception raised while sending means for the message."""
    if isinstance(exc, TxMailError):
        return exc
    if isinstance(exc, requests.RequestException):
        return network_error(message.provider, adapter.account.api_uri, exc)
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
    entry = Attempt(
        message=message,
        number=message.attempts,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
    )
    if isinstance(outcome, SendResult):
        _accepted(message, entry, outcome, report=report)
        return outcome
    return outcome if _failed(message, entry, outcome, report=report) == "failed" else None


def _accepted(message: Message, entry: Attempt, result: SendResult, *, report: bool) -> None:
    now = timezone.now()
    entry.outcome = Attempt.Outcome.SENT
    entry.http_status = 200
    entry.request_id = result.request_id[:255]
    provider_holds_it = bool(message.options.get("provider_scheduled"))
    status = Message.Status.SCHEDULED if provider_holds_it else Message.Status.SENT
    fields = {
        "provider_message_id": result.provider_message_id[:255],
        "provider_schedule_id": result.schedule_id[:255],
        "provider_request_id": result.request_id[:255],
        "next_attempt_at": None,
        "sent_at": now,
        "updated_at": now,
    }
    with transaction.atomic(using=router.db_for_write(Message)):
        entry.save()
        # A delivery event may have arrived before this answer was recorded; the
        # status only moves on from "sending", never back from "delivered".
        # The provider has it: "sent" replaces anything meaning not sent yet
        # (also a failure recorded by a sender that gave up on this attempt),
        # never what a delivery event said since.
        not_sent = (Message.Status.SENDING, Message.Status.QUEUED, Message.Status.FAILED)
        Message.objects.filter(pk=message.pk).update(
            status=Case(When(status__in=not_sent, then=Value(status)), default=F("status")),
            **fields,
        )
    for name, value in fields.items():
        setattr(message, name, value)
    if message.status in not_sent:
        message.status = status
    if report:
        # send_robust: a failing receiver must not make a sent message look unsent.
        message_sent.send_robust(sender=Message, message=message, result=result)


def _failed(message: Message, entry: Attempt, error: TxMailError, *, report: bool) -> str:
    """Record a failed attempt: "retry", "failed", or "superseded".

    The message changes only while this attempt still owns it (still
    "sending" with this attempt's number): if a delivery event, a cancel or
    another sender moved it meanwhile, only the attempt is recorded
    ("superseded") — a late failure must never undo "delivered" or send a
    message again.
    """
    transient = isinstance(error, ProviderAPIError) and error.transient
    entry.outcome = Attempt.Outcome.TRANSIENT if transient else Attempt.Outcome.PERMANENT
    entry.error_message = str(error)
    entry.error_type = error.error_type[:128]
    if isinstance(error, ProviderAPIError):
        entry.http_status = error.status
        entry.request_id = error.request_id[:255]
    retry = transient and message.attempts < get_settings().max_attempts
    if retry:
        delay = retry_delay(message.attempts, error.retry_after)  # type: ignore[union-attr]
        status, next_attempt_at = Message.Status.QUEUED, timezone.now() + timedelta(seconds=delay)
    else:
        status, next_attempt_at = Message.Status.FAILED, None
    with transaction.atomic(using=router.db_for_write(Message)):
        entry.save()
        owned = Message.objects.filter(
            pk=message.pk, status=Message.Status.SENDING, attempts=message.attempts
        ).update(
            status=status,
            next_attempt_at=next_attempt_at,
            last_error=str(error),
            last_error_type=entry.error_type,
            updated_at=timezone.now(),
        )
    if not owned:
        message.refresh_from_db(fields=["status", "next_attempt_at", "attempts"])
        logger.info(
            "Message %s: attempt %s failed after the message moved on (%s)",
            message.pk,
            entry.number,
            message.status,
        )
        return "superseded"
    message.status, message.next_attempt_at = status, next_attempt_at
    message.last_error, message.last_error_type = str(error), entry.error_type
    if retry:
        logger.log(
            logging.WARNING if report else logging.DEBUG,
            "Message %s: attempt %s failed (%s); next attempt in %.0f s",
            message.pk,
            message.attempts,
            error,
            delay,
        )
        return "retry"
    logger.log(
        logging.ERROR if report else logging.DEBUG,
        "Message %s failed after %s attempt(s): %s",
        message.pk,
        message.attempts,
        error,
    )
    return "failed"
