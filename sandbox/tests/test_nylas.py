"""The sandbox's Nylas API, exercised over real HTTP on loopback.

These tests need neither Django nor django-txmail."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests
from urllib3 import encode_multipart_formdata

from sandbox_support import (
    API_KEY,
    AUTH,
    PROJECT,
    TIMEOUT,
    assert_nylas_error,
    message,
    read_first_line,
    send,
    send_url,
    start_module,
    url_in,
    wait_for,
)
from txmail_sandbox import Fault, SandboxServer

MB = 1024 * 1024


def grant_message(**fields):
    return message(**{"from": [{"email": "ann@gmail.com", "name": "Ann"}], **fields})


def send_multipart(http, sandbox, payload, files, route="domain", key=None, boundary=None):
    """files: [(part name, filename, content type, bytes)]"""
    fields = [("message", (None, json.dumps(payload), "application/json"))]
    fields += [(name, (filename, content, ctype)) for name, filename, ctype, content in files]
    body, content_type = encode_multipart_formdata(fields, boundary=boundary)
    headers = {**AUTH, "Content-Type": content_type, **({"Idempotency-Key": key} if key else {})}
    return http.post(send_url(sandbox, route), data=body, headers=headers, timeout=TIMEOUT)


def attachment(content, filename="notes.txt", content_type="text/plain", **extra):
    return {
        "content": base64.b64encode(content).decode(),
        "filename": filename,
        "content_type": content_type,
        **extra,
    }


# Authentication


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-key", "Basic c2FuZGJveDprZXk=", "Bearer ", API_KEY],
    ids=["missing", "unknown-key", "basic-scheme", "empty-token", "no-scheme"],
)
def test_send_without_a_configured_api_key_is_unauthorized(txmail_sandbox, http, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = http.post(send_url(txmail_sandbox), json=message(), headers=headers, timeout=TIMEOUT)
    assert_nylas_error(response, 401, "unauthorized")
    assert txmail_sandbox.messages == []


def test_any_configured_api_key_is_accepted(http):
    with SandboxServer(nylas_api_keys={"key-one", "key-two"}) as sandbox:
        for key in ("key-one", "key-two"):
            response = http.post(
                send_url(sandbox),
                json=message(),
                headers={"Authorization": f"Bearer {key}"},
                timeout=TIMEOUT,
            )
            assert response.status_code == 200, response.text
        assert len(sandbox.messages) == 2


# Validation

INVALID_MESSAGES = {
    "body-not-an-object": ("domain", [message()], "JSON object"),
    "domain-from-missing": ("domain", message(**{"from": None}), "from is required"),
    "domain-from-array": (
        "domain",
        message(**{"from": [{"email": "hello@acme.io"}]}),
        "not an array",
    ),
    "grant-from-object": (
        "grant",
        grant_message(**{"from": {"email": "ann@gmail.com"}}),
        "exactly one",
    ),
    "grant-from-two": (
        "grant",
        grant_message(**{"from": [{"email": "a@gmail.com"}, {"email": "b@gmail.com"}]}),
        "exactly one",
    ),
    "grant-from-bad-email": ("grant", grant_message(**{"from": [{"email": "ann"}]}), "from[0]"),
    "to-missing": ("domain", message(to=None), "to is required"),
    "to-empty": ("domain", message(to=[]), "to must not be empty"),
    "to-not-array": ("domain", message(to={"email": "ann@example.com"}), "to must be an array"),
    "to-email-invalid": ("domain", message(to=[{"email": "not an address"}]), "to[0].email"),
    "to-email-missing": ("domain", message(to=[{"name": "Ann"}]), "to[0].email is required"),
    "to-name-not-string": (
        "domain",
        message(to=[{"email": "ann@example.com", "name": 7}]),
        "to[0].name",
    ),
    "cc-email-invalid": (
        "domain",
        message(cc=[{"email": "bob@example.com"}, {"email": "bob@"}]),
        "cc[1].email",
    ),
    "bcc-not-array": ("domain", message(bcc="eve@example.com"), "bcc must be an array"),
    "reply-to-item-not-object": ("domain", message(reply_to=["x@example.com"]), "reply_to[0]"),
    "subject-not-string": ("domain", message(subject=["Hi"]), "subject"),
    "metadata-too-many-keys": (
        "domain",
        message(metadata={f"k{i}": "v" for i in range(51)}),
        "metadata has 51 keys",
    ),
    "metadata-value-not-string": ("domain", message(metadata={"order": 42}), "metadata.order"),
    "metadata-value-too-long": ("domain", message(metadata={"note": "x" * 501}), "metadata.note"),
    "custom-headers-not-list": (
        "domain",
        message(custom_headers={"X-Campaign": "spring"}),
        "custom_headers",
    ),
    "custom-header-without-value": (
        "domain",
        message(custom_headers=[{"name": "X-Campaign"}]),
        "custom_headers[0].value",
    ),
    "send-at-too-soon": ("grant", grant_message(send_at=int(time.time()) + 10), "send_at"),
    "send-at-too-far": ("grant", grant_message(send_at=int(time.time()) + 31 * 86400), "send_at"),
    "send-at-not-integer": ("domain", message(send_at="tomorrow"), "send_at"),
    "tracking-label-too-long": (
        "domain",
        message(tracking_options={"opens": True, "label": "x" * 2049}),
        "tracking_options.label",
    ),
    "tracking-opens-not-bool": (
        "domain",
        message(tracking_options={"opens": "yes"}),
        "tracking_options.opens",
    ),
    "template-without-id": ("domain", message(template={"variables": {}}), "template.id"),
    "template-variables-not-object": (
        "domain",
        message(template={"id": "tpl", "variables": []}),
        "template.variables",
    ),
    "attachment-bad-base64": (
        "domain",
        message(attachments=[{"content": "not base64!", "filename": "a", "content_type": "x/y"}]),
        "attachments[0].content",
    ),
    "attachment-without-filename": (
        "domain",
        message(attachments=[{"content": "aGk=", "content_type": "text/plain"}]),
        "attachments[0].filename",
    ),
    "attachment-without-content-type": (
        "domain",
        message(attachments=[{"content": "aGk=", "filename": "a.txt"}]),
        "attachments[0].content_type",
    ),
    "attachment-bad-disposition": (
        "domain",
        message(attachments=[attachment(b"hi", content_disposition="sideways")]),
        "attachments[0].content_disposition",
    ),
}


@pytest.mark.parametrize(
    "route, payload, mentions", INVALID_MESSAGES.values(), ids=INVALID_MESSAGES.keys()
)
def test_invalid_message_is_refused_naming_the_field(
    txmail_sandbox, http, route, payload, mentions
):
    response = send(http, txmail_sandbox, payload, route=route)
    assert_nylas_error(response, 400, "invalid_request_error", mentions)
    assert txmail_sandbox.messages == []


def test_malformed_json_is_refused(txmail_sandbox, http):
    response = http.post(
        send_url(txmail_sandbox),
        data=b'{"to": [',
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_nylas_error(response, 400, "invalid_request_error", "invalid JSON")


def test_body_that_is_neither_json_nor_multipart_is_refused(txmail_sandbox, http):
    response = http.post(
        send_url(txmail_sandbox),
        data=json.dumps(message()),
        headers={**AUTH, "Content-Type": "text/plain"},
        timeout=TIMEOUT,
    )
    assert_nylas_error(response, 400, "invalid_request_error", "Content-Type")


def test_every_documented_field_is_accepted_when_valid(txmail_sandbox, http):
    txmail_sandbox.add_template("nylas", "welcome", subject="Hi {{name}}", html="{{name}}")
    payload = message(
        cc=[{"email": "bob@example.com"}],
        bcc=[{"email": "eve@example.com", "name": "Eve"}],
        reply_to=[{"email": "support@acme.io"}],
        is_plaintext=False,
        metadata={f"k{i}": "v" * 500 for i in range(50)},
        custom_headers=[{"name": "X-Campaign", "value": "spring"}],
        send_at=int(time.time()) + 30 * 86400,
        reply_to_message_id="<abc@mail.acme.io>",
        tracking_options={"opens": True, "links": False, "label": "x" * 2048},
        template={"id": "welcome", "strict": False, "variables": {"name": "Ann"}},
        attachments=[attachment(b"hello\n")],
    )
    response = send(http, txmail_sandbox, payload)
    assert response.status_code == 200, response.text
    assert txmail_sandbox.messages[0].payload == payload


# Sending: response shapes and what is stored


def test_domain_route_send_answers_with_the_nylas_message(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(cc=[{"email": "bob@example.com"}]))

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"request_id", "data"}
    data = body["data"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", data["id"])
    assert data["object"] == "message"
    assert data["from"] == [{"name": "Acme", "email": "hello@acme.io"}]
    assert data["to"] == [{"name": "Ann", "email": "ann@example.com"}]
    assert data["cc"] == [{"name": "", "email": "bob@example.com"}]
    assert data["bcc"] == data["reply_to"] == data["attachments"] == []
    assert data["subject"] == "Welcome"
    assert data["body"] == "<p>Hi <b>Ann</b> &amp; welcome</p>"
    assert data["snippet"] == "Hi Ann & welcome"
    assert data["tracking_options"] == {"opens": False, "links": False, "label": ""}

    [stored] = txmail_sandbox.messages
    assert stored.id == data["id"]
    assert (stored.provider, stored.route, stored.domain, stored.grant_id) == (
        "nylas",
        "domain",
        "acme.io",
        None,
    )
    assert stored.transport == "json"
    assert stored.payload == message(cc=[{"email": "bob@example.com"}])
    assert stored.idempotency_key is None
    assert stored.schedule_id is None
    assert stored.received_at.tzinfo is not None


def test_grant_route_send_answers_with_grant_id_and_message(txmail_sandbox, http):
    response = send(http, txmail_sandbox, grant_message(), route="grant", target="grant-42")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"request_id", "grant_id", "data"}
    assert body["grant_id"] == "grant-42"
    assert body["data"]["from"] == [{"name": "Ann", "email": "ann@gmail.com"}]
    assert "schedule_id" not in body["data"]
    [stored] = txmail_sandbox.messages
    assert (stored.route, stored.grant_id, stored.domain) == ("grant", "grant-42", None)


def test_grant_route_without_from_sends_from_the_grant(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(**{"from": None}), route="grant")
    assert response.status_code == 200, response.text
    assert response.json()["data"]["from"] == [
        {"name": "", "email": "grant-1@grants.sandbox.invalid"}
    ]


def test_scheduled_grant_send_gets_a_schedule_id(txmail_sandbox, http):
    send_at = int(time.time()) + 3600
    response = send(http, txmail_sandbox, grant_message(send_at=send_at), route="grant")

    data = response.json()["data"]
    assert data["schedule_id"]
    assert data["send_at"] == send_at
    assert txmail_sandbox.messages[0].schedule_id == data["schedule_id"]


def test_scheduled_domain_send_has_no_schedule_id(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(send_at=int(time.time()) + 3600))
    assert response.status_code == 200
    assert "schedule_id" not in response.json()["data"]
    assert txmail_sandbox.messages[0].schedule_id is None


# Scheduled sends (grant route schedules API)

PENDING = {"code": "pending", "description": "schedule send awaiting send at time"}


def schedule(http, sandbox, grant="grant-1", send_at=None):
    payload = grant_message(send_at=send_at or int(time.time()) + 3600)
    response = send(http, sandbox, payload, route="grant", target=grant)
    assert response.status_code == 200, response.text
    return response.json()["data"]["schedule_id"]


def schedules_url(sandbox, grant="grant-1", schedule_id=None):
    url = f"{sandbox.url}/v3/grants/{grant}/messages/schedules"
    return f"{url}/{schedule_id}" if schedule_id else url


def test_schedules_list_the_grants_scheduled_sends(txmail_sandbox, http):
    first = schedule(http, txmail_sandbox)
    second = schedule(http, txmail_sandbox)
    schedule(http, txmail_sandbox, grant="grant-2")
    send(http, txmail_sandbox, grant_message(), route="grant")

    response = http.get(schedules_url(txmail_sandbox), headers=AUTH, timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["request_id"]
    assert response.json()["data"] == [
        {"schedule_id": first, "status": PENDING},
        {"schedule_id": second, "status": PENDING},
    ]


def test_one_schedule_is_returned_by_id(txmail_sandbox, http):
    schedule_id = schedule(http, txmail_sandbox)
    response = http.get(schedules_url(txmail_sandbox, schedule_id=schedule_id), headers=AUTH)
    assert response.status_code == 200
    assert response.json()["data"] == {"schedule_id": schedule_id, "status": PENDING}


def test_cancelling_a_schedule_marks_its_message_cancelled(txmail_sandbox, http):
    schedule_id = schedule(http, txmail_sandbox)
    url = schedules_url(txmail_sandbox, schedule_id=schedule_id)
    before = int(time.time())
    response = http.delete(url, headers=AUTH, timeout=TIMEOUT)

    assert response.status_code == 202
    assert response.json()["request_id"]
    assert response.json()["data"]["message"]
    shown = http.get(url, headers=AUTH, timeout=TIMEOUT).json()["data"]
    assert shown["status"]["code"] == "cancelled"
    assert before <= shown["close_time"] <= time.time()
    [stored] = txmail_sandbox.messages
    assert stored.cancelled
    [listed] = http.get(f"{txmail_sandbox.url}/_sandbox/messages", timeout=TIMEOUT).json()
    assert listed["cancelled"] is True
    assert listed["cancelled_at"]


def test_cancelling_a_cancelled_schedule_is_not_found(txmail_sandbox, http):
    url = schedules_url(txmail_sandbox, schedule_id=schedule(http, txmail_sandbox))
    assert http.delete(url, headers=AUTH, timeout=TIMEOUT).status_code == 202
    again = http.delete(url, headers=AUTH, timeout=TIMEOUT)
    assert_nylas_error(again, 404, "not_found_error", "already cancelled")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_unknown_or_another_grants_schedule_is_not_found(txmail_sandbox, http, method):
    theirs = schedule(http, txmail_sandbox, grant="grant-2")
    for schedule_id in ["no-such-schedule", theirs]:
        url = schedules_url(txmail_sandbox, schedule_id=schedule_id)
        response = http.request(method, url, headers=AUTH, timeout=TIMEOUT)
        assert_nylas_error(response, 404, "not_found_error", schedule_id)
    assert not txmail_sandbox.messages[0].cancelled


def test_schedules_need_the_api_key(txmail_sandbox, http):
    schedule_id = schedule(http, txmail_sandbox)
    one = schedules_url(txmail_sandbox, schedule_id=schedule_id)
    for method, url in [("GET", schedules_url(txmail_sandbox)), ("GET", one), ("DELETE", one)]:
        response = http.request(method, url, timeout=TIMEOUT)
        assert_nylas_error(response, 401, "unauthorized")
    assert not txmail_sandbox.messages[0].cancelled


def test_schedule_past_its_send_at_succeeded_and_cannot_be_cancelled(http):
    now = [time.time()]
    with SandboxServer(wall_clock=lambda: now[0]) as sandbox:
        send_at = int(now[0]) + 120
        url = schedules_url(sandbox, schedule_id=schedule(http, sandbox, send_at=send_at))
        now[0] = send_at + 1

        shown = http.get(url, headers=AUTH, timeout=TIMEOUT).json()["data"]
        assert shown["status"] == {"code": "success", "description": "schedule send succeeded"}
        assert shown["close_time"] == send_at
        assert_nylas_error(
            http.delete(url, headers=AUTH, timeout=TIMEOUT), 400, "invalid_request_error"
        )
        assert not sandbox.messages[0].cancelled


def test_ids_and_request_ids_are_unique_per_request(txmail_sandbox, http):
    bodies = [send(http, txmail_sandbox, message()).json() for _ in range(5)]
    assert len({body["request_id"] for body in bodies}) == 5
    assert len({body["data"]["id"] for body in bodies}) == 5


def test_json_attachments_are_stored_byte_exact(txmail_sandbox, http):
    binary = bytes(range(256)) * 4
    payload = message(
        attachments=[
            attachment(binary, "data.bin", "application/octet-stream"),
            attachment(b"\x89PNG", "logo.png", "image/png", content_id="logo"),
        ]
    )
    response = send(http, txmail_sandbox, payload)

    assert response.json()["data"]["attachments"] == [
        {
            "content_type": "application/octet-stream",
            "filename": "data.bin",
            "content_id": None,
            "content_disposition": "attachment",
            "size": 1024,
        },
        {
            "content_type": "image/png",
            "filename": "logo.png",
            "content_id": "logo",
            "content_disposition": "inline",
            "size": 4,
        },
    ]
    first, second = txmail_sandbox.messages[0].attachments
    assert first.content == binary
    assert (second.content, second.size) == (b"\x89PNG", 4)


def test_base64_with_line_breaks_is_accepted(txmail_sandbox, http):
    encoded = base64.encodebytes(b"x" * 200).decode()
    payload = message(attachments=[{"content": encoded, "filename": "x", "content_type": "a/b"}])
    assert send(http, txmail_sandbox, payload).status_code == 200
    assert txmail_sandbox.messages[0].attachments[0].content == b"x" * 200


# Multipart


def test_multipart_send_carries_a_5_mb_attachment_byte_exact(txmail_sandbox, http):
    content = os.urandom(5 * MB)
    payload = message()
    response = send_multipart(
        http, txmail_sandbox, payload, [("file0", "report.pdf", "application/pdf", content)]
    )

    assert response.status_code == 200, response.text
    assert response.json()["data"]["attachments"] == [
        {
            "content_type": "application/pdf",
            "filename": "report.pdf",
            "content_id": None,
            "content_disposition": "attachment",
            "size": 5 * MB,
        }
    ]
    [stored] = txmail_sandbox.messages
    assert stored.transport == "multipart"
    assert stored.payload == payload
    assert stored.attachments[0].content == content


def test_multipart_part_named_by_content_id_is_inline(txmail_sandbox, http):
    response = send_multipart(
        http, txmail_sandbox, message(), [("logo", "logo.png", "image/png", b"\x89PNG")]
    )
    [summary] = response.json()["data"]["attachments"]
    assert (summary["content_id"], summary["content_disposition"]) == ("logo", "inline")


def test_multipart_inline_image_in_a_file_part_arrives_as_a_plain_attachment(txmail_sandbox, http):
    # Nylas takes a part's name as its Content-ID: an image sent as "file0" loses
    # its cid: link, whatever the HTML says.
    payload = message(body='<img src="cid:logo">')
    response = send_multipart(
        http, txmail_sandbox, payload, [("file0", "logo.png", "image/png", b"\x89PNG")]
    )

    assert response.status_code == 200, response.text
    [logo] = txmail_sandbox.messages[0].attachments
    assert (logo.filename, logo.content_type, logo.content) == ("logo.png", "image/png", b"\x89PNG")
    assert (logo.content_id, logo.content_disposition) == (None, "attachment")


def test_multipart_files_come_after_attachments_sent_inline_in_the_message(txmail_sandbox, http):
    payload = message(attachments=[attachment(b"small", "a.txt", content_id="note")])
    files = [
        ("logo", "logo.png", "image/png", b"png"),
        ("file1", "upload.bin", "application/octet-stream", b"pdf"),
    ]
    response = send_multipart(http, txmail_sandbox, payload, files)

    assert response.status_code == 200, response.text
    got = [
        (a.filename, a.content_id, a.content_disposition, a.content)
        for a in txmail_sandbox.messages[0].attachments
    ]
    assert got == [
        ("a.txt", "note", "inline", b"small"),
        ("logo.png", "logo", "inline", b"png"),
        ("upload.bin", None, "attachment", b"pdf"),
    ]


def test_multipart_attachment_entry_without_content_is_refused(txmail_sandbox, http):
    # The files of a multipart request are its parts; an entry describing one is not
    # how Nylas's SDKs send them (they drop "attachments" from the message part).
    payload = message(
        attachments=[{"filename": "logo.png", "content_type": "image/png", "content_id": "logo"}]
    )
    files = [("logo", "logo.png", "image/png", b"png")]
    response = send_multipart(http, txmail_sandbox, payload, files)
    assert_nylas_error(response, 400, "invalid_request_error", "attachments[0].content")
    assert txmail_sandbox.messages == []


def test_multipart_without_a_message_part_is_refused(txmail_sandbox, http):
    body, content_type = encode_multipart_formdata([("file0", ("a.txt", b"hi", "text/plain"))])
    response = http.post(
        send_url(txmail_sandbox),
        data=body,
        headers={**AUTH, "Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert_nylas_error(response, 400, "invalid_request_error", "'message' part")


def test_multipart_truncated_body_is_refused(txmail_sandbox, http):
    body, content_type = encode_multipart_formdata(
        [("message", (None, json.dumps(message()), "application/json"))]
    )
    response = http.post(
        send_url(txmail_sandbox),
        data=body[:-10],
        headers={**AUTH, "Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert_nylas_error(response, 400, "invalid_request_error", "truncated")


def test_streamed_chunked_upload_is_accepted(txmail_sandbox, http):
    content = os.urandom(2 * MB + 3)
    body, content_type = encode_multipart_formdata(
        [
            ("message", (None, json.dumps(message()), "application/json")),
            ("file0", ("big.bin", content, "application/octet-stream")),
        ]
    )

    def stream():
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = http.post(
        send_url(txmail_sandbox),
        data=stream(),
        headers={**AUTH, "Content-Type": content_type},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200, response.text
    assert txmail_sandbox.requests[-1].headers["Transfer-Encoding"] == "chunked"
    assert txmail_sandbox.messages[0].attachments[0].content == content


# Size limits


def padded_json(size):
    """A valid message whose JSON body is exactly ``size`` bytes."""
    payload = message(body="")
    padding = size - len(json.dumps(payload).encode())
    payload["body"] = "x" * padding
    data = json.dumps(payload).encode()
    assert len(data) == size
    return data


def post_json_bytes(http, sandbox, data):
    headers = {**AUTH, "Content-Type": "application/json"}
    return http.post(send_url(sandbox), data=data, headers=headers, timeout=TIMEOUT)


def test_json_request_of_3_mb_is_accepted(txmail_sandbox, http):
    response = post_json_bytes(http, txmail_sandbox, padded_json(3 * MB))
    assert response.status_code == 200, response.text[:200]


def test_json_request_over_3_mb_is_refused_with_a_hint_to_use_multipart(txmail_sandbox, http):
    response = post_json_bytes(http, txmail_sandbox, padded_json(3 * MB + 1))

    assert_nylas_error(response, 400, "invalid_request_error", "multipart/form-data")
    assert txmail_sandbox.messages == []
    # The refused body was drained: the same connection serves the next request.
    assert send(http, txmail_sandbox, message()).status_code == 200


def test_multipart_request_over_25_mb_is_refused(txmail_sandbox, http):
    payload = json.dumps(message())
    overhead = len(
        encode_multipart_formdata(
            [
                ("message", (None, payload, "application/json")),
                ("file0", ("big.bin", b"", "application/octet-stream")),
            ],
            boundary="b" * 32,
        )[0]
    )
    content = b"\0" * (25 * MB + 1 - overhead)
    body, content_type = encode_multipart_formdata(
        [
            ("message", (None, payload, "application/json")),
            ("file0", ("big.bin", content, "application/octet-stream")),
        ],
        boundary="b" * 32,
    )
    assert len(body) == 25 * MB + 1
    headers = {**AUTH, "Content-Type": content_type}
    response = http.post(send_url(txmail_sandbox), data=body, headers=headers, timeout=TIMEOUT)

    assert_nylas_error(response, 400, "invalid_request_error", "25 MB")
    assert txmail_sandbox.messages == []
    assert send(http, txmail_sandbox, message()).status_code == 200


def test_chunked_json_over_3_mb_is_refused(txmail_sandbox, http):
    data = padded_json(3 * MB + 10)
    response = http.post(
        send_url(txmail_sandbox),
        data=iter([data[:MB], data[MB:]]),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_nylas_error(response, 400, "invalid_request_error", "3 MB")
    assert send(http, txmail_sandbox, message()).status_code == 200


# Idempotency


def test_same_key_and_payload_replays_the_cached_response(txmail_sandbox, http):
    first = send(http, txmail_sandbox, message(), key="order-1")
    second = send(http, txmail_sandbox, message(), key="order-1")

    assert first.status_code == second.status_code == 200
    assert "Idempotent-Response" not in first.headers
    assert second.headers["Idempotent-Response"] == "true"
    assert second.content == first.content
    [stored] = txmail_sandbox.messages
    assert stored.idempotency_key == "order-1"


def test_replay_compares_meaning_not_bytes(txmail_sandbox, http):
    payload = message()
    first = send(http, txmail_sandbox, payload, key="k")
    reordered = json.dumps(dict(reversed(list(payload.items()))), indent=2)
    second = http.post(
        send_url(txmail_sandbox),
        data=reordered,
        headers={**AUTH, "Idempotency-Key": "k", "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert second.headers.get("Idempotent-Response") == "true"
    assert second.content == first.content

    files = [("file0", "a.pdf", "application/pdf", b"%PDF")]
    one = send_multipart(http, txmail_sandbox, payload, files, key="m", boundary="a" * 20)
    two = send_multipart(http, txmail_sandbox, payload, files, key="m", boundary="z" * 20)
    assert two.headers.get("Idempotent-Response") == "true"
    assert two.content == one.content
    assert len(txmail_sandbox.messages) == 2


def test_same_key_with_different_payload_is_an_invalid_idempotent_request(txmail_sandbox, http):
    send(http, txmail_sandbox, message(subject="One"), key="k")
    response = send(http, txmail_sandbox, message(subject="Two"), key="k")
    assert_nylas_error(response, 409, "api.invalid_idempotent_request")
    assert len(txmail_sandbox.messages) == 1


def test_json_and_multipart_forms_of_one_message_are_different_payloads(txmail_sandbox, http):
    send(http, txmail_sandbox, message(), key="k")
    response = send_multipart(http, txmail_sandbox, message(), [], key="k")
    assert_nylas_error(response, 409, "api.invalid_idempotent_request")


def test_domain_route_key_reused_for_another_domain_collides(txmail_sandbox, http):
    send(http, txmail_sandbox, message(), target="acme.io", key="k")
    response = send(http, txmail_sandbox, message(), target="other.io", key="k")
    assert_nylas_error(response, 409, "api.invalid_idempotent_request")


def test_grant_route_keys_are_scoped_per_grant(txmail_sandbox, http):
    one = send(http, txmail_sandbox, grant_message(), "grant", "grant-1", key="k")
    two = send(http, txmail_sandbox, grant_message(), "grant", "grant-2", key="k")
    domain = send(http, txmail_sandbox, message(), key="k")
    again = send(http, txmail_sandbox, grant_message(), "grant", "grant-1", key="k")

    assert [r.status_code for r in (one, two, domain, again)] == [200, 200, 200, 200]
    assert "Idempotent-Response" not in two.headers
    assert "Idempotent-Response" not in domain.headers
    assert again.headers["Idempotent-Response"] == "true"
    assert again.content == one.content
    assert len(txmail_sandbox.messages) == 3


def test_errors_are_cached_under_the_key_too(txmail_sandbox, http):
    invalid = message(to=[])
    first = send(http, txmail_sandbox, invalid, key="k")
    second = send(http, txmail_sandbox, invalid, key="k")
    corrected = send(http, txmail_sandbox, message(), key="k")

    assert_nylas_error(first, 400, "invalid_request_error")
    assert second.headers["Idempotent-Response"] == "true"
    assert (second.status_code, second.content) == (400, first.content)
    assert_nylas_error(corrected, 409, "api.invalid_idempotent_request")
    assert txmail_sandbox.messages == []


def test_idempotency_key_over_256_characters_is_refused(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(), key="k" * 257)
    assert_nylas_error(response, 400, "api.invalid_idempotency_key", "256")
    assert send(http, txmail_sandbox, message(), key="k" * 256).status_code == 200


def test_same_key_while_the_first_is_being_processed_is_a_concurrent_request(http):
    # The latency is processing time: the first request's key is in flight
    # all along, so whichever of two concurrent attempts comes second gets 409.
    with SandboxServer(latency=1.0) as sandbox:
        results = []

        def attempt():
            with requests.Session() as session:
                results.append(send(session, sandbox, message(), key="k"))

        threads = [threading.Thread(target=attempt) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(TIMEOUT)
        accepted, conflict = sorted(results, key=lambda response: response.status_code)
        after = send(http, sandbox, message(), key="k")

        assert accepted.status_code == 200
        assert_nylas_error(conflict, 409, "api.concurrent_idempotent_request")
        assert after.headers["Idempotent-Response"] == "true"
        assert after.content == accepted.content
        assert len(sandbox.messages) == 1


def test_same_key_while_the_first_answer_is_delayed_replays_the_accepted_message(txmail_sandbox):
    # Once the message is accepted and cached the provider has finished; a
    # retry gets the result although the first answer is still on its way.
    txmail_sandbox.inject(Fault(delay_after_accept=1.0))
    results = {}

    def first_attempt():
        with requests.Session() as session:
            results["first"] = send(session, txmail_sandbox, message(), key="k")

    thread = threading.Thread(target=first_attempt)
    thread.start()
    [accepted] = wait_for(lambda: txmail_sandbox.messages)
    with requests.Session() as session:
        during = send(session, txmail_sandbox, message(), key="k")
    assert "first" not in results
    thread.join(TIMEOUT)

    assert during.status_code == 200
    assert during.headers["Idempotent-Response"] == "true"
    assert during.json()["data"]["id"] == accepted.id
    assert results["first"].content == during.content
    assert len(txmail_sandbox.messages) == 1


def test_retry_after_a_client_timeout_replays_the_accepted_message(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(delay_after_accept=2.0))
    with pytest.raises(requests.ReadTimeout):
        send(http, txmail_sandbox, message(), key="k", timeout=0.2)
    [accepted] = txmail_sandbox.messages

    retry = send(http, txmail_sandbox, message(), key="k")
    assert retry.status_code == 200
    assert retry.headers["Idempotent-Response"] == "true"
    assert retry.json()["data"]["id"] == accepted.id
    assert len(txmail_sandbox.messages) == 1


def test_cached_responses_expire_after_the_ttl(http):
    with SandboxServer(idempotency_ttl=0.3) as sandbox:
        send(http, sandbox, message(), key="k")
        time.sleep(0.4)
        response = send(http, sandbox, message(), key="k")
        assert "Idempotent-Response" not in response.headers
        assert len(sandbox.messages) == 2


# Faults and latency


def test_status_fault_answers_with_the_nylas_error_envelope(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=503), times=2)
    responses = [send(http, txmail_sandbox, message()) for _ in range(3)]

    assert [r.status_code for r in responses] == [503, 503, 200]
    assert_nylas_error(responses[0], 503, "internal_error")
    assert len(txmail_sandbox.messages) == 1


def test_rate_limit_fault_carries_retry_after(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=429, retry_after=7))
    response = send(http, txmail_sandbox, message())
    assert_nylas_error(response, 429, "rate_limit_error")
    assert response.headers["Retry-After"] == "7"


def test_fault_type_and_message_can_be_chosen(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=429, error_type="nylas_rate_limit_exceeded", message="slow"))
    response = send(http, txmail_sandbox, message())
    assert_nylas_error(response, 429, "nylas_rate_limit_exceeded", "slow")


def test_status_fault_is_not_cached_so_a_retry_with_the_key_goes_through(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=502))
    first = send(http, txmail_sandbox, message(), key="k")
    retry = send(http, txmail_sandbox, message(), key="k")
    assert (first.status_code, retry.status_code) == (502, 200)
    assert "Idempotent-Response" not in retry.headers
    assert len(txmail_sandbox.messages) == 1


def test_fault_applies_only_to_matching_route(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=500, provider="nylas", route="grant"))
    assert send(http, txmail_sandbox, message()).status_code == 200
    assert send(http, txmail_sandbox, grant_message(), route="grant").status_code == 500


def test_delay_fault_waits_for_an_accepted_message_only(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(delay_after_accept=0.3))
    assert send(http, txmail_sandbox, message(to=[])).status_code == 400
    assert len(txmail_sandbox.pending_faults) == 1

    started = time.monotonic()
    assert send(http, txmail_sandbox, message()).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert txmail_sandbox.pending_faults == []


@pytest.mark.parametrize(
    "arguments",
    [{}, {"status": 503, "delay_after_accept": 1}, {"status": 200}, {"delay_after_accept": -1}],
    ids=["no-effect", "two-effects", "success-status", "negative-delay"],
)
def test_fault_needs_exactly_one_valid_effect(arguments):
    with pytest.raises(ValueError):
        Fault(**arguments)


def test_latency_is_added_to_every_send(http):
    with SandboxServer(latency=0.2) as sandbox:
        started = time.monotonic()
        assert send(http, sandbox, message()).status_code == 200
        assert time.monotonic() - started >= 0.2
        assert sandbox.requests[-1].duration >= 0.2


def test_reset_forgets_messages_requests_keys_and_faults(txmail_sandbox, http):
    send(http, txmail_sandbox, message(), key="k")
    txmail_sandbox.inject(Fault(status=500))
    txmail_sandbox.reset()

    assert txmail_sandbox.messages == txmail_sandbox.requests == []
    assert txmail_sandbox.pending_faults == []
    response = send(http, txmail_sandbox, message(), key="k")
    assert response.status_code == 200
    assert "Idempotent-Response" not in response.headers


# Inspection endpoints and request log


def test_health_endpoint_answers_ok(txmail_sandbox, http):
    response = http.get(f"{txmail_sandbox.url}/_sandbox/health", timeout=TIMEOUT)
    assert (response.status_code, response.json()) == (200, {"ok": True})


def test_messages_endpoint_describes_messages_without_attachment_bytes(txmail_sandbox, http):
    payload = message(attachments=[attachment(b"abc", "a.txt", content_id="note")])
    sent = send(http, txmail_sandbox, payload, key="k").json()

    [listed] = http.get(f"{txmail_sandbox.url}/_sandbox/messages", timeout=TIMEOUT).json()
    assert listed["id"] == sent["data"]["id"]
    assert (listed["provider"], listed["route"], listed["domain"]) == ("nylas", "domain", "acme.io")
    assert (listed["transport"], listed["idempotency_key"]) == ("json", "k")
    assert listed["payload"]["subject"] == "Welcome"
    assert listed["payload"]["attachments"] == [
        {"filename": "a.txt", "content_type": "text/plain", "content_id": "note"}
    ]
    assert listed["attachments"] == [
        {
            "filename": "a.txt",
            "content_type": "text/plain",
            "content_id": "note",
            "content_disposition": "inline",
            "size": 3,
            "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        }
    ]


def test_delete_messages_endpoint_resets_the_sandbox(txmail_sandbox, http):
    send(http, txmail_sandbox, message(), key="k")
    response = http.delete(f"{txmail_sandbox.url}/_sandbox/messages", timeout=TIMEOUT)

    assert response.status_code == 204
    assert txmail_sandbox.messages == []
    assert "Idempotent-Response" not in send(http, txmail_sandbox, message(), key="k").headers


def test_request_log_records_every_request_without_credentials(txmail_sandbox, http):
    send(http, txmail_sandbox, message(), key="k")
    http.get(f"{txmail_sandbox.url}/_sandbox/health", timeout=TIMEOUT)

    sent, health = txmail_sandbox.requests
    assert (sent.method, sent.path, sent.status) == (
        "POST",
        "/v3/domains/acme.io/messages/send",
        200,
    )
    assert (sent.idempotency_key, sent.transport) == ("k", "json")
    assert 0 < sent.duration < TIMEOUT
    assert "Authorization" not in sent.headers
    assert API_KEY not in repr(sent)
    assert (health.method, health.status, health.transport) == ("GET", 200, None)


# HTTP behaviour


def test_unknown_path_is_a_nylas_not_found_error(txmail_sandbox, http):
    response = http.post(
        f"{txmail_sandbox.url}/v3/grants/g/messages", headers=AUTH, timeout=TIMEOUT
    )
    assert_nylas_error(response, 404, "not_found_error")


def test_wrong_method_is_refused_with_allow(txmail_sandbox, http):
    response = http.get(send_url(txmail_sandbox), headers=AUTH, timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.json()["error"]["message"].startswith("GET is not allowed")


def test_keep_alive_requests_do_not_stall(txmail_sandbox, http):
    for _ in range(20):
        assert send(http, txmail_sandbox, message()).status_code == 200
    # Nagle's algorithm off on every connection the sandbox serves: with it on,
    # each keep-alive request would wait ~40 ms for a delayed ACK. Read from the
    # sockets rather than timed, so a busy machine cannot fail it.
    connections = list(txmail_sandbox._httpd._connections)
    assert connections
    assert all(c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for c in connections)


def test_concurrent_sends_on_many_connections_are_all_stored(txmail_sandbox):
    errors = []

    def client(number):
        with requests.Session() as session:
            for index in range(10):
                response = send(session, txmail_sandbox, message(subject=f"{number}-{index}"))
                if response.status_code != 200:
                    errors.append(response.text)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)

    assert errors == []
    messages = txmail_sandbox.messages
    assert len(messages) == 80
    assert len({m.id for m in messages}) == 80
    expected = {f"{n}-{i}" for n in range(8) for i in range(10)}
    assert {m.payload["subject"] for m in messages} == expected


def test_stop_closes_idle_keep_alive_connections(http):
    sandbox = SandboxServer().start()
    assert http.get(f"{sandbox.url}/_sandbox/health", timeout=TIMEOUT).status_code == 200
    before = threading.active_count()
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 10  # an idle connection would block for good
    wait_for(lambda: threading.active_count() < before)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{sandbox.url}/_sandbox/health", timeout=TIMEOUT)


def test_sandbox_imports_without_django_or_django_txmail():
    code = (
        "import sys, txmail_sandbox, txmail_sandbox.__main__\n"
        "assert not {'django', 'django_txmail'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True, timeout=30)


# Command line


def test_sandbox_runs_standalone_without_django():
    process = start_module("--port", "0")
    try:
        url = url_in(read_first_line(process))
        response = requests.post(
            f"{url}/v3/domains/acme.io/messages/send", json=message(), headers=AUTH, timeout=TIMEOUT
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == 0, stderr
    assert "POST /v3/domains/acme.io/messages/send 200" in stdout
