"""The Mailtrap adapter as a pure translation: OutboundEmail → request, response → result,
webhook body → events."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_txmail.conf import ProviderAccount
from django_txmail.exceptions import (
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnsupportedFeature,
    WebhookPayloadError,
)
from django_txmail.outbound_email import Address, Attachment, Feature, OutboundEmail
from django_txmail.providers import ProviderResponse, Route
from django_txmail.providers.base import USER_AGENT
from django_txmail.providers.mailtrap.send import MailtrapAdapter

TOKEN = "mt_secret_token_123"
LIVE = "https://send.api.mailtrap.io"
DOMAIN = Route("domain", "mailtrap", domain="shop.example")
TEMPLATE = "b81aabcd-1a1e-41cf-91b6-eca0254b3d96"


def account(api_uri=LIVE, **options):
    return ProviderAccount("mailtrap", "x", api_uri, {"API_TOKEN": TOKEN}, options)


@pytest.fixture
def adapter():
    return MailtrapAdapter(account())


def make(**kwargs):
    base = {
        "from_email": Address("hi@shop.example", "Shop"),
        "to": [Address("ann@x.example", "Ann")],
        "subject": "Hello",
        "text": "Hi",
    }
    return OutboundEmail(**(base | kwargs))


def payload_of(adapter, email):
    adapter.check(email, DOMAIN)
    return json.loads(adapter.build_send(email, DOMAIN).body)


# Features


def test_features_are_exactly_what_mailtrap_carries():
    assert MailtrapAdapter.features == {
        Feature.CC,
        Feature.BCC,
        Feature.NO_TO,
        Feature.REPLY_TO,
        Feature.MULTIPLE_REPLY_TO,
        Feature.ATTACHMENTS,
        Feature.INLINE_IMAGES,
        Feature.HEADERS,
        Feature.METADATA,
        Feature.TAGS,
        Feature.PROVIDER_TEMPLATE,
        Feature.REPLY_TO_MESSAGE_ID,
        Feature.ESP_EXTRA,
    }
    assert MailtrapAdapter.routes == {"domain"}


@pytest.mark.parametrize(
    ("field", "value", "feature"),
    [
        ("tags", ["a", "b"], Feature.MULTIPLE_TAGS),
        ("track_opens", True, Feature.TRACK_OPENS),
        ("track_clicks", False, Feature.TRACK_CLICKS),
        ("ical_event", "BEGIN:VCALENDAR", Feature.ICAL_EVENT),
        ("stream_type", "transactional", Feature.STREAM_TYPE),
        ("merge_data", {"ann@x.example": {"n": 1}}, Feature.MERGE_DATA),
        ("alternatives", [("x", "text/calendar")], Feature.ALTERNATIVES),
        ("header_overrides", {"To": [Address("l@x.example")]}, Feature.HEADER_OVERRIDES),
        ("envelope_sender", "bounce@shop.example", Feature.ENVELOPE_SENDER),
    ],
)
def test_features_mailtrap_cannot_carry_raise_unsupported(adapter, field, value, feature):
    with pytest.raises(UnsupportedFeature) as info:
        adapter.check(make(**{field: value}), DOMAIN)
    assert info.value.provider == "mailtrap" and info.value.feature == feature.value


def test_the_grant_route_is_unsupported(adapter):
    with pytest.raises(UnsupportedFeature, match="grant route"):
        adapter.check(make(), Route("grant", "mailtrap", grant_id="g"))


def test_send_at_is_held_in_the_outbox_because_mailtrap_cannot_schedule(adapter):
    assert adapter.scheduling_window(DOMAIN) is None


# The request


def test_send_goes_to_api_send_with_token_user_agent_and_no_idempotency_key(adapter):
    request = adapter.build_send(make(idempotency_key="k-1"), DOMAIN)
    assert (request.method, request.url) == ("POST", f"{LIVE}/api/send")
    assert request.headers["Api-Token"] == TOKEN
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in request.headers
    assert TOKEN not in repr(request)


def test_sandbox_inbox_sends_to_the_inbox_on_the_sandbox_host():
    adapter = MailtrapAdapter(account("https://sandbox.api.mailtrap.io", SANDBOX_INBOX_ID=2049))
    request = adapter.build_send(make(), DOMAIN)
    assert request.url == "https://sandbox.api.mailtrap.io/api/send/2049"


@pytest.mark.parametrize(
    ("api_uri", "options", "advice"),
    [
        (LIVE, {"SANDBOX_INBOX_ID": 7}, "set API_URI to that"),
        ("https://bulk.api.mailtrap.io", {"SANDBOX_INBOX_ID": "7"}, "sandbox.api.mailtrap.io"),
        ("https://sandbox.api.mailtrap.io", {}, "has no SANDBOX_INBOX_ID"),
        ("https://sandbox.api.mailtrap.io", {"SANDBOX_INBOX_ID": "inbox-7"}, "number"),
        ("https://sandbox.api.mailtrap.io", {"SANDBOX_INBOX_ID": True}, "number"),
    ],
)
def test_inbox_option_and_host_must_agree(api_uri, options, advice):
    with pytest.raises(ImproperlyConfigured, match=advice):
        MailtrapAdapter(account(api_uri, **options))


def test_addresses_are_objects_and_empty_names_are_left_out(adapter):
    email = make(cc=[Address("c@x.example")], bcc=[Address("b@x.example", "B")])
    payload = payload_of(adapter, email)
    assert payload["from"] == {"email": "hi@shop.example", "name": "Shop"}
    assert payload["to"] == [{"email": "ann@x.example", "name": "Ann"}]
    assert payload["cc"] == [{"email": "c@x.example"}]
    assert payload["bcc"] == [{"email": "b@x.example", "name": "B"}]


def test_a_message_with_only_bcc_recipients_is_sent(adapter):
    payload = payload_of(adapter, make(to=[], bcc=[Address("b@x.example")]))
    assert "to" not in payload and payload["bcc"] == [{"email": "b@x.example"}]


def test_one_reply_to_is_the_reply_to_object(adapter):
    payload = payload_of(adapter, make(reply_to=[Address("help@shop.example", "Help")]))
    assert payload["reply_to"] == {"email": "help@shop.example", "name": "Help"}
    assert "headers" not in payload


def test_several_reply_to_addresses_go_as_one_encoded_header(adapter):
    email = make(reply_to=[Address("a@shop.example", "Zoë"), Address("b@shop.example")])
    payload = payload_of(adapter, email)
    assert "reply_to" not in payload
    assert payload["headers"]["Reply-To"] == "=?utf-8?q?Zo=C3=AB?= <a@shop.example>, b@shop.example"


def test_text_and_html_both_go(adapter):
    payload = payload_of(adapter, make(text="Plain", html="<p>Rich</p>"))
    assert (payload["subject"], payload["text"], payload["html"]) == (
        "Hello",
        "Plain",
        "<p>Rich</p>",
    )


def test_one_tag_is_the_category(adapter):
    assert payload_of(adapter, make(tags=["receipt"]))["category"] == "receipt"


def test_a_category_over_255_characters_is_refused(adapter):
    with pytest.raises(InvalidMessage, match="at most 255"):
        adapter.check(make(tags=["x" * 256]), DOMAIN)


def test_headers_go_as_a_string_map(adapter):
    assert payload_of(adapter, make(headers={"X-Order": "42"}))["headers"] == {"X-Order": "42"}


def test_metadata_becomes_string_custom_variables_with_our_message_id(adapter):
    message_id = uuid.uuid4()
    email = make(metadata={"order": 42, "vip": True, "ref": "a"}, message_id=message_id)
    assert payload_of(adapter, email)["custom_variables"] == {
        "order": "42",
        "vip": "true",
        "ref": "a",
        "txmail_id": str(message_id),
    }


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"k": {"nested": 1}}, "strings or numbers"),
        ({"k": None}, "strings or numbers"),
        ({"txmail_id": "x"}, "reserved"),
        ({"note": "x" * 960}, "at most 1000 bytes"),
    ],
)
def test_metadata_mailtrap_cannot_keep_is_refused(adapter, metadata, match):
    with pytest.raises(InvalidMessage, match=match):
        adapter.check(make(metadata=metadata), DOMAIN)


def test_the_custom_variables_limit_counts_our_message_id_before_it_is_assigned(adapter):
    fits = {"note": "x" * 900}
    adapter.check(make(metadata=fits), DOMAIN)
    email = make(metadata=fits, message_id=uuid.uuid4())
    assert len(json.dumps(payload_of(adapter, email)["custom_variables"])) <= 1000


def test_attachments_and_inline_images_are_base64_with_type_and_disposition(adapter):
    email = make(
        attachments=[
            Attachment.from_bytes(b"%PDF", filename="a.pdf", mimetype="application/pdf"),
            Attachment.from_bytes(
                b"GIF", filename="l.gif", mimetype="image/gif", content_id="logo", inline=True
            ),
        ]
    )
    assert payload_of(adapter, email)["attachments"] == [
        {
            "filename": "a.pdf",
            "type": "application/pdf",
            "disposition": "attachment",
            "content": base64.b64encode(b"%PDF").decode(),
        },
        {
            "filename": "l.gif",
            "type": "image/gif",
            "disposition": "inline",
            "content_id": "logo",
            "content": base64.b64encode(b"GIF").decode(),
        },
    ]


def test_an_attachment_without_a_filename_is_refused(adapter):
    email = make(attachments=[Attachment.from_bytes(b"x", filename="", mimetype="text/plain")])
    with pytest.raises(InvalidMessage, match="filename"):
        adapter.check(email, DOMAIN)


def test_template_form_has_uuid_and_variables_and_no_content(adapter):
    email = make(subject="", text=None, template_id=TEMPLATE, template_vars={"name": "Ann"})
    payload = payload_of(adapter, email)
    assert payload["template_uuid"] == TEMPLATE
    assert payload["template_variables"] == {"name": "Ann"}
    assert not {"subject", "text", "html", "category"} & payload.keys()


@pytest.mark.parametrize(
    ("extra", "match"),
    [({"subject": "Hi"}, "subject or body"), ({"tags": ["t"]}, "tag")],
)
def test_template_with_content_or_category_is_unsupported(adapter, extra, match):
    email = make(**({"subject": "", "text": None, "template_id": TEMPLATE} | extra))
    with pytest.raises(UnsupportedFeature, match=match):
        adapter.check(email, DOMAIN)


def test_a_template_id_that_is_not_a_uuid_is_refused(adapter):
    with pytest.raises(InvalidMessage, match="UUID"):
        adapter.check(make(subject="", text=None, template_id="welcome"), DOMAIN)


@pytest.mark.parametrize(
    ("fields", "match"),
    [({"subject": ""}, "needs a subject"), ({"text": None}, "text or HTML body")],
)
def test_subject_and_a_body_are_required_without_a_template(adapter, fields, match):
    with pytest.raises(InvalidMessage, match=match):
        adapter.check(make(**fields), DOMAIN)


@pytest.mark.parametrize("value", ["<m1@shop.example>", "m1@shop.example", " <m1@shop.example> "])
def test_reply_to_message_id_becomes_threading_headers(adapter, value):
    headers = payload_of(adapter, make(reply_to_message_id=value))["headers"]
    assert headers["In-Reply-To"] == headers["References"] == "<m1@shop.example>"


def test_reply_to_message_id_must_be_a_message_id(adapter):
    with pytest.raises(InvalidMessage, match="Message-ID"):
        adapter.check(make(reply_to_message_id="nylas-msg-123"), DOMAIN)


def test_reply_to_message_id_and_an_in_reply_to_header_conflict(adapter):
    email = make(reply_to_message_id="<a@b.example>", headers={"in-reply-to": "<c@d.example>"})
    with pytest.raises(InvalidMessage, match="In-Reply-To"):
        adapter.check(email, DOMAIN)


def test_esp_extra_is_merged_into_the_payload(adapter):
    email = make(metadata={"a": "1"}, esp_extra={"custom_variables": {"b": "2"}, "x": 1})
    payload = payload_of(adapter, email)
    assert payload["custom_variables"] == {"a": "1", "b": "2"} and payload["x"] == 1


# Size


def test_the_size_check_is_the_exact_request_size(adapter):
    attachment = Attachment.from_bytes(b"\xff" * 1000, filename="ж.bin", mimetype="x/y")
    email = make(attachments=[attachment], esp_extra={"pad": "ü" * 10})
    assert adapter._json_size(adapter.payload(email, DOMAIN), email) == len(
        adapter.build_send(email, DOMAIN).body
    )


def test_non_ascii_text_travels_as_utf_8_not_escapes(adapter):
    body = adapter.build_send(make(text="日本語"), DOMAIN).body
    assert "日本語".encode() in body


def test_text_that_is_not_valid_unicode_is_refused_before_recording(adapter):
    with pytest.raises(InvalidMessage, match="not valid Unicode"):
        adapter.check(make(text="broken \ud800 text"), DOMAIN)


def test_over_9_5_mb_is_refused_before_reading_any_file(adapter):
    big = Attachment(
        filename="big.bin",
        mimetype="application/octet-stream",
        size=7_200_000,  # 9.6 MB as base64
        opener=lambda: pytest.fail("must not be read"),
    )
    with pytest.raises(MessageTooLarge, match="10 MB"):
        adapter.check(make(attachments=[big]), DOMAIN)


def test_just_under_the_limit_is_accepted(adapter):
    fits = Attachment.from_bytes(b"x" * 7_000_000, filename="f.bin", mimetype="x/y")
    adapter.check(make(attachments=[fits]), DOMAIN)


# Responses


def response(status, body, **headers):
    return ProviderResponse(status, headers, json.dumps(body).encode())


def test_success_keeps_every_recipient_message_id(adapter):
    result = adapter.parse_send(
        response(200, {"success": True, "message_ids": ["m1", "m2"]}), DOMAIN
    )
    assert result.provider_message_id == "m1"
    assert result.provider_message_ids == ("m1", "m2")


def test_errors_are_joined_into_a_permanent_error(adapter):
    body = {"success": False, "errors": ["'subject' is required", "'from' is required"]}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(400, body), DOMAIN)
    assert (info.value.status, info.value.transient) == (400, False)
    assert "'subject' is required; 'from' is required" in str(info.value)


def test_a_403_says_the_sending_domain_is_probably_not_verified(adapter):
    with pytest.raises(ProviderAPIError, match="not verified at Mailtrap") as info:
        adapter.parse_send(response(403, {"success": False, "errors": ["Forbidden"]}), DOMAIN)
    assert info.value.status == 403 and not info.value.transient


def test_a_401_points_at_the_token_and_never_shows_it(adapter):
    body = {"success": False, "errors": [f"token {TOKEN} is not valid"]}
    with pytest.raises(ProviderAPIError, match="API_TOKEN") as info:
        adapter.parse_send(response(401, body), DOMAIN)
    assert TOKEN not in str(info.value)


@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient(adapter, status):
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(status, {"success": False, "errors": ["busy"]}), DOMAIN)
    assert info.value.transient


def test_a_success_false_answer_is_an_error_whatever_its_status(adapter):
    with pytest.raises(ProviderAPIError, match="nope"):
        adapter.parse_send(response(200, {"success": False, "errors": ["nope"]}), DOMAIN)


def test_a_non_json_error_body_is_reported(adapter):
    with pytest.raises(ProviderAPIError, match="Bad Gateway"):
        adapter.parse_send(ProviderResponse(502, {}, b"<html>Bad Gateway</html>"), DOMAIN)


# Webhooks


def event(kind="delivery", **fields):
    return {
        "event": kind,
        "message_id": "1df37d17-0286-4d8b-8edf-bc4ec5be86e6",
        "event_id": "bede7236-2284-43d6-a953-1fdcafd0fdbc",
        "email": "ann@x.example",
        "timestamp": 1728669700,
        "sending_stream": "transactional",
        "sending_domain_name": "shop.example",
        **fields,
    }


def parse(adapter, events, content_type="application/json"):
    return adapter.parse_webhook(json.dumps({"events": events}).encode(), content_type)


def test_the_signature_header_is_mailtrap_signature(adapter):
    assert adapter.signature_header() == "Mailtrap-Signature"
    custom = MailtrapAdapter(account(WEBHOOK_SIGNATURE_HEADER="X-Sig"))
    assert custom.signature_header() == "X-Sig"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("delivery", "delivered"),
        ("open", "opened"),
        ("click", "clicked"),
        ("unsubscribe", "unsubscribed"),
        ("spam", "complained"),
        ("soft bounce", "deferred"),
        ("bounce", "bounced"),
        ("suspension", "rejected"),
        ("reject", "rejected"),
        ("inbound.message_received", "unknown"),
    ],
)
def test_event_types_map_to_ours(adapter, kind, expected):
    [parsed] = parse(adapter, [event(kind)])
    assert (parsed.type, parsed.provider_type) == (expected, kind)


def test_event_fields_are_read(adapter):
    message_id = str(uuid.uuid4())
    raw = event(
        "bounce",
        response="[CS01] Message rejected due to local policy",
        response_code=555,
        bounce_category="spam",
        custom_variables={"txmail_id": message_id, "order": 7},
    )
    [parsed] = parse(adapter, [raw])
    assert parsed.provider_event_id == "bede7236-2284-43d6-a953-1fdcafd0fdbc"
    assert parsed.provider_message_id == "1df37d17-0286-4d8b-8edf-bc4ec5be86e6"
    assert parsed.message_id == message_id
    assert parsed.recipient == "ann@x.example"
    assert parsed.bounce_type == "spam"
    assert parsed.mta_response == "555 [CS01] Message rejected due to local policy"
    assert parsed.occurred_at == datetime(2024, 10, 11, 18, 1, 40, tzinfo=UTC)
    assert parsed.raw == raw


def test_click_open_and_reject_details_are_read(adapter):
    click, rejected = parse(
        adapter,
        [
            event("click", event_id="e1", url="https://x.example/a", user_agent="UA", ip="1.2.3.4"),
            event("reject", event_id="e2", reason="Recipient in suppression list"),
        ],
    )
    assert (click.click_url, click.user_agent, click.ip) == ("https://x.example/a", "UA", "1.2.3.4")
    assert rejected.reason == "Recipient in suppression list"


@pytest.mark.parametrize(
    "content_type",
    ["application/jsonl", "application/x-ndjson", "application/json", ""],
)
def test_json_lines_bodies_hold_one_event_a_line_whatever_the_label(adapter, content_type):
    lines = [json.dumps(event(event_id="e1")), "", json.dumps(event("open", event_id="e2"))]
    parsed = adapter.parse_webhook("\n".join(lines).encode(), content_type)
    assert [(e.provider_event_id, e.type) for e in parsed] == [
        ("e1", "delivered"),
        ("e2", "opened"),
    ]


def test_a_json_lines_body_of_one_event_is_that_event(adapter):
    [parsed] = adapter.parse_webhook(json.dumps(event()).encode(), "application/jsonl")
    assert parsed.type == "delivered"


def test_an_events_object_labelled_json_lines_is_still_read(adapter):
    body = json.dumps({"events": [event()]}).encode()
    assert len(adapter.parse_webhook(body, "application/jsonl")) == 1


def test_500_events_are_accepted_and_501_refused(adapter):
    events = [event(event_id=f"e{i}") for i in range(500)]
    assert len(parse(adapter, events)) == 500
    with pytest.raises(WebhookPayloadError, match="at most 500"):
        parse(adapter, [*events, event(event_id="e500")])
    jsonl = "\n".join(json.dumps(e) for e in [*events, event()]).encode()
    with pytest.raises(WebhookPayloadError, match="at most 500"):
        adapter.parse_webhook(jsonl, "application/jsonl")


def test_an_unknown_event_without_an_id_gets_a_stable_one(adapter):
    activity = {"event": "activity_log.user.updated", "timestamp": 1735830138, "actor": {"id": 1}}
    first = parse(adapter, [activity])[0]
    again = parse(adapter, [dict(reversed(list(activity.items())))])[0]
    assert first.type == "unknown" and first.provider_event_id == again.provider_event_id


def test_an_empty_events_array_is_no_events(adapter):
    assert parse(adapter, []) == []


MALFORMED = {
    "not-json": (b"{events: [", "application/json"),
    "not-utf8": (b'{"events": ["\xff"]}', "application/json"),
    "empty": (b"  ", "application/json"),
    "a-bare-array": (b"[]", "application/json"),
    "incomplete-single-event": (b'{"event": "delivery"}', "application/json"),
    "events-not-a-list": (b'{"events": {}}', "application/json"),
    "event-not-an-object": (b'{"events": [1]}', "application/json"),
    "bad-jsonl-line": (json.dumps(event()).encode() + b"\n{oops", "application/jsonl"),
}


@pytest.mark.parametrize(("body", "content_type"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bodies_are_refused(adapter, body, content_type):
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(body, content_type)


BAD_EVENTS = {
    "no-event-name": {"event": None},
    "event-name-not-a-string": {"event": 7},
    "no-event-id": {"event_id": None},
    "empty-event-id": {"event_id": ""},
    "no-message-id": {"message_id": None},
    "no-recipient": {"email": None},
    "timestamp-missing": {"timestamp": None},
    "timestamp-a-string": {"timestamp": "1728669700"},
    "timestamp-a-boolean": {"timestamp": True},
    "timestamp-out-of-range": {"timestamp": 10**20},
    "custom-variables-a-list": {"custom_variables": ["x"]},
    "response-code-a-string": {"response_code": "555"},
    "url-not-a-string": {"url": ["https://x.example"]},
}


@pytest.mark.parametrize("fields", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_events_of_the_wrong_shape_refuse_the_whole_batch(adapter, fields):
    bad = {k: v for k, v in (event() | fields).items() if v is not None}
    with pytest.raises(WebhookPayloadError):
        parse(adapter, [event(event_id="fine"), bad])
