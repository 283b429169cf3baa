"""The sandbox posts signed delivery notifications back to the app, and
emulates Nylas's webhooks API. A small local HTTP server stands in for the
app's webhook endpoint; that django-txmail's own endpoint accepts and reads
them is tested in the root project's ``tests/test_webhooks_e2e.py``."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox_support import AUTH, TIMEOUT, read_first_line, start_module, url_in
from txmail_sandbox import SandboxServer, WebhookOptions
from txmail_sandbox.mailbox_simulator import outcome
from txmail_sandbox.webhook_console import (
    webhook_options_from_options,
    webhook_targets_from_options,
)

SECRET = "whsec-sandbox-tests"
FAST = WebhookOptions(delay=0, retry_delay=0.05)
DELIVERED = "message.transactional.delivered"
BOUNCED = "message.transactional.bounced"
COMPLAINT = "message.transactional.complaint"
REJECTED = "message.transactional.rejected"
OPENED = "message.opened"
CLICKED = "message.link_clicked"
TRACK = {"opens": True, "links": True}


class Receiver:
    """Stands in for the app: records each POST, answers ``GET ?challenge=``.

    ``answers`` is a list of statuses for the next POSTs (then 200);
    ``hold`` makes every POST wait until it is set.
    """

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []
        self.challenge_answer: str | None = None  # None: echo the challenge
        self.hold: threading.Event | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append((dict(self.headers), body))
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self._answer(status, b'{"ok":true}')

            def do_GET(self) -> None:
                value = parse_qs(urlsplit(self.path).query).get("challenge", [""])[0]
                answer = receiver.challenge_answer
                self._answer(200, (value if answer is None else answer).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/txmail/webhooks/nylas/"
        serve = self._server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def notifications(self) -> list[dict]:
        return [json.loads(body) for _, body in self.posts]

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def sandbox(txmail_sandbox, receiver):
    txmail_sandbox.set_webhook_options(FAST)
    txmail_sandbox.set_webhook("nylas", receiver.url, SECRET)
    yield txmail_sandbox
    txmail_sandbox.clear_webhooks()


def send(sandbox, *recipients, route="domain", cc=(), bcc=(), **fields):
    payload = {
        "from": {"email": "shop@acme.io", "name": "Shop"},
        "to": [{"email": address} for address in recipients],
        "subject": "Receipt",
        "body": '<p>Thanks! <a href="https://acme.io/orders/42">Your order</a></p>',
        "metadata": {"txmail_id": "7b0c9d6e-0000-4000-8000-000000000042"},
        **fields,
    }
    if cc:
        payload["cc"] = [{"email": address} for address in cc]
    if bcc:
        payload["bcc"] = [{"email": address} for address in bcc]
    if route == "grant":
        payload["from"] = [payload["from"]]
        url = f"{sandbox.url}/v3/grants/grant-1/messages/send"
    else:
        url = f"{sandbox.url}/v3/domains/acme.io/messages/send"
    response = requests.post(url, json=payload, headers=AUTH, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return response.json()["data"]["id"]


def by_type(notifications):
    return {n["type"]: n for n in notifications}


# Content and signature


def test_each_notification_has_nylas_s_envelope_and_the_message_as_sent(sandbox, receiver):
    message_id = send(sandbox, "ann@x.example", cc=["cc@x.example"], bcc=["audit@x.example"])
    sandbox.flush_webhooks(TIMEOUT)
    [notification] = receiver.notifications()
    assert list(notification) == [
        "specversion",
        "type",
        "source",
        "id",
        "time",
        "webhook_delivery_attempt",
        "data",
    ]
    assert notification["specversion"] == "1.0"
    assert notification["type"] == DELIVERED
    assert notification["webhook_delivery_attempt"] == 1
    assert isinstance(notification["time"], int)
    assert set(notification["data"]) == {"application_id", "object"}
    message = notification["data"]["object"]["message"]
    assert message["id"] == message_id
    assert (message["subject"], message["from"]) == ("Receipt", "shop@acme.io")
    assert (message["to"], message["cc"], message["bcc"]) == (
        ["ann@x.example"],
        ["cc@x.example"],
        ["audit@x.example"],
    )
    assert message["metadata"] == {"txmail_id": "7b0c9d6e-0000-4000-8000-000000000042"}
    assert isinstance(message["sent_at"], int)
    delivered = notification["data"]["object"]["delivered"]
    assert delivered["recipients"] == ["ann@x.example", "cc@x.example", "audit@x.example"]


def nylas_signature(body, secret=SECRET):
    """Nylas's ``X-Nylas-Signature``: the hex HMAC-SHA256 of the raw body under
    the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_each_post_is_signed_as_nylas_signs_it(sandbox, receiver):
    send(sandbox, "ann@x.example", "bounce@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    assert len(receiver.posts) == 2
    for headers, body in receiver.posts:
        assert headers["X-Nylas-Signature"] == nylas_signature(body)


def test_the_log_records_each_post_and_the_apps_answer(sandbox, receiver):
    send(sandbox, "ann@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    [delivery] = sandbox.webhook_log
    assert (delivery.provider, delivery.type, delivery.url) == ("nylas", DELIVERED, receiver.url)
    assert (delivery.status, delivery.response, delivery.error) == (200, '{"ok":true}', None)
    assert delivery.body == receiver.posts[0][1]
    assert delivery.notification_id == delivery.payload["id"]
    served = requests.get(f"{sandbox.url}/_sandbox/webhooks", timeout=TIMEOUT).json()
    assert served["pending"] == 0
    [entry] = served["deliveries"]
    assert (entry["id"], entry["status"], entry["attempt"]) == (delivery.notification_id, 200, 1)
    assert entry["payload"] == delivery.payload


# Outcome by recipient address


def test_the_outcome_follows_the_recipients_local_part():
    assert outcome("bounce@x.example") == "bounced"
    assert outcome("Bounce+order-42@x.example") == "bounced"
    assert outcome("complaint@x.example") == "complained"
    assert outcome("reject@x.example") == "rejected"
    assert outcome("ann@x.example") == outcome("bounced@x.example") == "delivered"


def test_recipients_with_the_same_outcome_share_one_notification(sandbox, receiver):
    send(
        sandbox,
        "ann@x.example",
        "bounce@x.example",
        cc=["complaint@x.example", "bob@x.example"],
        bcc=["bounce+2@x.example"],
    )
    sandbox.flush_webhooks(TIMEOUT)
    notifications = receiver.notifications()
    assert [n["type"] for n in notifications] == [DELIVERED, BOUNCED, COMPLAINT]
    found = by_type(notifications)
    delivered = found[DELIVERED]["data"]["object"]["delivered"]
    assert delivered["recipients"] == ["ann@x.example", "complaint@x.example", "bob@x.example"]
    bounce = found[BOUNCED]["data"]["object"]["bounce"]
    assert bounce["type"] == "UserUnknown"
    assert bounce["recipients"] == [
        {"email": "bounce@x.example", "diagnostic_code": "smtp; 550 5.1.1 user unknown"},
        {"email": "bounce+2@x.example", "diagnostic_code": "smtp; 550 5.1.1 user unknown"},
    ]
    complaint = found[COMPLAINT]["data"]["object"]["complaint"]
    assert complaint["complained_recipients"] == ["complaint@x.example"]
    assert complaint["type"] == "abuse"
    assert complaint["reported_at"] > delivered["delivered_at"]
    assert len({n["id"] for n in notifications}) == 3


def test_reject_anywhere_rejects_the_whole_message_and_nothing_else(sandbox, receiver):
    send(sandbox, "ann@x.example", "reject@x.example", tracking_options=TRACK)
    sandbox.flush_webhooks(TIMEOUT)
    [notification] = receiver.notifications()
    assert notification["type"] == REJECTED
    assert isinstance(notification["data"]["object"]["rejected_at"], int)


# Tracking


def test_opens_and_clicks_are_reported_when_tracking_is_on(sandbox, receiver):
    body = (
        '<p><a href="https://acme.io/orders/42">Order</a> '
        "<a href='https://acme.io/help'>Help</a> <a href=\"mailto:x@acme.io\">Mail</a></p>"
    )
    message_id = send(
        sandbox,
        "ann@x.example",
        body=body,
        tracking_options={"opens": True, "links": True, "label": "receipts"},
    )
    sandbox.flush_webhooks(TIMEOUT)
    notifications = receiver.notifications()
    assert [n["type"] for n in notifications] == [DELIVERED, OPENED, CLICKED]
    opened = notifications[1]["data"]["object"]
    assert (opened["message_id"], opened["label"]) == (message_id, "receipts")
    [recent] = opened["recents"]
    assert recent["user_agent"] and recent["ip"] and recent["opened_id"]
    clicked = notifications[2]["data"]["object"]
    assert clicked["link_data"] == [
        {"count": 1, "url": "https://acme.io/orders/42"},
        {"count": 0, "url": "https://acme.io/help"},
    ]
    assert clicked["message_id"] == message_id
    assert clicked["recents"][0]["link_index"] == 0
    assert clicked["recents"][0]["user_agent"] == recent["user_agent"]


def test_no_tracking_events_without_tracking_an_html_body_or_a_delivery(sandbox, receiver):
    send(sandbox, "ann@x.example")  # tracking off
    send(sandbox, "ann@x.example", body="plain", is_plaintext=True, tracking_options=TRACK)
    send(sandbox, "bounce@x.example", tracking_options=TRACK)  # nobody to open it
    sandbox.flush_webhooks(TIMEOUT)
    assert [n["type"] for n in receiver.notifications()] == [DELIVERED, DELIVERED, BOUNCED]


def test_grant_route_sends_report_tracking_only(sandbox, receiver):
    message_id = send(sandbox, "ann@x.example", route="grant", tracking_options=TRACK)
    send(sandbox, "bounce@x.example", route="grant")
    sandbox.flush_webhooks(TIMEOUT)
    notifications = receiver.notifications()
    assert [n["type"] for n in notifications] == [OPENED, CLICKED]
    assert notifications[0]["data"]["object"]["message_id"] == message_id
    assert notifications[0]["data"]["object"]["grant_id"] == "grant-1"


def test_a_scheduled_send_emits_nothing(sandbox, receiver):
    send(sandbox, "ann@x.example", send_at=int(time.time()) + 3600)
    sandbox.flush_webhooks(TIMEOUT)
    assert receiver.posts == [] and sandbox.webhook_log == []


def test_only_providers_with_a_target_emit(txmail_sandbox, receiver):
    send(txmail_sandbox, "ann@x.example")
    txmail_sandbox.flush_webhooks(TIMEOUT)
    assert receiver.posts == [] and txmail_sandbox.webhook_log == []


# Retries, timing, stop


def test_a_failing_answer_is_retried_with_the_same_id_and_the_attempt_counted(sandbox, receiver):
    receiver.answers = [500, 503]
    send(sandbox, "ann@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    notifications = receiver.notifications()
    assert [n["webhook_delivery_attempt"] for n in notifications] == [1, 2, 3]
    assert len({n["id"] for n in notifications}) == 1
    assert [d.status for d in sandbox.webhook_log] == [500, 503, 200]
    for headers, body in receiver.posts:  # each attempt signed anew
        assert headers["X-Nylas-Signature"] == nylas_signature(body)


def test_three_failed_attempts_give_up(sandbox, receiver):
    receiver.answers = [500, 500, 500, 500]
    send(sandbox, "ann@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    assert [d.attempt for d in sandbox.webhook_log] == [1, 2, 3]
    assert not any(d.ok for d in sandbox.webhook_log)


def test_an_unreachable_target_is_logged_with_the_error(sandbox, receiver):
    sandbox.set_webhook("nylas", "http://127.0.0.1:9/txmail/webhooks/nylas/", SECRET)
    send(sandbox, "ann@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    assert [(d.status, d.attempt) for d in sandbox.webhook_log] == [(None, 1), (None, 2), (None, 3)]
    assert "Connection" in sandbox.webhook_log[0].error


def test_the_send_is_answered_without_waiting_for_the_app(sandbox, receiver):
    receiver.hold = threading.Event()
    started = time.monotonic()
    send(sandbox, "ann@x.example")
    send(sandbox, "bob@x.example")
    assert time.monotonic() - started < 10  # the app holds its answers for 30 s
    with pytest.raises(TimeoutError, match="2 webhook posts still pending"):
        sandbox.flush_webhooks(0.3)
    receiver.hold.set()
    sandbox.flush_webhooks(TIMEOUT)
    assert len(receiver.posts) == 2


def test_notifications_wait_for_the_delay(sandbox, receiver):
    sandbox.set_webhook_options(WebhookOptions(delay=0.4))
    send(sandbox, "ann@x.example")
    time.sleep(0.15)
    assert receiver.posts == []
    sandbox.flush_webhooks(TIMEOUT)
    assert len(receiver.posts) == 1


def test_stop_does_not_wait_for_pending_or_held_posts(receiver):
    receiver.hold = threading.Event()
    server = SandboxServer(webhooks={"nylas": (receiver.url, SECRET)}, webhook_options=FAST)
    server.start()
    send(server, "ann@x.example", "bounce@x.example")
    deadline = time.monotonic() + TIMEOUT
    while not receiver.posts and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 10  # the app holds its answer for 30 s
    assert len(receiver.posts) == 1  # the second was dropped, not posted


def test_reset_drops_pending_posts_and_the_log(sandbox, receiver):
    sandbox.set_webhook_options(WebhookOptions(delay=5))
    send(sandbox, "ann@x.example")
    sandbox.reset()
    sandbox.flush_webhooks(1)
    assert receiver.posts == [] and sandbox.webhook_log == []


def test_a_bad_target_is_refused():
    with pytest.raises(ValueError, match="absolute http"):
        SandboxServer(webhooks={"nylas": ("/txmail/webhooks/nylas/", SECRET)})
    with pytest.raises(ValueError, match="needs a secret"):
        SandboxServer(webhooks={"nylas": ("http://127.0.0.1:8000/hook/", "")})
    with pytest.raises(ValueError, match="emits no webhooks for 'postmark'"):
        SandboxServer(webhooks={"postmark": ("http://127.0.0.1:8000/hook/", SECRET)})


# Duplicates and reordering, reproducible from the seed


def run_with(options, receiver, messages):
    """Send ``messages`` (recipient lists) one by one to a fresh sandbox;
    return each message's posts as (type, duplicate) in arrival order."""
    receiver.posts.clear()
    with SandboxServer(webhooks={"nylas": (receiver.url, SECRET)}, webhook_options=options) as sb:
        ids = [send(sb, *recipients, subject=f"m{n}") for n, recipients in enumerate(messages)]
        sb.flush_webhooks(TIMEOUT)
        log = sb.webhook_log
    return [
        [(d.type, d.duplicate) for d in log if d.payload["data"]["object"]["message"]["id"] == i]
        for i in ids
    ]


MESSAGES = [["ann@x.example", "bounce@x.example", "complaint@x.example"]] * 6


def test_duplicates_repeat_notifications_with_the_same_id_reproducibly(receiver):
    options = WebhookOptions(delay=0, duplicates=0.5, seed=3)
    first = run_with(options, receiver, MESSAGES)
    ids = [json.loads(body)["id"] for _, body in receiver.posts]
    assert run_with(options, receiver, MESSAGES) == first
    duplicated = [post for message in first for post in message if post[1]]
    assert 0 < len(duplicated) < 18
    assert len(ids) == 18 + len(duplicated) and len(set(ids)) == 18
    assert run_with(WebhookOptions(delay=0, duplicates=0.5, seed=4), receiver, MESSAGES) != first


def test_the_seed_decides_alike_for_an_app_on_another_port(receiver):
    # A test's live server listens on a new port each run; the plan must not move with it.
    options = WebhookOptions(delay=0, duplicates=0.5, seed=5)
    first = run_with(options, receiver, MESSAGES)
    elsewhere = Receiver()
    try:
        assert elsewhere.url != receiver.url
        assert run_with(options, elsewhere, MESSAGES) == first
    finally:
        elsewhere.close()


def test_reordering_shuffles_notifications_reproducibly(receiver):
    options = WebhookOptions(delay=0, reorder=True, reorder_window=0.3, seed=11)
    first = run_with(options, receiver, MESSAGES)
    assert run_with(options, receiver, MESSAGES) == first
    in_order = [(DELIVERED, False), (BOUNCED, False), (COMPLAINT, False)]
    assert all(sorted(message) == sorted(in_order) for message in first)
    assert any(message != in_order for message in first)
    assert run_with(FAST, receiver, MESSAGES) == [in_order] * 6


# Registration API (POST/GET /v3/webhooks)


def register(sandbox, **fields):
    body = {"trigger_types": [DELIVERED, BOUNCED], "description": "app"} | fields
    return requests.post(f"{sandbox.url}/v3/webhooks", json=body, headers=AUTH, timeout=TIMEOUT)


def test_a_registered_webhook_gets_its_own_secret_and_becomes_a_target(txmail_sandbox, receiver):
    response = register(txmail_sandbox, webhook_url=receiver.url)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"]
    data = body["data"]
    assert data["status"] == "active" and data["id"]
    assert data["webhook_url"] == receiver.url
    assert data["trigger_types"] == [DELIVERED, BOUNCED]
    assert len(data["webhook_secret"]) >= 32
    send(txmail_sandbox, "ann@x.example", "bounce@x.example", "complaint@x.example")
    txmail_sandbox.flush_webhooks(TIMEOUT)
    assert [n["type"] for n in receiver.notifications()] == [DELIVERED, BOUNCED]
    for headers, raw in receiver.posts:
        assert headers["X-Nylas-Signature"] == nylas_signature(raw, data["webhook_secret"])


def test_a_deleted_webhook_is_no_longer_listed_or_posted_to(txmail_sandbox, receiver):
    webhook_id = register(txmail_sandbox, webhook_url=receiver.url).json()["data"]["id"]
    deleted = requests.delete(
        f"{txmail_sandbox.url}/v3/webhooks/{webhook_id}", headers=AUTH, timeout=TIMEOUT
    )
    assert deleted.status_code == 200 and deleted.json()["data"] == {"status": "success"}
    listed = requests.get(f"{txmail_sandbox.url}/v3/webhooks", headers=AUTH, timeout=TIMEOUT)
    assert listed.json()["data"] == []
    send(txmail_sandbox, "ann@x.example")
    txmail_sandbox.flush_webhooks(TIMEOUT)
    assert receiver.posts == []
    again = requests.delete(
        f"{txmail_sandbox.url}/v3/webhooks/{webhook_id}", headers=AUTH, timeout=TIMEOUT
    )
    assert again.status_code == 404 and again.json()["error"]["type"] == "not_found_error"
    # The same URL may be registered anew.
    assert register(txmail_sandbox, webhook_url=receiver.url).status_code == 200


def test_listing_webhooks_leaves_the_secret_out(txmail_sandbox, receiver):
    created = register(txmail_sandbox, webhook_url=receiver.url).json()["data"]
    listed = requests.get(f"{txmail_sandbox.url}/v3/webhooks", headers=AUTH, timeout=TIMEOUT)
    assert listed.status_code == 200
    [webhook] = listed.json()["data"]
    assert webhook["id"] == created["id"] and "webhook_secret" not in webhook
    txmail_sandbox.reset()
    listed = requests.get(f"{txmail_sandbox.url}/v3/webhooks/", headers=AUTH, timeout=TIMEOUT)
    assert listed.json()["data"] == []


def test_registration_needs_the_challenge_answered(txmail_sandbox, receiver):
    receiver.challenge_answer = "not the challenge"
    response = register(txmail_sandbox, webhook_url=receiver.url)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "did not answer the challenge" in response.json()["error"]["message"]
    unreachable = register(txmail_sandbox, webhook_url="http://127.0.0.1:9/hook/")
    assert unreachable.status_code == 400
    assert txmail_sandbox.webhook_log == []


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"trigger_types": []}, "trigger_types is required"),
        ({"trigger_types": ["message.exploded"]}, "Unknown trigger_types: message.exploded"),
        ({"webhook_url": "ftp://app.example/hook"}, "webhook_url is required"),
        ({"webhook_url": None}, "webhook_url is required"),
        ({"description": 5}, "description must be a string"),
    ],
)
def test_registration_validates_its_fields(txmail_sandbox, receiver, fields, message):
    response = register(txmail_sandbox, **({"webhook_url": receiver.url} | fields))
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_registration_needs_the_api_key_and_a_url_of_its_own(txmail_sandbox, receiver):
    anonymous = requests.post(f"{txmail_sandbox.url}/v3/webhooks", json={}, timeout=TIMEOUT)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["type"] == "unauthorized"
    assert register(txmail_sandbox, webhook_url=receiver.url).status_code == 200
    again = register(txmail_sandbox, webhook_url=receiver.url)
    assert again.status_code == 400 and "exists already" in again.json()["error"]["message"]


# Command-line options


def test_webhook_flags_become_targets_and_options():
    options = {
        "webhook_urls": ["nylas=http://127.0.0.1:8000/txmail/webhooks/nylas/"],
        "webhook_secrets": ["nylas=s3cret"],
        "webhook_delay": 0.5,
        "webhook_duplicates": 0.2,
        "webhook_reorder": True,
        "webhook_seed": 9,
    }
    targets = webhook_targets_from_options(options, lambda provider: None)
    assert targets == {"nylas": ("http://127.0.0.1:8000/txmail/webhooks/nylas/", "s3cret")}
    assert webhook_options_from_options(options) == WebhookOptions(
        delay=0.5, duplicates=0.2, reorder=True, seed=9
    )
    from_settings = webhook_targets_from_options(
        {"webhook_urls": ["nylas=http://h/"]}, lambda provider: "from-settings"
    )
    assert from_settings == {"nylas": ("http://h/", "from-settings")}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"webhook_urls": ["nylas"]}, "takes PROVIDER=URL"),
        ({"webhook_urls": ["nylas=http://h/"]}, "needs a secret"),
        ({"webhook_secrets": ["nylas=s"]}, "has no --webhook-url"),
        ({"webhook_urls": ["nylas=http://h/", "nylas=http://i/"]}, "given twice"),
    ],
)
def test_bad_webhook_flags_are_explained(options, message):
    with pytest.raises(ValueError, match=message):
        webhook_targets_from_options(options, lambda provider: None)


def test_retries_are_spread_over_minutes_as_providers_do():
    # An app busy for a minute (a locked database, a deploy) still gets its events.
    defaults = WebhookOptions()
    retries = [defaults.retry_after(n) for n in range(1, defaults.max_attempts + 1)]
    assert retries == [60, 120, None]
    assert "retried after 60, 120 s" in defaults.describe()
    assert webhook_options_from_options({"webhook_retry_delay": 0.5}).retry_after(2) == 1.0


def test_bad_webhook_option_values_are_explained():
    with pytest.raises(ValueError, match="--webhook-duplicates must be between 0 and 1"):
        webhook_options_from_options({"webhook_duplicates": 1.5})
    with pytest.raises(ValueError, match="--webhook-delay"):
        webhook_options_from_options({"webhook_delay": -1.0})
    with pytest.raises(ValueError, match="--webhook-retry-delay"):
        webhook_options_from_options({"webhook_retry_delay": -1.0})


def test_the_command_line_sandbox_posts_to_the_webhook_url(receiver):
    process = start_module(
        "--port=0",
        f"--webhook-url=nylas={receiver.url}",
        f"--webhook-secret=nylas={SECRET}",
        "--webhook-delay=0",
    )
    try:
        line = read_first_line(process)
        assert f"webhooks: nylas → {receiver.url}" in line and SECRET not in line
        url = url_in(line)
        response = requests.post(
            f"{url}/v3/domains/acme.io/messages/send",
            json={"from": {"email": "a@acme.io"}, "to": [{"email": "bounce@x.example"}]},
            headers=AUTH,
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        deadline = time.monotonic() + TIMEOUT
        while not receiver.posts and time.monotonic() < deadline:
            time.sleep(0.02)
        [(headers, body)] = receiver.posts
        assert json.loads(body)["type"] == BOUNCED
        assert headers["X-Nylas-Signature"] == nylas_signature(body)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT)
