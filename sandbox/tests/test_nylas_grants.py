"""The emulated Nylas Hosted OAuth and grants API, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from txmail_sandbox import WebhookOptions

KEY = "sandbox-nylas-key"
REDIRECT = "https://app.example/txmail/grants/callback/"
VERIFIER = "v" * 50
CHALLENGE = base64.urlsafe_b64encode(hashlib.sha256(VERIFIER.encode()).digest()).rstrip(b"=")


def authorize(http, sandbox, email="ann@mail.example", decision="allow", **extra) -> dict:
    """The consent page's form, submitted; the query sent back to the redirect URI."""
    query = {
        "client_id": "client",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "s1",
        "code_challenge": CHALLENGE.decode(),
        "code_challenge_method": "S256",
        **extra,
    }
    page = http.get(f"{sandbox.url}/v3/connect/auth", params=query)
    assert page.status_code == 200 and 'id="decline"' in page.text
    answer = http.post(
        f"{sandbox.url}/v3/connect/auth",
        data=query | {"email": email, "decision": decision},
        allow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["Location"].startswith(REDIRECT)
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}


def exchange(http, sandbox, code: str, **overrides):
    body = {
        "client_id": "client",
        "client_secret": KEY,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    } | overrides
    return http.post(f"{sandbox.url}/v3/connect/token", json=body)


def test_a_code_is_exchanged_once_for_a_grant(http, txmail_sandbox):
    back = authorize(http, txmail_sandbox)
    assert back["state"] == "s1"
    first = exchange(http, txmail_sandbox, back["code"])
    assert first.status_code == 200 and first.json()["grant_id"]
    again = exchange(http, txmail_sandbox, back["code"])
    assert again.status_code == 400 and again.json()["error"]["type"] == "invalid_grant"


@pytest.mark.parametrize(
    "override",
    [
        {"code_verifier": "wrong"},
        {"client_secret": "not-a-key"},
        {"redirect_uri": "https://evil.example/"},
        {"client_id": "other"},
    ],
)
def test_the_exchange_checks_pkce_secret_redirect_and_client(http, txmail_sandbox, override):
    back = authorize(http, txmail_sandbox)
    assert exchange(http, txmail_sandbox, back["code"], **override).status_code in (400, 401)
    assert txmail_sandbox.grants == []


def test_declining_sends_an_error_back_and_no_code(http, txmail_sandbox):
    back = authorize(http, txmail_sandbox, decision="decline")
    assert back["error"] == "access_denied" and "code" not in back and back["state"] == "s1"


def test_one_grant_per_address_and_the_grants_api(http, txmail_sandbox):
    one = exchange(http, txmail_sandbox, authorize(http, txmail_sandbox)["code"]).json()
    two = exchange(http, txmail_sandbox, authorize(http, txmail_sandbox)["code"]).json()
    assert one["grant_id"] == two["grant_id"]
    url = f"{txmail_sandbox.url}/v3/grants/{one['grant_id']}"
    assert http.get(url).status_code == 401
    auth = {"Authorization": f"Bearer {KEY}"}
    data = http.get(url, headers=auth).json()["data"]
    assert (data["email"], data["grant_status"]) == ("ann@mail.example", "valid")
    txmail_sandbox.expire_grant(one["grant_id"])
    assert http.get(url, headers=auth).json()["data"]["grant_status"] == "invalid"
    assert http.delete(url, headers=auth).status_code == 200
    assert http.get(url, headers=auth).status_code == 404


def test_sends_through_an_expired_or_deleted_grant_are_refused(http, txmail_sandbox):
    grant_id = exchange(http, txmail_sandbox, authorize(http, txmail_sandbox)["code"]).json()[
        "grant_id"
    ]
    auth = {"Authorization": f"Bearer {KEY}"}
    send = f"{txmail_sandbox.url}/v3/grants/{grant_id}/messages/send"
    message = {"to": [{"email": "bob@x.example"}], "subject": "Hi", "body": "Hello"}
    assert http.post(send, json=message, headers=auth).status_code == 200
    assert http.post(f"{txmail_sandbox.url}/_sandbox/grants/{grant_id}/expire").status_code == 200
    refused = http.post(send, json=message, headers=auth)
    assert refused.status_code == 401 and "grant" in refused.json()["error"]["message"]
    http.delete(f"{txmail_sandbox.url}/v3/grants/{grant_id}", headers=auth)
    assert http.post(send, json=message, headers=auth).status_code == 404
    assert len(txmail_sandbox.messages) == 1


def test_grant_events_are_signed_webhooks(http, txmail_sandbox):
    received: list[tuple[bytes, str]] = []

    class Target(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers["X-Nylas-Signature"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.0))
        txmail_sandbox.set_webhook("nylas", f"http://127.0.0.1:{server.server_port}/", "sec")
        grant_id = exchange(http, txmail_sandbox, authorize(http, txmail_sandbox)["code"]).json()[
            "grant_id"
        ]
        txmail_sandbox.expire_grant(grant_id)
        txmail_sandbox.flush_webhooks(10)
    finally:
        txmail_sandbox.clear_webhooks()
        server.shutdown()
        server.server_close()
    kinds = []
    for body, signature in received:
        assert hmac.compare_digest(signature, hmac.new(b"sec", body, hashlib.sha256).hexdigest())
        envelope = json.loads(body)
        assert envelope["data"]["object"]["grant_id"] == grant_id
        kinds.append(envelope["type"])
    assert sorted(kinds) == ["grant.created", "grant.expired"]
