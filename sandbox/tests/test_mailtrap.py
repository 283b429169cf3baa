"""The sandbox's Mailtrap sending API, exercised over real HTTP on loopback."""

from __future__ import annotations

import base64

import pytest
import requests

from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN, Fault, FaultPlan, SandboxServer

TOKEN = DEFAULT_MAILTRAP_API_TOKEN
AUTH = {"Api-Token": TOKEN}
TIMEOUT = 10
TEMPLATE = "b81aabcd-1a1e-41cf-91b6-eca0254b3d96"


def message(**fields):
    payload = {
        "from": {"email": "hello@acme.io", "name": "Acme"},
        "to": [{"email": "ann@example.com", "name": "Ann"}],
        "subject": "Welcome",
        "text": "Hi Ann",
    }
    payload.update(fields)
    return {name: value for name, value in payload.items() if value is not None}


def send(http, sandbox, payload, path="/api/send", headers=AUTH, **kwargs):
    return http.post(
        f"{sandbox.url}{path}", json=payload, headers=headers, timeout=TIMEOUT, **kwargs
    )


def assert_mailtrap_error(response, status, *mentions):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and isinstance(body["errors"], list)
    for mention in mentions:
        assert any(mention in error for error in body["errors"]), body["errors"]
    return body["errors"]


# Authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Api-Token": "wrong"},
        {"Api-Token": ""},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "unknown-token", "empty-token", "basic-scheme", "empty-bearer"],
)
def test_send_without_a_configured_token_is_unauthorized(txmail_sandbox, http, headers):
    assert_mailtrap_error(
        send(http, txmail_sandbox, message(), headers=headers), 401, "Unauthorized"
    )
    assert txmail_sandbox.messages == []


def test_a_bearer_token_is_accepted_too(txmail_sandbox, http):
    response = send(http, txmail_sandbox, message(), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text


def test_the_token_is_kept_out_of_the_request_log(txmail_sandbox, http):
    send(http, txmail_sandbox, message())
    [record] = txmail_sandbox.requests
    assert "Api-Token" not in record.headers and TOKEN not in str(record)


# Sending


def test_send_answers_one_message_id_per_recipient_and_stores_the_message(txmail_sandbox, http):
    payload = message(cc=[{"email": "cc@example.com"}], bcc=[{"email": "bcc@example.com"}])
    response = send(http, txmail_sandbox, payload)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and len(body["message_ids"]) == 3
    [received] = txmail_sandbox.messages
    assert (received.provider, received.route, received.domain) == ("mailtrap", "domain", "acme.io")
    assert (
        received.message_ids == tuple(body["message_ids"]) and received.id == body["message_ids"][0]
    )
    assert received.payload == payload and received.inbox_id is None


def test_there_is_no_idempotency_the_same_request_twice_sends_twice(txmail_sandbox, http):
    for _ in range(2):
        send(http, txmail_sandbox, message(), headers={**AUTH, "Idempotency-Key": "same"})
    assert len(txmail_sandbox.messages) == 2


def test_a_test_inbox_answers_one_id_and_takes_any_sender():
    with (
        SandboxServer(mailtrap_verified_domains={"acme.io"}) as sandbox,
        requests.Session() as http,
    ):
        payload = message(**{"from": {"email": "dev@unverified.example"}}, cc=[{"email": "c@x.io"}])
        response = send(http, sandbox, payload, path="/api/send/2049")
        assert response.status_code == 200, response.text
        assert len(response.json()["message_ids"]) == 1
        assert sandbox.messages[0].inbox_id == "2049"


def test_an_inbox_id_that_is_not_a_number_is_not_found(txmail_sandbox, http):
    assert_mailtrap_error(send(http, txmail_sandbox, message(), path="/api/send/inbox"), 404)


def test_a_sender_outside_the_verified_domains_is_forbidden(http):
    with SandboxServer(mailtrap_verified_domains={"acme.io"}) as sandbox:
        other = message(**{"from": {"email": "hello@elsewhere.example"}})
        assert_mailtrap_error(send(http, sandbox, other), 403, "Forbidden")
        assert send(http, sandbox, message()).status_code == 200
        assert [m.domain for m in sandbox.messages] == ["acme.io"]


def test_every_problem_is_listed_in_mailtrap_words(txmail_sandbox, http):
    response = send(http, txmail_sandbox, {"category": 7})
    errors = assert_mailtrap_error(
        response,
        400,
        "'from' is required",
        "'to', 'cc' or 'bcc' address is required",
        "'subject' is required",
        "must specify either text or html body",
        "'category'",
    )
    assert len(errors) == 5 and txmail_sandbox.messages == []


INVALID = {
    "from-invalid": (message(**{"from": {"email": "not-an-address"}}), "'from' address is invalid"),
    "to-not-array": (message(to={"email": "ann@example.com"}), "'to' must be an array"),
    "cc-address-invalid": (message(cc=[{"email": "bob@"}]), "'cc' address is invalid (item 0)"),
    "too-many-to": (
        message(to=[{"email": f"u{i}@example.com"} for i in range(1001)]),
        "at most 1000",
    ),
    "reply-to-array": (message(reply_to=[{"email": "r@example.com"}]), "'reply_to'"),
    "empty-body": (message(text=""), "must specify either text or html body"),
    "category-too-long": (message(category="x" * 256), "'category'"),
    "header-not-string": (message(headers={"X-Order": 42}), "'headers' value of 'X-Order'"),
    "custom-variable-object": (message(custom_variables={"a": {"b": 1}}), "'custom_variables'"),
    "template-not-uuid": (
        message(subject=None, text=None, template_uuid="welcome"),
        "'template_uuid' must be",
    ),
    "template-with-subject": (
        message(text=None, template_uuid=TEMPLATE),
        "'subject' is not allowed",
    ),
    "attachment-bad-base64": (
        message(attachments=[{"content": "not base64!", "filename": "a.txt"}]),
        "'attachments[0]' 'content' must be base64",
    ),
    "attachment-without-filename": (
        message(attachments=[{"content": "aGk="}]),
        "'filename' is required",
    ),
    "attachment-bad-disposition": (
        message(attachments=[{"content": "aGk=", "filename": "a", "disposition": "sideways"}]),
        "'disposition'",
    ),
}


@pytest.mark.parametrize(("payload", "mentions"), INVALID.values(), ids=INVALID.keys())
def test_an_invalid_message_is_refused_naming_the_field(txmail_sandbox, http, payload, mentions):
    assert_mailtrap_error(send(http, txmail_sandbox, payload), 400, mentions)
    assert txmail_sandbox.messages == []


def test_numbers_in_custom_variables_are_let_through_as_mailtraps_sdks_send_them(
    txmail_sandbox, http
):
    response = send(http, txmail_sandbox, message(custom_variables={"user": 7, "vip": True}))
    assert response.status_code == 200, response.text


def test_template_form_is_accepted_and_rendered(txmail_sandbox, http):
    txmail_sandbox.add_template(
        "mailtrap", TEMPLATE, subject="Hi {{name}}", html="<p>{{name}}{{missing}}</p>", text=""
    )
    payload = message(
        subject=None, text=None, template_uuid=TEMPLATE, template_variables={"name": "<Ann>"}
    )
    assert send(http, txmail_sandbox, payload).status_code == 200
    # Handlebars escapes HTML and renders what is missing empty; an empty part is left out.
    assert txmail_sandbox.messages[0].rendered == {
        "subject": "Hi &lt;Ann&gt;",
        "html": "<p>&lt;Ann&gt;</p>",
    }


def test_an_unknown_template_uuid_is_refused(txmail_sandbox, http):
    payload = message(subject=None, text=None, template_uuid=TEMPLATE)
    response = send(http, txmail_sandbox, payload)
    assert response.status_code == 400
    assert "no such template" in response.json()["errors"][0]
    assert txmail_sandbox.messages == []


def test_attachments_and_inline_images_are_stored_byte_exact(txmail_sandbox, http):
    files = [
        {
            "content": base64.b64encode(b"%PDF\x00\xff").decode(),
            "filename": "a.pdf",
            "type": "application/pdf",
        },
        {
            "content": base64.b64encode(b"GIF89a").decode(),
            "filename": "l.gif",
            "type": "image/gif",
            "disposition": "inline",
            "content_id": "logo",
        },
    ]
    assert send(http, txmail_sandbox, message(attachments=files)).status_code == 200
    pdf, logo = txmail_sandbox.messages[0].attachments
    assert (pdf.content, pdf.content_disposition, pdf.content_id) == (
        b"%PDF\x00\xff",
        "attachment",
        None,
    )
    assert (logo.content, logo.content_disposition, logo.content_id) == (
        b"GIF89a",
        "inline",
        "logo",
    )


def test_a_send_over_10_mb_is_refused_unread(txmail_sandbox, http):
    big = message(text="x" * 10_000_001)
    assert_mailtrap_error(send(http, txmail_sandbox, big), 400, "at most 10000000 bytes")
    assert txmail_sandbox.messages == []


@pytest.mark.parametrize(
    ("data", "headers", "mentions"),
    [
        (b"{oops", {"Content-Type": "application/json"}, "invalid JSON"),
        (b"subject=Hi", {"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type"),
    ],
)
def test_a_body_that_is_not_json_is_refused(txmail_sandbox, http, data, headers, mentions):
    response = http.post(
        f"{txmail_sandbox.url}/api/send", data=data, headers={**AUTH, **headers}, timeout=TIMEOUT
    )
    assert_mailtrap_error(response, 400, mentions)


def test_unknown_paths_and_methods_answer_in_mailtraps_shape(txmail_sandbox, http):
    assert_mailtrap_error(http.post(f"{txmail_sandbox.url}/api/nope", timeout=TIMEOUT), 404)
    response = http.get(f"{txmail_sandbox.url}/api/send", timeout=TIMEOUT)
    assert_mailtrap_error(response, 405)
    assert response.headers["Allow"] == "POST"


# Batch


def batch(http, sandbox, requests_, base=None, path="/api/batch", **kwargs):
    body = {"requests": requests_} | ({"base": base} if base is not None else {})
    return send(http, sandbox, body, path=path, **kwargs)


BASE = {"from": {"email": "news@acme.io"}, "subject": "Monthly", "text": "News"}


def test_a_batch_answers_each_request_in_order_and_sends_the_good_ones(txmail_sandbox, http):
    response = batch(
        http,
        txmail_sandbox,
        [
            {"to": [{"email": "a@example.com"}]},
            {"to": [{"email": "not-an-address"}]},
            {"to": [{"email": "c@example.com"}], "subject": "Just for C"},
        ],
        base=BASE,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and "errors" not in body
    first, second, third = body["responses"]
    assert first["success"] and len(first["message_ids"]) == 1
    assert second == {"success": False, "errors": ["'to' address is invalid (item 0)"]}
    assert third["success"]
    sent = txmail_sandbox.messages
    assert [(m.batch_index, m.payload["subject"]) for m in sent] == [
        (0, "Monthly"),
        (2, "Just for C"),
    ]
    assert sent[1].id == third["message_ids"][0]


def test_a_batch_where_every_request_fails_is_still_200(txmail_sandbox, http):
    response = batch(http, txmail_sandbox, [{"to": []}, "not an object"], base=BASE)
    assert response.status_code == 200
    assert [r["success"] for r in response.json()["responses"]] == [False, False]
    assert txmail_sandbox.messages == []


def test_unverified_senders_fail_per_item(http):
    with SandboxServer(mailtrap_verified_domains={"acme.io"}) as sandbox:
        items = [
            {"to": [{"email": "a@example.com"}]},
            {"to": [{"email": "b@example.com"}], "from": {"email": "x@other.example"}},
        ]
        results = batch(http, sandbox, items, base=BASE).json()["responses"]
        assert [r["success"] for r in results] == [True, False]
        assert results[1]["errors"] == ["Forbidden"]


def test_500_requests_make_a_batch_and_501_are_refused_whole(txmail_sandbox, http):
    items = [{"to": [{"email": f"u{i}@example.com"}]} for i in range(501)]
    assert_mailtrap_error(batch(http, txmail_sandbox, items, base=BASE), 400, "at most 500")
    assert txmail_sandbox.messages == []
    response = batch(http, txmail_sandbox, items[:500], base=BASE)
    assert len(response.json()["responses"]) == 500 == len(txmail_sandbox.messages)


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ([], "JSON object"),
        ({"base": BASE}, "'requests' is required"),
        ({"requests": []}, "'requests' is required"),
        ({"requests": [{}], "base": []}, "'base' must be an object"),
        ({"requests": [{}], "base": BASE | {"to": [{"email": "a@example.com"}]}}, "recipients"),
    ],
)
def test_a_batch_of_the_wrong_shape_is_refused_whole(txmail_sandbox, http, body, mentions):
    response = send(http, txmail_sandbox, body, path="/api/batch")
    assert_mailtrap_error(response, 400, mentions)


def test_a_batch_to_a_test_inbox_gives_one_id_per_message(txmail_sandbox, http):
    items = [{"to": [{"email": "a@example.com"}, {"email": "b@example.com"}]}]
    response = batch(http, txmail_sandbox, items, base=BASE, path="/api/batch/7")
    assert len(response.json()["responses"][0]["message_ids"]) == 1
    assert txmail_sandbox.messages[0].inbox_id == "7"


def test_a_batch_over_50_mb_is_refused_unread(txmail_sandbox, http):
    response = http.post(
        f"{txmail_sandbox.url}/api/batch",
        data=b"x" * 50_000_001,
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=TIMEOUT,
    )
    assert_mailtrap_error(response, 400, "at most 50000000 bytes")


# Faults


def test_an_injected_fault_answers_with_mailtraps_error_body(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=503, provider="mailtrap", retry_after=4))
    response = send(http, txmail_sandbox, message())
    assert_mailtrap_error(response, 503, "Injected fault")
    assert response.headers["Retry-After"] == "4"
    assert txmail_sandbox.messages == [] and txmail_sandbox.requests[0].fault == "injected 503"


def test_faults_for_other_providers_or_routes_leave_mailtrap_alone(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(status=500, provider="nylas"))
    txmail_sandbox.inject(Fault(status=500, provider="mailtrap", route="batch"))
    assert send(http, txmail_sandbox, message()).status_code == 200
    response = batch(http, txmail_sandbox, [{"to": [{"email": "a@example.com"}]}], base=BASE)
    assert response.status_code == 500
    assert txmail_sandbox.pending_faults == [(Fault(status=500, provider="nylas"), 1)]


def test_a_delay_after_accept_holds_the_answer_of_a_stored_message(txmail_sandbox, http):
    txmail_sandbox.inject(Fault(delay_after_accept=0.3, provider="mailtrap"))
    response = send(http, txmail_sandbox, message())
    assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3
    assert len(txmail_sandbox.messages) == 1


@pytest.mark.parametrize("kind", ["500", "502", "503", "429"])
def test_the_fault_plan_refuses_mailtrap_sends_in_mailtraps_shape(http, kind):
    with SandboxServer(faults=FaultPlan(seed=1, rate=1.0, kinds={kind: 1})) as sandbox:
        assert_mailtrap_error(send(http, sandbox, message()), int(kind), "fault plan (seed 1)")
        assert sandbox.messages == [] and sandbox.fault_stats[kind] == 1


def test_a_timeout_after_accept_then_a_retry_sends_twice_as_at_mailtrap(http):
    plan = FaultPlan(seed=1, rate=1.0, kinds={"timeout-after-accept": 1}, hang=0.0)
    with SandboxServer(faults=plan) as sandbox:
        with pytest.raises(requests.ConnectionError):
            send(http, sandbox, message())
        sandbox.set_fault_plan(None)
        assert send(http, sandbox, message()).status_code == 200
        assert len(sandbox.messages) == 2


# Inspection and the command line


def test_the_messages_endpoint_lists_mailtrap_messages_with_their_ids(txmail_sandbox, http):
    files = [{"content": base64.b64encode(b"hi").decode(), "filename": "a.txt"}]
    batch(
        http,
        txmail_sandbox,
        [{"to": [{"email": "a@example.com"}], "attachments": files}],
        base=BASE,
        path="/api/batch/9",
    )
    [listed] = http.get(f"{txmail_sandbox.url}/_sandbox/messages", timeout=TIMEOUT).json()
    assert (listed["provider"], listed["inbox_id"], listed["batch_index"]) == ("mailtrap", "9", 0)
    assert listed["message_ids"] == [txmail_sandbox.messages[0].id]
    assert "content" not in listed["payload"]["attachments"][0]
    assert listed["attachments"][0]["size"] == 2


# Suppressions (PROVIDERS.md, "Mailtrap streams and suppressions")


def suppressions_url(sandbox, account="1234", entry=""):
    return f"{sandbox.url}/api/accounts/{account}/suppressions" + (f"/{entry}" if entry else "")


def test_the_simulators_hard_bounces_and_complaints_land_on_the_suppression_list(
    txmail_sandbox, http
):
    body = {
        "from": {"email": "shop@x.example"},
        "to": [{"email": "bounce@y.example"}, {"email": "ann@y.example"}],
        "cc": [{"email": "complaint@y.example"}],
        "subject": "Hi",
        "text": "Hello",
    }
    assert http.post(f"{txmail_sandbox.url}/api/send", json=body, headers=AUTH).status_code == 200
    listed = http.get(suppressions_url(txmail_sandbox), headers=AUTH).json()
    assert {(e["email"], e["type"], e["sending_stream"]) for e in listed} == {
        ("bounce@y.example", "hard bounce", "transactional"),
        ("complaint@y.example", "spam complaint", "transactional"),
    }
    assert {e["domain_name"] for e in listed} == {"x.example"}


def test_suppressions_are_filtered_by_email_and_deleted_by_id(txmail_sandbox, http):
    kept = txmail_sandbox.add_mailtrap_suppression("a@y.example", "unsubscription", "bulk")
    gone = txmail_sandbox.add_mailtrap_suppression("b@y.example")
    one = http.get(suppressions_url(txmail_sandbox), params={"email": "a@y.example"}, headers=AUTH)
    assert [e["id"] for e in one.json()] == [kept["id"]]
    deleted = http.delete(suppressions_url(txmail_sandbox, entry=gone["id"]), headers=AUTH)
    assert deleted.status_code == 200
    assert [e["email"] for e in txmail_sandbox.mailtrap_suppressions] == ["a@y.example"]
    again = http.delete(suppressions_url(txmail_sandbox, entry=gone["id"]), headers=AUTH)
    assert again.status_code == 404


def test_the_suppressions_api_wants_the_token_and_a_numeric_account(txmail_sandbox, http):
    assert http.get(suppressions_url(txmail_sandbox)).status_code == 401
    wrong_account = suppressions_url(txmail_sandbox, account="abc")
    assert http.get(wrong_account, headers=AUTH).status_code == 404
