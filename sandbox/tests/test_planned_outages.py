"""Outages and refused connections drawn from a FaultPlan's seed, counted in requests."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from sandbox_support import AUTH, TIMEOUT, message, send
from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN, FaultPlan, SandboxServer

#: Outages only: no per-message faults to mix in.
OUTAGES = {"rate": 0.0, "outage_rate": 0.1, "outage_requests": 3}
#: Closings only; the port stays closed until the test opens it again (an event, not a
#: time), so a slow machine sees the same refusals as a fast one.
CLOSINGS = {"rate": 0.0, "refusal_rate": 0.1, "refusal_seconds": 3600.0}


def outage_statuses(seed: int, other_account_between: bool = False) -> list[int]:
    """The statuses of 120 sends of one account, one after another."""
    with SandboxServer(faults=FaultPlan(seed=seed, **OUTAGES)) as sandbox:
        with requests.Session() as http:
            statuses = []
            for _ in range(120):
                if other_account_between:
                    mailtrap_send(http, sandbox)
                statuses.append(send(http, sandbox, message()).status_code)
            assert {r.fault for r in sandbox.requests if r.status == 503} <= {"planned outage"}
            return statuses


def mailtrap_send(http, sandbox) -> None:
    payload = {"from": {"email": "a@acme.io"}, "to": [{"email": "b@x.example"}], "text": "b"}
    payload["subject"] = "other account"
    headers = {"Api-Token": DEFAULT_MAILTRAP_API_TOKEN}
    http.post(f"{sandbox.url}/api/send", json=payload, headers=headers, timeout=TIMEOUT)


def test_the_same_seed_takes_an_account_down_at_the_same_requests_every_time():
    first, second = outage_statuses(5), outage_statuses(5)
    assert first == second
    assert set(first) == {200, 503}
    # Each outage answers its start and the account's next two requests 503.
    runs = [len(list(run)) for status, run in itertools.groupby(first) if status == 503]
    assert runs and all(length % 3 == 0 for length in runs)


def test_another_seed_takes_it_down_at_other_requests():
    assert outage_statuses(5) != outage_statuses(6)


def test_an_accounts_outages_do_not_depend_on_other_accounts_requests():
    assert outage_statuses(5, other_account_between=True) == outage_statuses(5)


def test_concurrent_senders_meet_as_many_outages_as_one_sender():
    with SandboxServer(faults=FaultPlan(seed=5, **OUTAGES)) as sandbox:

        def one(_):
            with requests.Session() as http:
                return send(http, sandbox, message()).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(one, range(120)))
    assert statuses.count(503) == outage_statuses(5).count(503)


def closings(seed: int) -> tuple[list[tuple[int, int]], int, int]:
    """60 sends through a listen() port, each until it is answered: the plan's closings,
    how many connections were refused, and how many messages the sandbox holds."""
    with SandboxServer(faults=FaultPlan(seed=seed, **CLOSINGS)) as sandbox:
        url = sandbox.listen()
        refused = 0
        with requests.Session() as http:
            for n in range(60):
                while True:
                    try:
                        answer = http.post(
                            f"{url}/v3/domains/acme.io/messages/send",
                            json=message(subject=f"m{n}"),
                            headers=AUTH,
                            timeout=TIMEOUT,
                        )
                        break
                    except requests.ConnectionError:
                        refused += 1  # closed after the previous answer: open it again
                        sandbox.accept_connections(url)
                assert answer.status_code == 200
        return sandbox.planned_closings, refused, len(sandbox.messages)


def test_the_same_seed_closes_a_port_after_the_same_requests_every_time():
    first, refused, held = closings(9)
    assert closings(9) == (first, refused, held)
    assert first and all(port == 0 for port, _ in first)
    assert refused == len(first), "each closing refused the next connection"
    assert held == 60, "the request that closed the port was answered, none went twice"


def test_another_seed_closes_it_after_other_requests():
    assert closings(9)[0] != closings(10)[0]


def test_a_closed_port_listens_again_after_the_plans_seconds(http):
    plan = FaultPlan(seed=0, rate=0.0, refusal_rate=1.0, refusal_seconds=0.05)
    with SandboxServer(faults=plan) as sandbox:
        url = sandbox.listen()
        path = f"{url}/v3/domains/acme.io/messages/send"
        assert http.post(path, json=message(), headers=AUTH, timeout=TIMEOUT).ok
        answered = None
        while answered is None:  # refused until the port listens again
            try:
                answered = requests.post(path, json=message(), headers=AUTH, timeout=TIMEOUT)
            except requests.ConnectionError:
                continue
        assert answered.ok and len(sandbox.planned_closings) == 2


def test_the_main_port_is_never_closed(http):
    plan = FaultPlan(seed=0, rate=0.0, refusal_rate=1.0)
    with SandboxServer(faults=plan) as sandbox:
        assert [send(http, sandbox, message()).status_code for _ in range(5)] == [200] * 5
        assert sandbox.planned_closings == []


def test_reset_replays_the_outages_from_the_start(http):
    with SandboxServer(faults=FaultPlan(seed=5, **OUTAGES)) as sandbox:
        before = [send(http, sandbox, message()).status_code for _ in range(60)]
        sandbox.reset()
        assert [send(http, sandbox, message()).status_code for _ in range(60)] == before


@pytest.mark.parametrize(
    "settings",
    [
        {"outage_rate": 1.5},
        {"refusal_rate": -0.1},
        {"outage_requests": 0},
        {"outage_requests": 2.5},
        {"refusal_seconds": -1},
    ],
    ids=["outage-rate", "refusal-rate", "no-requests", "fraction", "negative-seconds"],
)
def test_the_plan_refuses_bad_outage_settings(settings):
    with pytest.raises(ValueError):
        FaultPlan(**settings)


def test_the_plan_describes_its_outages_and_closings():
    line = FaultPlan(outage_rate=0.05, outage_requests=4, refusal_rate=0.02).describe()
    assert "5% of requests start an outage of 4 requests" in line
    assert "2% of requests to a listen() port close it for 1 s" in line
