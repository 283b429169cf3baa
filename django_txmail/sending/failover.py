"""FAILOVER: another account for the domain route while one is down, never a double send.

A message moves from its account to one of ``PROVIDERS[name]["FAILOVER"]``
only when no attempt of it may have been accepted: every attempt so far
provably never reached a provider (a refused connection, a connect timeout,
DNS or TLS failure before the request was written) or was refused by the
provider's explicit "not taken" (429, which all three providers answer
before processing anything). A timeout after the request was sent, a reset
connection or a 5xx may mean the provider has the message: such a message
stays on its account and is retried there with the same idempotency key.
The fallback must have a ``SendingDomain`` row for the message's domain
(system check ``txmail.W020`` says when one is missing).

A **circuit breaker** per account, shared by every process through its
``AccountThrottle`` row, decides when an account is *down*: it opens after
``BREAKER["FAILURES"]`` failed requests in a row (transient failures: no
answer, 429, 5xx), and after ``BREAKER["PAUSE"]`` seconds lets one request
through (half-open): a success closes it, a failure opens it again. While it
is open, a message that may move goes to the fallback without trying the
account first. A process reads the breaker at most once per
``READ_EVERY`` seconds, so a healthy account costs no query per message.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from django.core.signals import setting_changed
from django.db.models import F
from django.dispatch import receiver

from django_txmail.conf import ProviderAccount, get_settings
from django_txmail.models import AccountThrottle, Attempt, Message, SendingDomain

#: How often a process reads an account's breaker (seconds).
READ_EVERY = 1.0

_lock = threading.Lock()
#: account → (read at, failures, open until), as this process last read it.
_seen: dict[str, tuple[float, int, float]] = {}


def _read(account: ProviderAccount) -> tuple[int, float]:
    with _lock:
        read_at, failures, open_until = _seen.get(account.name, (-READ_EVERY, 0, 0.0))
    if time.monotonic() - read_at < READ_EVERY:
        return failures, open_until
    row = AccountThrottle.objects.filter(key=account.name).values_list("failures", "open_until")
    failures, open_until = row.first() or (0, 0.0)
    _remember(account, failures, open_until)
    return failures, open_until


def _remember(account: ProviderAccount, failures: int, open_until: float) -> None:
    with _lock:
        _seen[account.name] = (time.monotonic(), failures, open_until)


def is_down(account: ProviderAccount) -> bool:
    """Whether the account's breaker is open. Past its pause one caller, in whatever
    process, is told "not down" and makes the trial request; the others wait for it."""
    flow = account.flow
    if not flow.failover:
        return False  # nothing to fall back on: the breaker changes nothing
    failures, open_until = _read(account)
    now = time.time()
    if failures < flow.breaker_failures:
        return False
    if open_until > now:
        return True
    trial = AccountThrottle.objects.filter(
        key=account.name, open_until=open_until, failures__gte=flow.breaker_failures
    ).update(open_until=now + flow.breaker_pause)
    _remember(account, failures, now + flow.breaker_pause)
    return not trial


def record(account: ProviderAccount, failed: int, succeeded: int) -> None:
    """Count one call's request outcomes: ``failed`` transient failures, ``succeeded``
    answers (accepted or refused for good: the account is up). No query while the
    account is healthy as far as this process knows."""
    flow = account.flow
    if not flow.failover or not (failed or succeeded):
        return
    failures, open_until = _read(account)
    if succeeded and not failed:
        if failures:
            AccountThrottle.objects.filter(key=account.name).update(failures=0, open_until=0.0)
            _remember(account, 0, 0.0)
        return
    if not failed:
        return
    rows = AccountThrottle.objects.filter(key=account.name)
    if not rows.update(failures=F("failures") + failed):
        AccountThrottle.objects.bulk_create(
            [AccountThrottle(key=account.name)], ignore_conflicts=True
        )
        rows.update(failures=F("failures") + failed)
    now = time.time()
    rows.filter(failures__gte=flow.breaker_failures, open_until__lte=now).update(
        open_until=now + flow.breaker_pause
    )
    failures, open_until = rows.values_list("failures", "open_until").first() or (0, 0.0)
    _remember(account, failures, open_until)


def fallback(message: Message) -> str:
    """The FAILOVER account ``message`` may move to now, or "": a domain-route message
    none of whose attempts may have been accepted, and a fallback whose breaker is
    not open and that has the message's sending domain."""
    if message.route != Message.Route.DOMAIN:
        return ""
    config = get_settings()
    candidates = [
        name
        for name in config.account(message.provider).flow.failover
        if name != message.failover_from and not is_down(config.account(name))
    ]
    if not candidates:
        return ""
    if Attempt.objects.filter(message=message, maybe_accepted=True).exists():
        return ""  # an earlier attempt may have reached the provider: never move it
    with_domain = set(
        SendingDomain.objects.filter(
            name=message.route_domain, provider__in=candidates
        ).values_list("provider", flat=True)
    )
    return next((name for name in candidates if name in with_domain), "")


@receiver(setting_changed)
def _forget(*, setting: str, **kwargs: Any) -> None:
    """New settings (tests): forget what was read under the old ones."""
    if setting == "TXMAIL":
        with _lock:
            _seen.clear()
