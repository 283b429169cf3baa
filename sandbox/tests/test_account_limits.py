"""Per-account rate limits, outages and refused connections, over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests

from sandbox_support import API_KEY, assert_nylas_error, message, send
from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN


def test_a_request_over_the_accounts_limit_gets_429_with_retry_after(txmail_sandbox, http):
    txmail_sandbox.set_rate_limit(API_KEY, 2, 30)
    statuses = [send(http, txmail_sandbox, message()).status_code for _ in range(2)]
    refused = send(http, txmail_sandbox, message())
    assert statuses == [200, 200]
    assert_nylas_error(refused, 429, "rate_limit_error")
    assert 29 <= int(refused.headers["Retry-After"]) <= 30, "until the oldest leaves the window"
    assert len(txmail_sandbox.messages) == 2, "nothing processed past the limit"
    assert txmail_sandbox.requests[-1].fault == "account 429"


def test_the_limit_is_per_account(txmail_sandbox, http):
    txmail_sandbox.set_rate_limit("another-key", 1, 30)
    assert [send(http, txmail_sandbox, message()).status_code for _ in range(3)] == [200] * 3


def test_lifting_the_limit_lets_requests_through_again(txmail_sandbox, http):
    txmail_sandbox.set_rate_limit(API_KEY, 1, 30)
    send(http, txmail_sandbox, message())
    assert send(http, txmail_sandbox, message()).status_code == 429
    txmail_sandbox.set_rate_limit(API_KEY, None)
    assert send(http, txmail_sandbox, message()).status_code == 200


def test_mailtrap_answers_429_without_retry_after_as_documented(txmail_sandbox, http):
    txmail_sandbox.set_rate_limit(DEFAULT_MAILTRAP_API_TOKEN, 1, 30)
    payload = {
        "from": {"email": "hello@acme.io"},
        "to": [{"email": "ann@example.com"}],
        "subject": "Hi",
        "text": "b",
    }
    answers = [
        http.post(
            f"{txmail_sandbox.url}/api/send",
            json=payload,
            headers={"Api-Token": DEFAULT_MAILTRAP_API_TOKEN},
            timeout=10,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [200, 429]
    assert "Retry-After" not in answers[1].headers
    assert answers[1].json()["success"] is False


def test_an_outage_answers_503_for_that_account(txmail_sandbox, http):
    txmail_sandbox.set_outage(API_KEY, 60)
    down = send(http, txmail_sandbox, message())
    assert down.status_code == 503 and down.json()["error"]["message"]
    assert txmail_sandbox.messages == []


def test_a_listener_refuses_connections_until_it_accepts_again(txmail_sandbox, http):
    url = txmail_sandbox.listen()
    path = "/v3/domains/acme.io/messages/send"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert http.post(url + path, json=message(), headers=headers, timeout=10).status_code == 200
    txmail_sandbox.refuse_connections(url)
    with pytest.raises(requests.ConnectionError):
        requests.post(url + path, json=message(), headers=headers, timeout=10)
    txmail_sandbox.accept_connections(url)
    assert requests.post(url + path, json=message(), headers=headers, timeout=10).ok
    assert len(txmail_sandbox.messages) == 2


def test_reset_forgets_the_limits(txmail_sandbox, http):
    txmail_sandbox.set_rate_limit(API_KEY, 1, 30)
    txmail_sandbox.reset()
    assert [send(http, txmail_sandbox, message()).status_code for _ in range(2)] == [200, 200]
