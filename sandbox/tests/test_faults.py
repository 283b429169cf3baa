"""The sandbox's seeded random faults, over real HTTP on loopback.

Every planned fault is a pure function of the seed, the request's
Idempotency-Key (or body) and how often that key was seen, so these tests
are deterministic: the counts they assert come out the same on every run.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox_support import (
    AUTH,
    TIMEOUT,
    assert_nylas_error,
    message,
    read_first_line,
    send,
    start_module,
    url_in,
    wait_for,
)
from txmail_sandbox import FAULT_KINDS, Fault, FaultPlan, RequestRecord, SandboxServer
from txmail_sandbox.__main__ import main as sandbox_main
from txmail_sandbox.console import format_record
from txmail_sandbox.fault_plan import parse_kinds

#: Plan settings under which every kind answers (or fails) at once, for many sends.
QUICK = {"hang": 0.0, "slow": 0.0}


def only(kind, **settings):
    """A plan that gives every send the fault ``kind``."""
    return FaultPlan(seed=1, rate=1.0, kinds={kind: 1}, **settings)


def attempt(http, sandbox, key, **fields):
    """Send once; a status code, or the exception's class for no answer."""
    try:
        return send(http, sandbox, message(**fields), key=key).status_code
    except requests.RequestException as exc:
        return type(exc).__name__


def faults_by_key(sandbox):
    """The request log as {Idempotency-Key: [fault of each attempt, in order]}."""
    faults = {}
    for record in sandbox.requests:
        faults.setdefault(record.idempotency_key, []).append(record.fault)
    return faults


# Each kind


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_server_error_kinds_answer_with_the_envelope_and_store_nothing(http, kind):
    with SandboxServer(faults=only(kind)) as sandbox:
        response = send(http, sandbox, message(), key="k")
        assert_nylas_error(response, int(kind), "internal_error", "fault plan (seed 1)")
        assert sandbox.messages == []

        sandbox.set_fault_plan(None)
        retry = send(http, sandbox, message(), key="k")
        assert retry.status_code == 200
        assert "Idempotent-Response" not in retry.headers  # the error was not cached
        assert len(sandbox.messages) == 1


def test_429_carries_a_short_retry_after_and_429_no_retry_after_none(http):
    with SandboxServer(faults=only("429", retry_after=2)) as sandbox:
        limited = send(http, sandbox, message(), key="a")
        sandbox.set_fault_plan(only("429-no-retry-after"))
        bare = send(http, sandbox, message(), key="b")

        assert_nylas_error(limited, 429, "rate_limit_error")
        assert limited.headers["Retry-After"] == "2"
        assert_nylas_error(bare, 429, "rate_limit_error")
        assert "Retry-After" not in bare.headers
        assert sandbox.messages == []


def test_reset_kind_resets_the_connection_without_an_answer(http):
    with SandboxServer(faults=only("reset")) as sandbox:
        with pytest.raises(requests.ConnectionError):
            send(http, sandbox, message(), key="k")

        body = b'{"from": {"email": "a@acme.io"}, "to": [{"email": "b@example.com"}]}'
        head = (
            "POST /v3/domains/acme.io/messages/send HTTP/1.1\r\nHost: sandbox\r\n"
            f"Authorization: {AUTH['Authorization']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        with socket.create_connection((sandbox.host, sandbox.port), timeout=TIMEOUT) as conn:
            conn.sendall(head.encode() + body)
            with pytest.raises(ConnectionResetError):  # a RST, not an orderly close
                conn.recv(1024)

        assert sandbox.messages == []
        assert [(r.status, r.fault) for r in sandbox.requests] == [(None, "reset")] * 2


def test_timeout_after_accept_stores_the_message_and_a_retry_gets_the_replay(http):
    plan = only("timeout-after-accept", hang=2.0)
    with SandboxServer(faults=plan) as sandbox:
        started = time.monotonic()
        with pytest.raises(requests.Timeout):
            send(http, sandbox, message(), key="k", timeout=0.3)
        [accepted] = sandbox.messages

        # The first answer is still held, yet the provider has finished:
        # the retry is replayed, not refused as concurrent.
        retry = send(http, sandbox, message(), key="k")
        assert time.monotonic() - started < 2.0
        assert retry.status_code == 200
        assert retry.headers["Idempotent-Response"] == "true"
        assert retry.json()["data"]["id"] == accepted.id
        assert len(sandbox.messages) == 1
        assert sandbox.fault_stats["timeout-after-accept"] == 1

        held = wait_for(lambda: [r for r in sandbox.requests if r.fault])
        assert [(r.status, r.fault) for r in held] == [(None, "timeout-after-accept")]
        assert held[0].duration >= 2.0


def test_slow_kind_answers_successfully_but_late(http):
    with SandboxServer(faults=only("slow", slow=0.3)) as sandbox:
        started = time.monotonic()
        response = send(http, sandbox, message(), key="k")
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
        [record] = sandbox.requests
        assert (record.status, record.fault) == (200, "slow")
        assert len(sandbox.messages) == 1


def test_after_accept_kinds_leave_replays_and_errors_alone(http):
    with SandboxServer() as sandbox:
        send(http, sandbox, message(), key="k")
        sandbox.set_fault_plan(only("slow", slow=30.0))
        started = time.monotonic()
        assert send(http, sandbox, message(), key="k").status_code == 200  # a replay
        assert send(http, sandbox, message(to=[])).status_code == 400
        assert time.monotonic() - started < 10  # not 30 s late
        assert sandbox.fault_stats["slow"] == 0


def test_hang_zero_closes_at_once_without_an_answer(http):
    with SandboxServer(faults=only("timeout-after-accept", hang=0)) as sandbox:
        with pytest.raises(requests.ConnectionError):
            send(http, sandbox, message(), key="k")
        assert len(sandbox.messages) == 1


def test_injected_faults_take_precedence_over_the_plan(http):
    with SandboxServer(faults=only("503")) as sandbox:
        sandbox.inject(Fault(status=429, retry_after=9))
        first = send(http, sandbox, message())
        second = send(http, sandbox, message())

        assert (first.status_code, first.headers["Retry-After"]) == (429, "9")
        assert second.status_code == 503
        assert sandbox.fault_stats["503"] == 1
        assert [r.fault for r in sandbox.requests] == ["injected 429", "503"]


def test_latency_still_applies_with_a_fault_plan(http):
    with SandboxServer(latency=0.2, faults=FaultPlan(rate=0.0)) as sandbox:
        started = time.monotonic()
        assert send(http, sandbox, message()).status_code == 200
        assert time.monotonic() - started >= 0.2


# Rate, weights and reproducibility


def test_rate_zero_gives_no_faults_and_rate_one_always_one(http):
    with SandboxServer(faults=FaultPlan(seed=3, rate=0.0)) as sandbox:
        assert {attempt(http, sandbox, f"k{n}") for n in range(50)} == {200}
        assert sum(sandbox.fault_stats.values()) == 0

        sandbox.set_fault_plan(FaultPlan(seed=3, rate=1.0, **QUICK))
        for n in range(50):
            attempt(http, sandbox, f"new-{n}")
        assert all(record.fault for record in sandbox.requests[50:])
        assert sum(sandbox.fault_stats.values()) == 50


def test_same_seed_gives_the_same_faults_whatever_the_request_order():
    keys = [f"order-{n}" for n in range(40)]

    def run(seed, concurrently):
        with SandboxServer(faults=FaultPlan(seed=seed, rate=0.5, **QUICK)) as sandbox:

            def two_attempts(key):
                with requests.Session() as session:
                    attempt(session, sandbox, key)
                    attempt(session, sandbox, key)

            if concurrently:
                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(two_attempts, reversed(keys)))
            else:
                for key in keys:
                    two_attempts(key)
            return faults_by_key(sandbox), sandbox.fault_stats

    sequential, stats = run(42, concurrently=False)
    concurrent, concurrent_stats = run(42, concurrently=True)
    other_seed, _ = run(43, concurrently=False)

    assert concurrent == sequential
    assert concurrent_stats == stats
    assert other_seed != sequential
    drawn = [fault for faults in sequential.values() for fault in faults if fault]
    assert 20 <= len(drawn) <= 60  # about half of 80 attempts
    assert len(set(drawn)) >= 5  # an even mix of kinds


def test_requests_without_a_key_are_known_by_their_body():
    def run():
        with SandboxServer(faults=FaultPlan(seed=5, rate=0.5, **QUICK)) as sandbox:
            with requests.Session() as session:
                for n in range(30):
                    for _ in range(2):  # resending a body is its next attempt
                        try:
                            send(session, sandbox, message(subject=f"no key {n}"))
                        except requests.RequestException:
                            pass
            return [record.fault for record in sandbox.requests]

    first, second = run(), run()
    assert first == second
    assert any(first) and not all(first)


def test_kind_weights_are_respected_over_400_keys(http):
    plan = FaultPlan(seed=11, rate=0.5, kinds={"500": 3, "503": 1})
    with SandboxServer(faults=plan) as sandbox:
        statuses = Counter(attempt(http, sandbox, f"k{n}") for n in range(400))
        stats = sandbox.fault_stats

    assert stats["500"] == statuses[500] and stats["503"] == statuses[503]
    faults = stats["500"] + stats["503"]
    assert 160 <= faults <= 240
    assert 0.65 <= stats["500"] / faults <= 0.85
    assert {kind for kind, count in stats.items() if count} == {"500", "503"}


def test_decisions_follow_rate_and_weights_over_many_identities():
    plan = FaultPlan(seed=99, rate=0.3, kinds={"reset": 1, "slow": 2, "503": 7})
    decisions = Counter(plan.decide(f"key-{n}", 0) for n in range(20_000))
    faults = 20_000 - decisions[None]
    assert abs(faults / 20_000 - 0.3) < 0.02
    for kind, share in {"reset": 0.1, "slow": 0.2, "503": 0.7}.items():
        assert abs(decisions[kind] / faults - share) < 0.03
    same_settings = FaultPlan(seed=99, rate=0.3, kinds={"503": 7, "slow": 2, "reset": 1})
    assert [same_settings.decide(f"key-{n}", 0) for n in range(100)] == [
        plan.decide(f"key-{n}", 0) for n in range(100)
    ]


def test_reset_replays_the_plan_from_the_start(http):
    with SandboxServer(faults=FaultPlan(seed=8, rate=0.5, **QUICK)) as sandbox:
        for n in range(20):
            attempt(http, sandbox, f"k{n}")
        before, stats = faults_by_key(sandbox), sandbox.fault_stats
        sandbox.reset()
        assert sum(sandbox.fault_stats.values()) == 0
        for n in range(20):
            attempt(http, sandbox, f"k{n}")
        assert (faults_by_key(sandbox), sandbox.fault_stats) == (before, stats)


def test_fault_stats_count_every_kind(http):
    with SandboxServer(faults=FaultPlan(seed=2, rate=1.0, **QUICK)) as sandbox:
        for n in range(80):
            attempt(http, sandbox, f"k{n}")
        stats = sandbox.fault_stats
        logged = Counter(record.fault for record in sandbox.requests)

    assert list(stats) == list(FAULT_KINDS)
    assert stats == {kind: logged[kind] for kind in FAULT_KINDS}
    assert sum(stats.values()) == 80
    assert all(stats.values())


@pytest.mark.parametrize(
    "settings",
    [
        {"rate": 1.5},
        {"rate": -0.1},
        {"kinds": {"504": 1}},
        {"kinds": {"500": 0}},
        {"kinds": {"500": -1}},
        {"hang": -1},
        {"slow": float("nan")},
    ],
    ids=[
        "rate-over-1",
        "rate-negative",
        "unknown-kind",
        "no-weight",
        "negative-weight",
        "hang",
        "slow",
    ],
)
def test_fault_plan_refuses_bad_settings(settings):
    with pytest.raises(ValueError):
        FaultPlan(**settings)


def test_kinds_parse_from_a_comma_list():
    assert parse_kinds("500:2, reset,slow:0.5") == {"500": 2.0, "reset": 1.0, "slow": 0.5}


# Inspection and shutdown


def test_stats_endpoint_counts_messages_requests_and_faults(http):
    with SandboxServer(faults=only("503")) as sandbox:
        send(http, sandbox, message())
        sandbox.set_fault_plan(None)
        send(http, sandbox, message())
        sandbox.set_fault_plan(only("503"))
        send(http, sandbox, message())
        stats = http.get(f"{sandbox.url}/_sandbox/stats", timeout=TIMEOUT).json()

    assert stats == {
        "messages": 1,
        "requests": 3,
        "faults": {kind: int(kind == "503") for kind in FAULT_KINDS},
    }


def test_stop_returns_promptly_while_an_answer_is_held():
    sandbox = SandboxServer(faults=only("timeout-after-accept", hang=30.0)).start()
    outcome = []

    def client():
        try:
            outcome.append(send(requests, sandbox, message(), timeout=TIMEOUT))
        except requests.RequestException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    wait_for(lambda: sandbox.messages)
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 10  # not the 30 s hang
    thread.join(TIMEOUT)
    assert isinstance(outcome[0], requests.ConnectionError)
    [record] = wait_for(lambda: sandbox.requests)
    assert (record.status, record.fault) == (None, "timeout-after-accept")
    assert record.duration < 20


def test_log_line_shows_the_fault_and_a_missing_answer():
    record = RequestRecord("POST", "/v3/x", None, {}, "k", "json", 0.0012, fault="reset")
    assert format_record(record) == "POST /v3/x - 1.2 ms [reset]"


# Command line


def _standalone_sends(*options: str, sends: int = 1):
    """Start ``python -m txmail_sandbox`` with ``options``, make ``sends`` sends, read its
    stats and stop it with SIGINT: (its first line, the answers, the stats, exit status)."""
    process = start_module("--port", "0", "--quiet", *options)
    try:
        line = read_first_line(process)
        url = url_in(line)
        answers = [
            requests.post(
                f"{url}/v3/domains/acme.io/messages/send",
                json=message(),
                headers=AUTH,
                timeout=TIMEOUT,
            )
            for _ in range(sends)
        ]
        stats = requests.get(f"{url}/_sandbox/stats", timeout=TIMEOUT).json()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    return line, answers, stats, process.returncode


def test_standalone_sandbox_takes_a_fault_plan_and_reports_it():
    plan = ["--fault-rate", "1", "--fault-seed", "7", "--fault-kinds", "503", "--slow", "0.5"]
    line, [sent], stats, returncode = _standalone_sends(*plan)

    assert "100% of sends fail; seed 7; kinds 503:1;" in line
    assert "slow 0.5 s" in line
    assert sent.status_code == 503
    assert (stats["messages"], stats["faults"]["503"]) == (0, 1)
    assert returncode == 0


def test_standalone_sandbox_plans_outages_without_other_faults():
    plan = ["--outage-rate", "1", "--outage-requests", "3", "--fault-seed", "7"]
    line, answers, stats, returncode = _standalone_sends(*plan, sends=2)

    assert "0% of sends fail; seed 7;" in line
    assert "100% of requests start an outage of 3 requests" in line
    assert [answer.status_code for answer in answers] == [503, 503]
    assert stats["messages"] == 0
    assert returncode == 0


BAD_FAULT_OPTIONS = {
    "rate-over-1": (["--fault-rate", "2"], "--fault-rate must be between 0 and 1"),
    "rate-not-a-number": (["--fault-rate", "often"], "--fault-rate"),
    "unknown-kind": (["--fault-rate", "0.1", "--fault-kinds", "504"], "choose from 500"),
    "bad-weight": (["--fault-rate", "0.1", "--fault-kinds", "500:x"], "'x' of '500'"),
    "negative-hang": (["--fault-rate", "0.1", "--hang", "-1"], "--hang must be"),
    "seed-without-rate": (["--fault-seed", "3"], "--fault-seed needs --fault-rate"),
    "outage-rate-over-1": (["--outage-rate", "1.5"], "--outage-rate must be between 0 and 1"),
    "no-outage-requests": (
        ["--outage-rate", "0.1", "--outage-requests", "0"],
        "--outage-requests must be a whole number >= 1",
    ),
    "outage-requests-alone": (
        ["--outage-requests", "4"],
        "--outage-requests needs --fault-rate (the share of sends that fail) or --outage-rate",
    ),
}


@pytest.mark.parametrize("argv, mentions", BAD_FAULT_OPTIONS.values(), ids=BAD_FAULT_OPTIONS)
def test_standalone_sandbox_refuses_bad_fault_options(capsys, argv, mentions):
    with pytest.raises(SystemExit) as exit_info:
        sandbox_main(["--port", "0", *argv])
    assert exit_info.value.code == 2
    assert mentions in capsys.readouterr().err
