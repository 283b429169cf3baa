"""The sandbox's MailerLogic send endpoint, exercised over real HTTP on loopback."""

from __future__ import annotations

import base64
import signal

import pytest
import requests

from sandbox_support import read_first_line, start_module, url_in
from txmail_sandbox import DEFAULT_MAILERLOGIC_API_KEY, Fault, FaultPlan, SandboxServer

KEY = DEFAULT_MAILERLOGIC_API_KEY
AUTH = {"X-API-Key": KEY}
TIMEOUT = 10
INVITE = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


def message(**fields):
    payload = {
        "domain": "acme.io",
        "from": '"Acme" <hello@acme.io>',
        "to": '"Ann" <ann@example.com>',
        "subject": "Welcome",
        "text": "Hi Ann",
    }
    payload.update(fields)
    return {name: value for name, value in payload.items() if value is not None}


def send(http, sandbox, payload, headers=AUTH):
    return http.post(f"{sandbox.url}/api/v1/send", json=payload, headers=headers, timeout=TIMEOUT)


def assert_mailerlogic_error(response, status, error, mentions="", reason=None):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and mentions in body["message"]
    if reason is not None:
        assert body["reason"] == reason
    return body


def attachment(content, filename="a.txt", **extra):
    return {
        "filename": filename,
        "content": base64.b64encode(content).decode(),
        "contentType": "text/plain",
        "encoding": "base64",
        **extra,
    }


@pytest.mark.parametrize(
    "headers", [{}, {"X-API-Key": "wrong"}, {"Authorization": f"Bearer {KEY}"}]
)
def test_send_without_a_configured_key_is_forbidden(txmail_sandbox, http, headers):
    response = send(http, txmail_sandbox, message(), headers=headers)
    assert_mailerlogic_error(response, 403, "invalid_api_key", "X-API-Key")
    assert txmail_sandbox.messages == []
    assert KEY not in str(txmail_sandbox.requests)


def test_send_is_queued_and_stored(txmail_sandbox, http):
    payload = message(
        cc=["cc@example.com"],
        bcc=['"Audit" <audit@example.com>'],
        reply_to="help@acme.io",
        html="<p>Hi</p>",
        track_opens=True,
        track_clicks=False,
        headers={"X-Order": "42"},
        tag="welcome",
        stream_type="transactional",
        metadata={"user": 7},
        icalEvent=INVITE,
        attachments=[attachment(b"hello")],
    )
    response = send(http, txmail_sandbox, payload)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["to"] == '"Ann" <ann@example.com>' and body["status"] == "queued"
    assert body["submitted_at"].endswith("Z") and body["email_id"] and body["message"]
    [received] = txmail_sandbox.messages
    assert (received.provider, received.route, received.domain) == (
        "mailerlogic",
        "domain",
        "acme.io",
    )
    assert received.id == body["message_id"] and received.message_ids == (body["message_id"],)
    assert received.payload == payload
    [file] = received.attachments
    assert (file.filename, file.content_type, file.content) == ("a.txt", "text/plain", b"hello")


INVALID = {
    "not-an-object": ([], "body"),
    "to-an-array": (message(to=["a@example.com"]), "to"),
    "to-missing": (message(to=None), "to"),
    "to-two-recipients": (message(to="a@example.com, b@example.com"), "to"),
    "to-invalid": (message(to="ann"), "to"),
    "subject-missing": (message(subject=None), "subject"),
    "subject-empty": (message(subject=""), "subject"),
    "from-invalid": (message(**{"from": "Acme"}), "from"),
    "reply-to-two": (message(reply_to="a@acme.io, b@acme.io"), "reply_to"),
    "cc-not-array": (message(cc="c@example.com"), "cc"),
    "bcc-item-invalid": (message(bcc=["b@example.com", "x"]), "bcc[1]"),
    "track-opens-not-bool": (message(track_opens="yes"), "track_opens"),
    "headers-not-strings": (message(headers={"X-Order": 42}), "headers"),
    "tag-not-string": (message(tag=["a"]), "tag"),
    "stream-type-unknown": (message(stream_type="bulk"), "stream_type"),
    "metadata-not-object": (message(metadata=["x"]), "metadata"),
    "ical-not-a-calendar": (message(icalEvent="tomorrow at 10"), "icalEvent"),
    "attachment-without-filename": (
        message(attachments=[{"content": "aGk=", "encoding": "base64"}]),
        "attachments[0].filename",
    ),
    "attachment-bad-base64": (
        message(attachments=[attachment(b"") | {"content": "not base64!"}]),
        "attachments[0].content",
    ),
    "attachment-other-encoding": (
        message(attachments=[attachment(b"hi", encoding="quoted-printable")]),
        "attachments[0].encoding",
    ),
}


@pytest.mark.parametrize(("payload", "reason"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_message_is_refused_naming_the_field(txmail_sandbox, http, payload, reason):
    assert_mailerlogic_error(
        send(http, txmail_sandbox, payload), 400, "validation_error", reason=reason
    )
    assert txmail_sandbox.messages == []


def test_a_file_over_10_mb_is_refused(txmail_sandbox, http):
    big = attachment(b"x" * (10 * 1024 * 1024 + 1), "big.bin")
    body = assert_mailerlogic_error(
        send(http, txmail_sandbox, message(attachments=[big])), 400, "validation_error", "10 MB"
    )
    assert body["reason"] == "attachments[0].content"


def test_files_over_25_mb_together_are_refused(txmail_sandbox, http):
    files = [attachment(b"x" * (9 * 1024 * 1024), f"{i}.bin") for i in range(3)]
    response = send(http, txmail_sandbox, message(attachments=files))
    assert_mailerlogic_error(response, 400, "validation_error", "25 MB", reason="attachments")


def test_a_body_that_is_not_json_is_refused(txmail_sandbox, http):
    response = http.post(
        f"{txmail_sandbox.url}/api/v1/send",
        data=b"{oops",
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_mailerlogic_error(response, 400, "validation_error", "Invalid JSON", reason="body")


# Domains


@pytest.fixture
def verified(http):
    with SandboxServer(mailerlogic_verified_domains=["acme.io", "shop.example"]) as sandbox:
        yield sandbox


def test_an_unverified_domain_is_not_found(verified, http):
    response = send(http, verified, message(domain="other.example", **{"from": "a@other.example"}))
    assert_mailerlogic_error(response, 404, "domain_not_found", "other.example")
    assert verified.messages == []


def test_without_a_domain_the_first_verified_one_is_used(verified, http):
    assert send(http, verified, message(domain=None)).status_code == 200
    assert verified.messages[0].domain == "acme.io"


def test_without_a_domain_or_verified_ones_the_senders_domain_is_used(txmail_sandbox, http):
    payload = message(domain=None, **{"from": "hi@shop.example"})
    assert send(http, txmail_sandbox, payload).status_code == 200
    assert txmail_sandbox.messages[0].domain == "shop.example"


def test_a_sender_outside_the_domain_is_not_allowed(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(**{"from": "hi@elsewhere.example"}))
    assert_mailerlogic_error(response, 403, "sender_not_allowed", "acme.io")


def test_a_sender_at_a_subdomain_is_allowed(txmail_sandbox, http):
    assert send(http, txmail_sandbox, message(**{"from": "hi@mail.acme.io"})).status_code == 200


def test_without_from_the_domains_noreply_address_is_implied(txmail_sandbox, http):
    assert send(http, txmail_sandbox, message(**{"from": None})).status_code == 200


# Faults and inspection


def test_an_injected_fault_answers_with_mailerlogics_error_body(txmail_sandbox, http):
    txmail_sandbox.inject(
        Fault(status=500, provider="mailerlogic", error_type="upstream", message="boom")
    )
    txmail_sandbox.inject(Fault(status=500, provider="mailtrap"))
    assert_mailerlogic_error(send(http, txmail_sandbox, message()), 500, "upstream", "boom")
    assert send(http, txmail_sandbox, message()).status_code == 200
    assert len(txmail_sandbox.pending_faults) == 1


@pytest.mark.parametrize(("kind", "error"), [("503", "internal_error"), ("429", "rate_limited")])
def test_the_fault_plan_applies_to_mailerlogic_sends(http, kind, error):
    with SandboxServer(faults=FaultPlan(seed=3, rate=1.0, kinds={kind: 1})) as sandbox:
        assert_mailerlogic_error(send(http, sandbox, message()), int(kind), error, "seed 3")
        assert sandbox.messages == [] and sandbox.fault_stats[kind] == 1


def test_a_slow_answer_still_stores_the_message(http):
    with SandboxServer(faults=FaultPlan(seed=1, rate=1.0, kinds={"slow": 1}, slow=0.2)) as sandbox:
        response = send(http, sandbox, message())
        assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.2
        assert sandbox.requests[0].fault == "slow" and len(sandbox.messages) == 1


def test_unknown_paths_answer_in_mailerlogics_shape(txmail_sandbox, http):
    response = http.post(f"{txmail_sandbox.url}/api/v1/nope", timeout=TIMEOUT)
    assert_mailerlogic_error(response, 404, "not_found")


def test_the_messages_endpoint_lists_mailerlogic_messages(txmail_sandbox, http):
    send(http, txmail_sandbox, message(attachments=[attachment(b"hello")]))
    [listed] = http.get(f"{txmail_sandbox.url}/_sandbox/messages", timeout=TIMEOUT).json()
    assert listed["provider"] == "mailerlogic" and listed["domain"] == "acme.io"
    assert "content" not in listed["payload"]["attachments"][0]


def test_the_standalone_sandbox_accepts_the_default_keys():
    process = start_module("--port", "0")
    try:
        url = url_in(read_first_line(process))
        with requests.Session() as http:
            ml = http.post(f"{url}/api/v1/send", json=message(), headers=AUTH, timeout=TIMEOUT)
            mt = http.post(
                f"{url}/api/send",
                json={
                    "from": {"email": "a@acme.io"},
                    "to": [{"email": "b@example.com"}],
                    "subject": "S",
                    "text": "T",
                },
                headers={"Api-Token": "sandbox-mailtrap-token"},
                timeout=TIMEOUT,
            )
        assert (ml.status_code, mt.status_code) == (200, 200)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == 0, stderr
    assert "POST /api/v1/send 200" in stdout and "POST /api/send 200" in stdout
