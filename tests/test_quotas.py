"""Sending quotas every process shares (RATE_LIMIT), and a provider's 429 pausing them all."""

from __future__ import annotations

import threading

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection

from django_txmail.conf import get_settings
from django_txmail.message import TxMessage
from django_txmail.models import Message
from django_txmail.sending import quota
from tests.conftest import SANDBOX_KEY, txmail_settings, use_our_backend
from tests.test_worker import outbox, start_worker, stop, wait_until
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db(transaction=True)

#: Between a slot's time and its request reaching the sandbox there is the sender's
#: wake-up and the request itself, longer under load: a window this much shorter than the
#: limit's second absorbs that jitter (the slots themselves are never closer than 50 ms).
JITTER = 0.25


def limited(txmail_sandbox, settings, rate: str, **txmail) -> dict:
    config = txmail_settings(txmail_sandbox.url, account={"RATE_LIMIT": rate}, **txmail)
    settings.TXMAIL = config
    use_our_backend(settings)
    return config


def most_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


def send_times(txmail_sandbox) -> list[float]:
    return [r.received_at for r in txmail_sandbox.requests if r.method == "POST"]


def test_slots_are_spread_evenly_and_shared_by_every_reservation(txmail_sandbox, settings):
    limited(txmail_sandbox, settings, "2/s")
    account = get_settings().account("nylas")
    first = quota.reserve(account, 1, 5, wait=10)
    second = quota.reserve(account, 1, 5, wait=10)  # well before the first's last slot
    times = first.times + second.times
    assert len(times) == 10
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert gaps == pytest.approx([0.5] * 9), "one slot every 1/2 s, in order"


def test_no_slot_beyond_the_wait_and_the_rest_says_when_the_next_frees(txmail_sandbox, settings):
    limited(txmail_sandbox, settings, "2/h")
    account = get_settings().account("nylas")
    slots = quota.reserve(account, 1, 3, wait=1)
    assert len(slots.times) == 1
    assert slots.next_free == pytest.approx(slots.times[0] + 1800)
    assert quota.reserve(account, 1, 1, wait=1).times == [], "the budget is spent for 30 min"


def test_a_list_of_limits_spaces_slots_at_the_strictest(txmail_sandbox, settings):
    limited(txmail_sandbox, settings, ["100/s", "60/m"])
    slots = quota.reserve(get_settings().account("nylas"), 1, 3, wait=5)
    assert slots.times[1] - slots.times[0] == pytest.approx(1.0)


def test_a_lane_share_keeps_low_from_taking_the_whole_budget(txmail_sandbox, settings):
    config = txmail_settings(
        txmail_sandbox.url, account={"RATE_LIMIT": "10/s", "LANE_SHARES": {"low": 0.5}}
    )
    settings.TXMAIL = config
    account = get_settings().account("nylas")
    low = quota.reserve(account, 2, 4, wait=5)
    assert low.times[1] - low.times[0] == pytest.approx(0.2), "low gets half of 10/s"
    high = quota.reserve(account, 0, 2, wait=5)
    assert high.times[0] == pytest.approx(low.times[-1] + 0.1), "high follows at the full rate"
    assert high.times[1] - high.times[0] == pytest.approx(0.1)


def test_an_immediate_send_over_budget_stays_queued_and_is_not_sent_early(
    txmail_sandbox, settings, domain
):
    limited(txmail_sandbox, settings, "1/h")
    messages = [TxMessage(f"m{i}", "b", "noreply@example.com", ["a@x.example"]) for i in range(3)]
    assert mail.get_connection().send_messages(messages) == 3, "counted: none is dropped"
    assert [m.txmail.status for m in messages] == ["sent", "queued", "queued"]
    assert len(txmail_sandbox.requests) == 1
    waiting = Message.objects.filter(status="queued")
    assert waiting.count() == 2 and set(waiting.values_list("attempts", flat=True)) == {0}
    call_command("txmail_worker", "--once")
    assert len(txmail_sandbox.requests) == 1, "not due before the budget allows"


def test_an_account_without_a_limit_makes_no_quota_query_per_message(
    sandbox, domain, django_assert_max_num_queries
):
    messages = [TxMessage(f"m{i}", "b", "noreply@example.com", ["a@x.example"]) for i in range(20)]
    mail.get_connection().send_messages(messages[:1])  # reads the account's pause once
    with django_assert_max_num_queries(12):
        mail.get_connection().send_messages(messages[1:])
    assert len(sandbox.messages) == 20


def test_a_429_with_retry_after_pauses_the_account_for_every_process(sandbox, settings, domain):
    sandbox.inject(Fault(status=429, retry_after=2))
    TxMessage("first", "b", "noreply@example.com", ["a@x.example"]).send()
    refused = sandbox.requests[0]
    assert refused.status == 429
    outbox(3)
    # A worker in another process learns of the pause from the database.
    worker = start_worker(settings.TXMAIL, "--concurrency", "2", "--interval", "0.1")
    try:
        wait_until(lambda: Message.objects.filter(status="sent").count() == 4, 60, "all to be sent")
    finally:
        stop(worker)
    later = [r.received_at for r in sandbox.requests[1:]]
    assert len(later) == 4
    assert min(later) - refused.received_at >= 2.0, "nothing went during the pause"


def test_the_sandbox_answers_429_with_retry_after_over_an_accounts_limit(sandbox, domain):
    sandbox.set_rate_limit(SANDBOX_KEY, 2, 60)
    for i in range(3):
        TxMessage(f"m{i}", "b", "noreply@example.com", ["a@x.example"]).send()
    statuses = [r.status for r in sandbox.requests]
    assert statuses == [200, 200, 429]
    waiting = Message.objects.get(status="queued", attempts=1)
    # Retry-After (the ~60 s until the window has room) sets the retry's time.
    assert (waiting.next_attempt_at - waiting.updated_at).total_seconds() >= 50


def test_two_workers_and_an_immediate_sender_share_one_budget(txmail_sandbox, settings, domain):
    """200 messages at RATE_LIMIT 20/s: no second of the provider's log holds more than 20
    requests (within JITTER), and each message is sent exactly once."""
    config = limited(txmail_sandbox, settings, "20/s", LEASE=30)
    outbox(150)
    workers = [
        start_worker(config, "--concurrency", "4", "--batch", "8", "--interval", "0.1")
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def immediate() -> None:
        try:
            for start in range(0, 50, 10):
                batch = [
                    TxMessage(f"now{i}", "b", "noreply@example.com", [f"n{i}@x.example"])
                    for i in range(start, start + 10)
                ]
                mail.get_connection().send_messages(batch)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)
        finally:
            connection.close()

    sender = threading.Thread(target=immediate)
    sender.start()
    try:
        sender.join(120)
        wait_until(
            lambda: Message.objects.filter(status="sent").count() == 200, 120, "all 200 sent"
        )
    finally:
        for worker in workers:
            stop(worker)
    assert not errors
    times = send_times(txmail_sandbox)
    assert len(times) == 200, "one request per message, none refused, none repeated"
    assert most_in_any_window(times, 1.0 - JITTER) <= 20
    keys = [r.idempotency_key for r in txmail_sandbox.requests]
    assert len(set(keys)) == 200
    assert len(txmail_sandbox.messages) == 200
    print(f"most requests in any 1 s: {most_in_any_window(times, 1.0)}")


def test_the_quota_costs_an_immediate_call_the_same_few_queries_whatever_its_size(
    txmail_sandbox, settings, domain, monkeypatch
):
    from django.test.utils import CaptureQueriesContext

    from django_txmail.sending import attempt

    # Outcomes are committed per 100 (not also after a second): counts independent of speed.
    monkeypatch.setattr(attempt, "OUTCOMES_WAIT", 3600.0)
    # The call keeps up with its slots however busy the machine (a call that falls behind
    # takes the rest again: test_an_immediate_call_that_falls_behind_...).
    monkeypatch.setattr(quota, "time", FakeClock())

    def queries(rate: str | None, count: int) -> int:
        account = {"RATE_LIMIT": rate} if rate else {}
        settings.TXMAIL = txmail_settings(txmail_sandbox.url, account=account)
        use_our_backend(settings)
        mail.get_connection().send_messages(
            [TxMessage("w", "b", "noreply@example.com", ["a@x.example"])]
        )
        batch = [
            TxMessage(f"m{i}", "b", "noreply@example.com", ["a@x.example"]) for i in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            mail.get_connection().send_messages(batch)
        return len(captured.captured_queries)

    added_for_10 = queries("1000000/s", 10) - queries(None, 10)
    added_for_60 = queries("1000000/s", 60) - queries(None, 60)
    assert 0 < added_for_10 == added_for_60 <= 6, "one slot transaction per call"


def claimed_in_two_lanes(count: int) -> list[Message]:
    """``count`` due messages, every other one ``low``, claimed by this process."""
    from django_txmail.outbox.claims import claim_batch

    Message.objects.all().delete()
    pks = [m.pk for m in outbox(count)]
    Message.objects.filter(pk__in=pks[::2]).update(priority=Message.Priority.LOW)
    return claim_batch(count)


def test_a_claimed_batch_takes_its_slots_in_one_transaction_whatever_its_size(
    txmail_sandbox, settings, domain
):
    from django.test.utils import CaptureQueriesContext

    from django_txmail.sending.attempt import Sender

    limited(txmail_sandbox, settings, "1000000/s")
    sender = Sender()

    def quota_queries(count: int) -> list[str]:
        claimed = claimed_in_two_lanes(count)
        with CaptureQueriesContext(connection) as captured:
            assert len(sender.pace(claimed)) == count, "a slot for every message"
        return [q["sql"] for q in captured.captured_queries]

    quota_queries(2)  # the account's row is created once
    few, many = quota_queries(4), quota_queries(40)
    assert len(few) == len(many) <= 6, many
    assert sum("FOR UPDATE" in sql or sql.startswith("UPDATE") for sql in many) <= 3
    sender.close()


def test_a_worker_asks_the_quota_once_per_claimed_batch(
    txmail_sandbox, settings, domain, monkeypatch
):
    from django_txmail.sending import worker
    from django_txmail.sending.worker import Worker

    limited(txmail_sandbox, settings, "1000000/s")
    outbox(40)
    feeder = threading.current_thread()
    batches: list[int] = []
    asked: list[int] = []
    claim_batch, reserve_all = worker.claim_batch, quota.reserve_all

    def claiming(*args, **kwargs):
        claimed = claim_batch(*args, **kwargs)
        if claimed:
            batches.append(len(claimed))
        return claimed

    def reserving(asks, wait):
        if threading.current_thread() is feeder:  # threads ask again only for late slots
            asked.append(sum(count for *_, count in asks))
        return reserve_all(asks, wait)

    monkeypatch.setattr(worker, "claim_batch", claiming)
    monkeypatch.setattr(quota, "reserve_all", reserving)
    assert Worker(concurrency=4, batch=8).run(once=True).sent == 40
    assert asked == batches, "one quota transaction per claimed batch, for all its messages"
    assert max(batches) > 1


class FakeClock:
    """``time`` as ``quota`` sees it: ``sleep`` moves the clock on instead of waiting."""

    def __init__(self) -> None:
        import time

        self.now = time.time()
        self.monotonic = time.monotonic

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_slot_is_not_used_more_than_its_lateness_after_its_time(
    txmail_sandbox, settings, monkeypatch
):
    limited(txmail_sandbox, settings, "10/s")  # a slot every 100 ms; one may be 50 ms late
    clock = FakeClock()
    monkeypatch.setattr(quota, "time", clock)
    account = get_settings().account("nylas")
    assert account.flow.late == pytest.approx(0.05)
    slots = quota.reserve(account, 1, 3, wait=5)
    clock.now = slots.times[1] + 0.06
    assert slots.wait(1) is False, "60 ms late: not used"
    assert clock.now == slots.times[1] + 0.06, "and not waited for"
    assert slots.wait(2) is True and clock.now == slots.times[2], "waited for, on time"
    clock.now += 0.05
    assert slots.wait(2) is True, "50 ms late is still in time"


def test_a_message_whose_slot_went_by_waits_for_a_new_one_never_early(
    txmail_sandbox, settings, domain, monkeypatch
):
    from django_txmail.models import AccountThrottle
    from django_txmail.sending.attempt import Sender

    limited(txmail_sandbox, settings, "10/s")
    clock = FakeClock()
    monkeypatch.setattr(quota, "time", clock)
    claimed = claimed_in_two_lanes(3)
    sender = Sender()
    slots = sender.pace(claimed)
    after_the_batch = AccountThrottle.objects.get(key="nylas").next_at
    first = clock.now
    clock.now = first + 0.2  # the first message's slot went by 200 ms ago
    assert slots[claimed[0].pk]() is True
    assert clock.now == pytest.approx(after_the_batch), "a new slot, after the batch's"
    assert AccountThrottle.objects.get(key="nylas").next_at == pytest.approx(clock.now + 0.1)
    sender.close()


def test_a_message_whose_slot_went_by_is_queued_when_no_new_one_is_free_soon(
    txmail_sandbox, settings, domain, monkeypatch
):
    from django_txmail.sending.attempt import Sender

    limited(txmail_sandbox, settings, "1/h")  # one slot an hour; one may be 3 min late
    clock = FakeClock()
    monkeypatch.setattr(quota, "time", clock)
    claimed = claimed_in_two_lanes(1)
    sender = Sender()
    slot = sender.pace(claimed)[claimed[0].pk]
    clock.now += 181
    assert slot() is False, "given back, not sent on a slot 181 s old"
    waiting = Message.objects.get()
    assert (waiting.status, waiting.attempts) == ("queued", 0)
    assert waiting.next_attempt_at.timestamp() == pytest.approx(clock.now - 181 + 3600)
    assert txmail_sandbox.requests == []
    sender.close()


def test_an_immediate_call_that_falls_behind_takes_the_rest_of_its_slots_again_together(
    txmail_sandbox, settings, domain, monkeypatch
):
    """One sender using its slots in turn (an immediate call) never uses one more than
    ``late`` after its time: when one went by, it and the rest are taken again, in one
    transaction, after every slot given so far."""
    from django_txmail.models import AccountThrottle
    from django_txmail.sending.attempt import Sender, pace

    limited(txmail_sandbox, settings, "10/s")  # a slot every 100 ms; one may be 50 ms late
    clock = FakeClock()
    monkeypatch.setattr(quota, "time", clock)
    reserved = []
    reserve = quota.reserve
    monkeypatch.setattr(
        quota, "reserve", lambda *args, **kwargs: reserved.append(args[2]) or reserve(*args)
    )
    claimed = [m for m in claimed_in_two_lanes(6) if m.priority == Message.Priority.LOW]
    sender = Sender()
    slots = pace([(sender.adapter("nylas"), claimed)], in_turn=True)
    first_batch_end = AccountThrottle.objects.get(key="nylas").next_at
    assert slots[claimed[0].pk]() is True  # on time
    used = [clock.now]
    clock.now += 0.3  # the first request took 300 ms: the next slot went by 200 ms ago
    assert slots[claimed[1].pk]() is True
    used.append(clock.now)
    assert reserved == [2], "the rest taken again, together"
    assert clock.now == pytest.approx(first_batch_end), "after every slot given so far"
    assert slots[claimed[2].pk]() is True  # the rest's next slot, on time
    used.append(clock.now)
    assert reserved == [2]
    assert used[2] - used[1] == pytest.approx(0.1)
    assert all(b - a >= 0.1 - 1e-6 for a, b in zip(used, used[1:], strict=False))  # Unix seconds
    sender.close()
