"""Hand a recorded message to its provider, once, and record what happened.

``deliver`` claims the ``Message`` row with a conditional UPDATE (only one
process can move it from queued to sending), rebuilds the OutboundEmail from
the row, makes the HTTP call through the backend's pooled session, and
records the attempt. Transient failures (429, 5xx, timeouts, connection
errors) put the message back in the outbox with a backoff; permanent ones
mark it failed and raise. The idempotency key is the message's own, so a
retry of a request that timed out after the provider accepted it is
answered from the provider's idempotency cache instead of sending again.
"""

from __future__ import annotations

import json
import logging
import random
import time
from datetime import timedelta

import requests
from django.db.models import F
from django.utils import timezone

from .conf import get_settings
from .exceptions import InvalidMessage, ProviderAPIError
from .models import Attempt, Message
from .outbox import load
from .providers import Adapter, ProviderRequest, ProviderResponse, Route, SendResult
from .signals import message_sent

logger = logging.getLogger("django_txmail.delivery")

#: How long a claimed message may stay "sending" before it counts as abandoned.
SENDING_LEASE = timedelta(minutes=5)
CLAIMABLE = (Message.Status.QUEUED,)


def retry_delay(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential, jittered, capped."""
    first, largest = get_settings().retry_backoff
    ceiling = min(largest, first * 2 ** max(0, attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, largest))
    return delay


def route_of(message: Message) -> Route:
    if message.route == Message.Route.GRANT:
        return Route("grant", message.provider, grant_id=message.grant.grant_id)
    return Route("domain", message.provider, domain=message.sending_domain.name)


def _claim(message: Message) -> bool:
    now = timezone.now()
    claimed = Message.objects.filter(pk=message.pk, status__in=CLAIMABLE).update(
        status=Message.Status.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=now + SENDING_LEASE,
        updated_at=now,
    )
    if claimed:
        message.refresh_from_db(fields=["status", "attempts", "next_attempt_at"])
    return bool(claimed)


def _http(session: requests.Session, request: ProviderRequest, timeout: float) -> ProviderResponse:
    data = json.dumps(request.json_body).encode() if request.body is None else request.body
    try:
        response = session.request(
            request.method, request.url, headers=request.headers, data=data, timeout=timeout
        )
    finally:
        if request.body is not None:
            request.body.close()
    return ProviderResponse(response.status_code, dict(response.headers), response.content)


def _network_error(provider: str, exc: requests.RequestException) -> ProviderAPIError:
    kind = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
    return ProviderAPIError(
        f"{type(exc).__name__} talking to the provider",
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
    the outbox for a later attempt (or another process holds it); raises
    ``ProviderAPIError`` / ``InvalidMessage`` when it failed for good.
    """
    if not _claim(message):
        return None
    started, clock = timezone.now(), time.monotonic()
    error: ProviderAPIError | InvalidMessage | None = None
    result = None
    try:
        route = route_of(message)
        request = adapter.build_send(load(message), route)
        response = _http(session, request, timeout or get_settings().timeout)
        result = adapter.parse_send(response, route)
    except ProviderAPIError as exc:
        error = exc
    except requests.RequestException as exc:
        error = _network_error(message.provider, exc)
    except OSError as exc:
        error = InvalidMessage(
            f"Stored content of message {message.pk} cannot be read ({exc.strerror or exc}); "
            "it cannot be sent again as recorded."
        )
    attempt = Attempt(
        message=message,
        number=message.attempts,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
    )
    if result is not None:
        _accepted(message, attempt, result)
        return result
    assert error is not None
    _failed(message, attempt, error)
    if (
        isinstance(error, ProviderAPIError)
        and error.transient
        and message.status == Message.Status.QUEUED
    ):
        return None
    raise error


def _accepted(message: Message, attempt: Attempt, result: SendResult) -> None:
    now = timezone.now()
    attempt.outcome = Attempt.Outcome.SENT
    attempt.http_status = 200
    attempt.request_id = result.request_id
    attempt.save()
    message.status = (
        Message.Status.SCHEDULED
        if message.send_at and message.send_at > now
        else Message.Status.SENT
    )
    message.provider_message_id = result.provider_message_id
    message.provider_schedule_id = result.schedule_id
    message.provider_request_id = result.request_id
    message.next_attempt_at = None
    message.sent_at = now
    message.save(
        update_fields=[
            "status",
            "provider_message_id",
            "provider_schedule_id",
            "provider_request_id",
            "next_attempt_at",
            "sent_at",
            "updated_at",
        ]
    )
    message_sent.send(sender=Message, message=message, result=result)


def _failed(message: Message, attempt: Attempt, error: ProviderAPIError | InvalidMessage) -> None:
    transient = isinstance(error, ProviderAPIError) and error.transient
    attempt.outcome = Attempt.Outcome.TRANSIENT if transient else Attempt.Outcome.PERMANENT
    attempt.error_message = str(error)
    if isinstance(error, ProviderAPIError):
        attempt.http_status = error.status
        attempt.error_type = error.error_type
        attempt.request_id = error.request_id
    else:
        attempt.error_type = "stored_content_missing"
    attempt.save()
    message.last_error = str(error)
    message.last_error_type = attempt.error_type
    if transient and message.attempts < get_settings().max_attempts:
        message.status = Message.Status.QUEUED
        delay = retry_delay(message.attempts, error.retry_after)  # type: ignore[union-attr]
        message.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        logger.warning(
            "Message %s: attempt %s failed (%s); retrying in %.0f s",
            message.pk,
            message.attempts,
            error,
            delay,
        )
    else:
        message.status = Message.Status.FAILED
        message.next_attempt_at = None
        logger.error("Message %s failed: %s", message.pk, error)
    message.save(
        update_fields=["status", "next_attempt_at", "last_error", "last_error_type", "updated_at"]
    )
