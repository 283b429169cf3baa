"""Bad RATE_LIMIT, LANE_SHARES, FAILOVER and BREAKER settings: check errors naming the fix."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.test import override_settings


def account(**keys) -> dict:
    return {"ADAPTER": "nylas", "API_KEY": "k", "API_URI": "http://127.0.0.1:9", **keys}


def setting_errors(providers: dict) -> list[str]:
    with override_settings(TXMAIL={"PROVIDERS": providers, "DEFAULT_PROVIDER": "a"}):
        return [e.msg for e in run_checks() if e.id == "txmail.E001"]


@pytest.mark.parametrize("value", ["20", "20/week", "0/s", "-1/s", 20, ["20/s", "x"], []])
def test_a_malformed_rate_limit_names_the_setting_and_the_form(value):
    errors = setting_errors({"a": account(RATE_LIMIT=value)})
    assert len(errors) == 1
    assert "TXMAIL['PROVIDERS']['a']['RATE_LIMIT']" in errors[0] and "'20/s'" in errors[0]


@pytest.mark.parametrize("value", ["20/s", "1000/h", "50000/d", ["20/s", "1000/h"], " 5 / m "])
def test_well_formed_rate_limits_pass(value):
    assert setting_errors({"a": account(RATE_LIMIT=value)}) == []


def test_a_failover_to_an_unknown_account_is_named():
    errors = setting_errors({"a": account(FAILOVER=["b"])})
    assert errors and "['FAILOVER'] names 'b', which is not a key" in errors[0]


def test_a_failover_to_itself_is_refused():
    errors = setting_errors({"a": account(FAILOVER=["a"])})
    assert errors and "names the account itself" in errors[0]


def test_a_cycle_of_failovers_is_refused():
    errors = setting_errors(
        {"a": account(FAILOVER=["b"]), "b": account(FAILOVER=["c"]), "c": account(FAILOVER=["a"])}
    )
    assert errors and "go round in a cycle" in errors[0]


def test_a_chain_of_failovers_without_a_cycle_passes():
    providers = {"a": account(FAILOVER=["b", "c"]), "b": account(FAILOVER=["c"]), "c": account()}
    assert setting_errors(providers) == []


@pytest.mark.parametrize(
    "breaker", [{"FAILURES": 0}, {"PAUSE": -1}, {"FAILURES": "3"}, {"OPEN": 1}, "5"]
)
def test_a_bad_breaker_names_its_keys(breaker):
    errors = setting_errors({"a": account(BREAKER=breaker)})
    assert errors and "['BREAKER']" in errors[0] and "FAILURES" in errors[0]


def test_lane_shares_without_a_rate_limit_say_to_add_one():
    errors = setting_errors({"a": account(LANE_SHARES={"low": 0.5})})
    assert errors and "add one" in errors[0]
