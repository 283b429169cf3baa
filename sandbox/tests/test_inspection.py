"""The inspection endpoints answer loopback Host names only (no DNS rebinding)."""

from __future__ import annotations

import http.client

import pytest

PATHS = ["/_sandbox/messages", "/_sandbox/stats", "/_sandbox/health", "/_sandbox/webhooks"]


def get(sandbox, path: str, host: str | None, method: str = "GET") -> tuple[int, bytes]:
    """A request over a real socket with exactly this Host header (or none)."""
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "host", ["localhost", "127.0.0.1", "[::1]", "localhost:8025", "127.0.0.1:1", "[::1]:8025"]
)
def test_loopback_host_names_are_answered(txmail_sandbox, path, host):
    assert get(txmail_sandbox, path, host)[0] == 200


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "host",
    [
        "attacker.example",
        "attacker.example:8025",
        "localhost.attacker.example",
        "127.0.0.1.nip.io",
        "127.0.0.2",
        "[::1].example",
        "",
        None,
    ],
)
def test_any_other_host_is_refused(txmail_sandbox, path, host):
    status, body = get(txmail_sandbox, path, host)
    assert status == 400
    assert b"loopback" in body


def test_a_refused_host_cannot_reset_the_sandbox(txmail_sandbox, http):
    sent = http.post(
        f"{txmail_sandbox.url}/v3/domains/acme.io/messages/send",
        json={"from": {"email": "a@acme.io"}, "to": [{"email": "b@x.example"}], "subject": "s"},
        headers={"Authorization": "Bearer sandbox-nylas-key"},
        timeout=10,
    )
    assert sent.status_code == 200
    assert get(txmail_sandbox, "/_sandbox/messages", "attacker.example", "DELETE")[0] == 400
    assert len(txmail_sandbox.messages) == 1
