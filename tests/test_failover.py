"""FAILOVER: a message moves only when no attempt may have been accepted; circuit breakers."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core import mail
from django.core.checks import run_checks
from django.db import connection

from django_txmail.conf import get_settings
from django_txmail.models import Attempt, Message, SendingDomain
from django_txmail.sending import failover
from django_txmail.sending.worker import Worker
from tests.conftest import SANDBOX_KEY, use_our_backend
from tests.test_worker import outbox, start_worker, stop, wait_until
from txmail_sandbox import Fault, FaultPlan

pytestmark = pytest.mark.django_db(transaction=True)


def nylas(url: str, **keys) -> dict:
    return {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": url, "SANDBOX": True, **keys}


@pytest.fixture
def accounts(txmail_sandbox, settings):
    """ "primary" on a port of its own (its connections can be refused), falling back on
    "backup"; example.com is set up on both."""
    primary_url = txmail_sandbox.listen()

    def configure(breaker=None, **txmail) -> dict:
        primary = nylas(primary_url, FAILOVER=["backup"])
        if breaker:
            primary["BREAKER"] = breaker
        config = {
            "PROVIDERS": {"primary": primary, "backup": nylas(txmail_sandbox.url)},
            "DEFAULT_PROVIDER": "primary",
            "TIMEOUT": 5,
            **txmail,
        }
        settings.TXMAIL = config
        return config

    use_our_backend(settings)
    SendingDomain.objects.create(name="example.com", provider="primary")
    SendingDomain.objects.create(name="example.com", provider="backup")
    configure()
    configure.primary_url = primary_url
    yield configure
    failover._seen.clear()


def send(subject: str = "Hi") -> Message:
    assert mail.send_mail(subject, "b", "noreply@example.com", ["a@x.example"]) == 1
    return Message.objects.get(subject=subject)


def hosts(txmail_sandbox) -> list[str]:
    return [r.headers.get("Host", "") for r in txmail_sandbox.requests]


def test_a_refused_primary_sends_through_the_fallback_exactly_once_and_says_why(
    accounts, txmail_sandbox
):
    txmail_sandbox.refuse_connections(accounts.primary_url)
    message = send()
    assert (message.status, message.provider, message.failover_from) == (
        "sent",
        "backup",
        "primary",
    )
    assert "primary was not reached" in message.failover_reason
    log = list(message.attempt_log.values_list("provider", "outcome", "maybe_accepted"))
    assert log == [("primary", "transient", False), ("backup", "sent", True)]
    assert len(txmail_sandbox.messages) == 1
    assert txmail_sandbox.messages[0].id == message.provider_message_id


def test_a_timeout_after_the_primary_accepted_never_moves(accounts, txmail_sandbox):
    accounts(TIMEOUT=0.5, RETRY_BACKOFF=[0.05, 0.1])
    txmail_sandbox.inject(Fault(delay_after_accept=2))
    message = send()
    assert (message.status, message.provider, message.failover_from) == ("queued", "primary", "")
    assert message.attempt_log.get().maybe_accepted, "a timeout may mean it was accepted"
    wait_until(lambda: len(txmail_sandbox.requests) == 1, 10, "the held answer to be logged")
    time.sleep(0.1)  # the retry's backoff (at most 0.1 s) runs out
    Worker().run(once=True)
    message.refresh_from_db()
    assert (message.status, message.provider) == ("sent", "primary")
    keys = {r.idempotency_key for r in txmail_sandbox.requests}
    assert keys == {message.idempotency_key}, "retried on the primary with the same key"
    assert set(hosts(txmail_sandbox)) == {accounts.primary_url.removeprefix("http://")}
    assert len(txmail_sandbox.messages) == 1


def test_a_connection_reset_after_the_request_was_written_never_moves(accounts, txmail_sandbox):
    accounts(RETRY_BACKOFF=[0.05, 0.1])
    txmail_sandbox.set_fault_plan(FaultPlan(seed=1, rate=1.0, kinds={"reset": 1}))
    message = send()
    txmail_sandbox.set_fault_plan(None)
    assert (message.status, message.provider) == ("queued", "primary")
    assert message.attempt_log.get().maybe_accepted


def test_a_message_with_an_attempt_that_may_have_been_accepted_never_moves(
    accounts, txmail_sandbox
):
    accounts(RETRY_BACKOFF=[0.05, 0.1])
    txmail_sandbox.inject(Fault(status=503))
    message = send()
    assert message.provider == "primary" and message.attempt_log.get().maybe_accepted
    txmail_sandbox.refuse_connections(accounts.primary_url)
    time.sleep(0.1)  # the retry is due
    Worker().run(once=True)
    message.refresh_from_db()
    assert (message.status, message.provider, message.failover_from) == ("queued", "primary", "")
    assert len(txmail_sandbox.messages) == 0


def test_the_breaker_opens_after_n_failures_and_then_moves_without_trying(accounts, txmail_sandbox):
    accounts(breaker={"FAILURES": 2, "PAUSE": 60})
    txmail_sandbox.refuse_connections(accounts.primary_url)
    send("one")
    send("two")
    third = send("three")
    assert list(third.attempt_log.values_list("provider", flat=True)) == ["backup"]
    assert "circuit breaker" in third.failover_reason
    assert len(txmail_sandbox.messages) == 3
    assert failover.is_down(get_settings().account("primary"))


def test_after_its_pause_the_breaker_lets_one_try_through_and_a_success_closes_it(
    accounts, txmail_sandbox
):
    accounts(breaker={"FAILURES": 1, "PAUSE": 0.5})
    primary = get_settings().account("primary")
    txmail_sandbox.refuse_connections(accounts.primary_url)
    send("one")
    assert failover.is_down(primary)
    txmail_sandbox.accept_connections(accounts.primary_url)
    time.sleep(0.6)  # the pause runs out
    failover._seen.clear()  # as another process that reads the breaker afresh
    message = send("two")
    assert (message.provider, message.failover_from) == ("primary", ""), "the trial request"
    failover._seen.clear()
    assert not failover.is_down(primary), "closed again"


def test_the_half_open_breaker_lets_only_one_caller_through(accounts, txmail_sandbox):
    accounts(breaker={"FAILURES": 1, "PAUSE": 0.5})
    primary = get_settings().account("primary")
    failover.record(primary, failed=1, succeeded=0)
    time.sleep(0.6)
    failover._seen.clear()
    assert not failover.is_down(primary), "the first caller makes the trial request"
    failover._seen.clear()
    assert failover.is_down(primary), "the others wait for it"


def test_a_fallback_without_the_sending_domain_is_a_check_warning(accounts):
    SendingDomain.objects.filter(provider="backup").delete()
    warnings = [w for w in run_checks(databases=["default"]) if w.id == "txmail.W020"]
    assert warnings and "'example.com'" in warnings[0].msg and "'backup'" in warnings[0].msg


def test_without_the_domain_on_the_fallback_nothing_moves(accounts, txmail_sandbox):
    SendingDomain.objects.filter(provider="backup").delete()
    txmail_sandbox.refuse_connections(accounts.primary_url)
    message = send()
    assert (message.status, message.provider) == ("queued", "primary")


def closing_early(port: int) -> FaultPlan:
    """The storm's plan, with the first seed from 7 on that closes the ``port``-th listen()
    port within its first 8 requests."""
    for seed in itertools.count(7):
        plan = FaultPlan(
            seed=seed, rate=0.3, hang=1.0, slow=0.1, refusal_rate=0.02, refusal_seconds=3600
        )
        if any(plan.closes_port(port, index) for index in range(8)):
            return plan
    raise AssertionError("unreachable")


def test_fault_storm_with_failover_configured_ends_exactly_once(accounts, txmail_sandbox):
    count = 600 if connection.vendor == "postgresql" else 200
    config = accounts(
        breaker={"FAILURES": 3, "PAUSE": 0.5},
        TIMEOUT=0.5,
        LEASE=10,
        MAX_ATTEMPTS=40,
        RETRY_BACKOFF=[0.05, 0.5],
    )
    outbox(count)
    # The seed also closes the primary's port after some of its requests; it stays closed
    # until an attempt was refused there (then the test opens it), not for a time. The
    # first seed that closes it within its first 8 requests (the first 16 go there at
    # once, before any failure can open the breaker): the closing happens on every run,
    # whatever number the session's sandbox gave the port.
    plan = closing_early(txmail_sandbox.port_index(accounts.primary_url))
    txmail_sandbox.set_fault_plan(plan)
    workers = [
        start_worker(config, "--concurrency", "8", "--batch", "20", "--interval", "0.1")
        for _ in range(2)
    ]
    try:
        with reopened_once_refused(txmail_sandbox, accounts.primary_url):
            wait_until(
                lambda: Message.objects.filter(status="sent").count() == count,
                240,
                f"all {count} messages to be sent",
            )
    finally:
        for worker in workers:
            stop(worker)
    closings = txmail_sandbox.planned_closings
    txmail_sandbox.set_fault_plan(None)
    assert closings, "the plan closed the primary's port"
    messages = Message.objects.all()
    received = txmail_sandbox.messages
    assert len(received) == count, "the providers hold every message exactly once"
    assert len({r.idempotency_key for r in received}) == count
    by_key = {r.idempotency_key: r.id for r in received}
    assert all(by_key[m.idempotency_key] == m.provider_message_id for m in messages)
    moved = messages.exclude(failover_from="")
    assert moved.exists(), "the refused primary moved some messages"
    # Nothing that may have been accepted by the primary ever moved.
    assert not Attempt.objects.filter(
        message__in=moved, provider="primary", maybe_accepted=True
    ).exists()


@contextmanager
def reopened_once_refused(txmail_sandbox, url: str) -> Iterator[None]:
    """While the block runs, open the port of ``url`` again whenever the fault plan closed
    it and an attempt was refused there since it was last opened."""
    done = threading.Event()

    def refused() -> int:
        return Attempt.objects.filter(
            provider="primary", error_type="connection_error", maybe_accepted=False
        ).count()

    def watch() -> None:
        opened, seen = 0, 0
        try:
            while not done.wait(0.02):
                if len(txmail_sandbox.planned_closings) > opened and refused() > seen:
                    seen = refused()
                    opened = len(txmail_sandbox.planned_closings)
                    txmail_sandbox.accept_connections(url)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def test_events_from_both_accounts_land_on_the_one_message(client, settings):
    from tests.test_webhooks import SECRET, delivered, notification, post, sent_message

    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": nylas("http://127.0.0.1:9", WEBHOOK_SECRET=SECRET, FAILOVER=["backup"]),
            "backup": nylas("http://127.0.0.1:9", WEBHOOK_SECRET=SECRET),
        },
        "DEFAULT_PROVIDER": "nylas",
    }
    message = sent_message(provider="backup", failover_from="nylas")
    first = notification(
        "message.transactional.rejected",
        {"message": {"id": "nylas-never", "metadata": {"txmail_id": str(message.pk)}}},
    )
    assert post(client, first).status_code == 200  # from the first account, naming our id
    assert post(client, delivered(message), url="/txmail/webhooks/backup/").status_code == 200
    assert sorted(message.events.values_list("type", flat=True)) == ["delivered", "rejected"]
