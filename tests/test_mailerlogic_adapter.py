"""The MailerLogic adapter as a pure translation: OutboundEmail → request, response → result,
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
from django_txmail.providers.mailerlogic.send import MailerLogicAdapter, part_key

KEY = "ml_secret_key_123"
API = "https://api.mailerlogic.net"
DOMAIN = Route("domain", "mailerlogic", domain="shop.example")
INVITE = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


def account(**options):
    return ProviderAccount("mailerlogic", "x", API, {"API_KEY": KEY}, options)


@pytest.fixture
def adapter():
    return MailerLogicAdapter(account())


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


def test_features_are_exactly_what_mailerlogic_carries():
    assert MailerLogicAdapter.features == {
        Feature.CC,
        Feature.BCC,
        Feature.REPLY_TO,
        Feature.ATTACHMENTS,
        Feature.HEADERS,
        Feature.ALTERNATIVES,
        Feature.METADATA,
        Feature.TAGS,
        Feature.TRACK_OPENS,
        Feature.TRACK_CLICKS,
        Feature.ICAL_EVENT,
        Feature.STREAM_TYPE,
        Feature.ESP_EXTRA,
    }
    assert MailerLogicAdapter.routes == {"domain"}


@pytest.mark.parametrize(
    ("fields", "feature"),
    [
        ({"to": [], "bcc": [Address("b@x.example")]}, Feature.NO_TO),
        ({"reply_to": [Address("a@x.example"), Address("b@x.example")]}, Feature.MULTIPLE_REPLY_TO),
        (
            {
                "attachments": [
                    Attachment.from_bytes(
                        b"G", filename="l.gif", mimetype="image/gif", content_id="logo", inline=True
                    )
                ]
            },
            Feature.INLINE_IMAGES,
        ),
        ({"tags": ["a", "b"]}, Feature.MULTIPLE_TAGS),
        ({"template_id": "tpl"}, Feature.PROVIDER_TEMPLATE),
        ({"reply_to_message_id": "<m@x.example>"}, Feature.REPLY_TO_MESSAGE_ID),
        ({"merge_data": {"ann@x.example": {"n": 1}}}, Feature.MERGE_DATA),
        ({"header_overrides": {"To": [Address("l@x.example")]}}, Feature.HEADER_OVERRIDES),
        ({"envelope_sender": "b@shop.example"}, Feature.ENVELOPE_SENDER),
    ],
)
def test_features_mailerlogic_cannot_carry_raise_unsupported(adapter, fields, feature):
    with pytest.raises(UnsupportedFeature) as info:
        adapter.check(make(**fields), DOMAIN)
    assert info.value.provider == "mailerlogic" and info.value.feature == feature.value


def test_several_to_recipients_are_unsupported_and_say_what_to_do(adapter):
    email = make(to=[Address("a@x.example"), Address("b@x.example")])
    with pytest.raises(UnsupportedFeature, match="one message per recipient") as info:
        adapter.check(email, DOMAIN)
    assert info.value.feature == "more than one To recipient"


def test_the_refusal_names_the_option_that_splits_the_message(adapter):
    email = make(to=[Address("a@x.example"), Address("b@x.example")])
    with pytest.raises(UnsupportedFeature, match="'SPLIT_RECIPIENTS': True"):
        adapter.check(email, DOMAIN)


# Splitting a message per To recipient (opt-in)

THREE = [Address("a@x.example", "A"), Address("b@x.example"), Address("c@x.example")]


@pytest.fixture
def splitter():
    return MailerLogicAdapter(account(SPLIT_RECIPIENTS=True))


def test_without_the_option_a_message_is_never_split(adapter):
    email = make(to=THREE)
    assert adapter.split(email) == [email]


def test_with_the_option_each_to_recipient_gets_a_message_of_their_own(splitter):
    parts = splitter.split(make(to=THREE))
    assert [part.to for part in parts] == [[a] for a in THREE]
    for part in parts:
        splitter.check(part, DOMAIN)
        assert json.loads(splitter.build_send(part, DOMAIN).body)["to"] == str(part.to[0])


def test_every_part_keeps_subject_bodies_attachments_headers_tags_and_metadata(splitter):
    pdf = Attachment.from_bytes(b"%PDF", filename="r.pdf", mimetype="application/pdf")
    email = make(
        to=THREE,
        html="<p>Rich</p>",
        reply_to=[Address("help@shop.example")],
        attachments=[pdf],
        headers={"X-Order": "42"},
        tags=["receipt"],
        metadata={"order": 42},
        track_opens=True,
        stream_type="transactional",
        ical_event=INVITE,
    )
    payloads = [payload_of(splitter, part) for part in splitter.split(email)]
    for payload in payloads:
        payload.pop("to")
    assert payloads[0] == payloads[1] == payloads[2]
    assert payloads[0]["attachments"][0]["content"] == base64.b64encode(b"%PDF").decode()
    assert payloads[0]["metadata"] == {"order": 42}
    assert (payloads[0]["tag"], payloads[0]["icalEvent"]) == ("receipt", INVITE)


def test_cc_and_bcc_go_with_the_first_part_only_so_nobody_gets_it_twice(splitter):
    cc, bcc = [Address("boss@x.example")], [Address("audit@x.example")]
    first, *others = splitter.split(make(to=THREE, cc=cc, bcc=bcc))
    assert (first.cc, first.bcc) == (cc, bcc)
    assert all(part.cc == [] and part.bcc == [] for part in others)
    recipients = [a.email for part in [first, *others] for a in part.recipients]
    assert sorted(recipients) == sorted({*recipients})


def test_a_callers_idempotency_key_is_numbered_per_part(splitter):
    keys = [p.idempotency_key for p in splitter.split(make(to=THREE, idempotency_key="order-7"))]
    assert keys == ["order-7:1", "order-7:2", "order-7:3"]
    again = [p.idempotency_key for p in splitter.split(make(to=THREE, idempotency_key="order-7"))]
    assert again == keys


def test_a_key_too_long_for_the_suffix_is_hashed_and_stays_distinct_per_part():
    long_key = "k" * 256
    keys = [part_key(long_key, n) for n in (1, 2, 3)]
    assert len(set(keys)) == 3 and all(len(k) <= 256 for k in keys)
    assert keys == [part_key(long_key, n) for n in (1, 2, 3)]
    assert part_key("k" * 250, 1) == "k" * 250 + ":1"


def test_without_a_callers_key_the_parts_get_their_own_when_recorded(splitter):
    assert {p.idempotency_key for p in splitter.split(make(to=THREE))} == {""}


def test_a_single_to_recipient_is_left_as_it_is(splitter):
    email = make(cc=[Address("c@x.example")], idempotency_key="k")
    assert splitter.split(email) == [email]


def test_splitting_leaves_the_callers_message_untouched(splitter):
    email = make(to=list(THREE), cc=[Address("c@x.example")], idempotency_key="k")
    splitter.split(email)
    assert (email.to, email.cc, email.idempotency_key) == (THREE, [Address("c@x.example")], "k")


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_the_option_must_be_true_or_false(value):
    with pytest.raises(ImproperlyConfigured, match="SPLIT_RECIPIENTS"):
        MailerLogicAdapter(account(SPLIT_RECIPIENTS=value))


def test_send_at_is_held_in_the_outbox_because_mailerlogic_cannot_schedule(adapter):
    assert adapter.scheduling_window(DOMAIN) is None


# The request


def test_send_goes_to_api_v1_send_with_the_key_and_no_idempotency_key(adapter):
    request = adapter.build_send(make(idempotency_key="k-1"), DOMAIN)
    assert (request.method, request.url) == ("POST", f"{API}/api/v1/send")
    assert request.headers["X-API-Key"] == KEY
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert "Idempotency-Key" not in request.headers
    assert KEY not in repr(request)


def test_addresses_are_strings_with_display_names(adapter):
    email = make(
        cc=[Address("c@x.example"), Address("d@x.example", "Dee, D.")],
        bcc=[Address("b@x.example")],
        reply_to=[Address("help@shop.example", "Help")],
    )
    payload = payload_of(adapter, email)
    assert payload["domain"] == "shop.example"
    assert payload["from"] == '"Shop" <hi@shop.example>'
    assert payload["to"] == '"Ann" <ann@x.example>'
    assert payload["cc"] == ["c@x.example", '"Dee, D." <d@x.example>']
    assert payload["bcc"] == ["b@x.example"]
    assert payload["reply_to"] == '"Help" <help@shop.example>'


def test_subject_text_and_html_all_go(adapter):
    payload = payload_of(adapter, make(text="Plain", html="<p>Rich</p>"))
    assert (payload["subject"], payload["text"], payload["html"]) == (
        "Hello",
        "Plain",
        "<p>Rich</p>",
    )


def test_a_subject_is_required(adapter):
    with pytest.raises(InvalidMessage, match="subject"):
        adapter.check(make(subject=""), DOMAIN)


def test_tracking_tag_headers_and_stream_type(adapter):
    email = make(
        track_opens=True,
        track_clicks=False,
        tags=["receipt"],
        headers={"X-Order": "42"},
        stream_type="broadcast",
    )
    payload = payload_of(adapter, email)
    assert (payload["track_opens"], payload["track_clicks"]) == (True, False)
    assert payload["tag"] == "receipt" and payload["headers"] == {"X-Order": "42"}
    assert payload["stream_type"] == "broadcast"


def test_unset_tracking_is_left_to_the_account_default(adapter):
    payload = payload_of(adapter, make())
    assert "track_opens" not in payload and "track_clicks" not in payload


def test_an_unknown_stream_type_is_refused(adapter):
    with pytest.raises(InvalidMessage, match="transactional, broadcast, shared"):
        adapter.check(make(stream_type="bulk"), DOMAIN)


def test_metadata_is_passed_as_is_with_our_message_id(adapter):
    message_id = uuid.uuid4()
    email = make(metadata={"order": 42, "cart": {"items": 2}}, message_id=message_id)
    assert payload_of(adapter, email)["metadata"] == {
        "order": 42,
        "cart": {"items": 2},
        "txmail_id": str(message_id),
    }


def test_our_metadata_key_is_reserved(adapter):
    with pytest.raises(InvalidMessage, match="reserved"):
        adapter.check(make(metadata={"txmail_id": "x"}), DOMAIN)


def test_attachments_are_base64_with_content_type_and_encoding(adapter):
    email = make(
        attachments=[Attachment.from_bytes(b"%PDF", filename="a.pdf", mimetype="application/pdf")]
    )
    assert payload_of(adapter, email)["attachments"] == [
        {
            "filename": "a.pdf",
            "content": base64.b64encode(b"%PDF").decode(),
            "contentType": "application/pdf",
            "encoding": "base64",
        }
    ]


def test_an_attachment_without_a_filename_is_refused(adapter):
    email = make(attachments=[Attachment.from_bytes(b"x", filename="", mimetype="text/plain")])
    with pytest.raises(InvalidMessage, match="filename"):
        adapter.check(email, DOMAIN)


def unread(size, name="f.bin"):
    return Attachment(name, "application/octet-stream", size, lambda: pytest.fail("read"))


def test_a_file_over_10_mb_is_refused_before_any_request(adapter):
    with pytest.raises(MessageTooLarge, match="up to 10 MB"):
        adapter.check(make(attachments=[unread(10_000_001)]), DOMAIN)


def test_files_over_25_mb_together_are_refused_before_any_request(adapter):
    files = [unread(9_000_000, f"{i}.bin") for i in range(3)]
    with pytest.raises(MessageTooLarge, match="up to 25 MB"):
        adapter.check(make(attachments=files), DOMAIN)


def test_files_at_the_limits_are_accepted(adapter):
    adapter.check(
        make(attachments=[unread(10_000_000), unread(10_000_000), unread(5_000_000)]), DOMAIN
    )


def test_ical_event_becomes_ical_event(adapter):
    assert payload_of(adapter, make(ical_event=INVITE))["icalEvent"] == INVITE


def test_a_single_calendar_alternative_becomes_ical_event(adapter):
    email = make(alternatives=[(INVITE, "text/calendar; method=REQUEST")])
    assert payload_of(adapter, email)["icalEvent"] == INVITE


@pytest.mark.parametrize(
    "alternatives",
    [
        [("<amp/>", "text/x-amp-html")],
        [(INVITE, "text/calendar"), (INVITE, "text/calendar")],
        [(INVITE, "text/calendar"), ("x", "text/markdown")],
    ],
)
def test_other_alternatives_are_unsupported(adapter, alternatives):
    with pytest.raises(UnsupportedFeature, match="text/calendar"):
        adapter.check(make(alternatives=alternatives), DOMAIN)


def test_an_invitation_given_twice_is_refused(adapter):
    email = make(ical_event=INVITE, alternatives=[(INVITE, "text/calendar")])
    with pytest.raises(InvalidMessage, match="once"):
        adapter.check(email, DOMAIN)


def test_esp_extra_is_merged_into_the_payload(adapter):
    email = make(metadata={"a": 1}, esp_extra={"metadata": {"b": 2}, "priority": "high"})
    payload = payload_of(adapter, email)
    assert payload["metadata"] == {"a": 1, "b": 2} and payload["priority"] == "high"


# Responses


def response(status, body):
    return ProviderResponse(status, {}, json.dumps(body).encode())


def test_success_gives_the_message_id(adapter):
    body = {
        "to": "ann@x.example",
        "submitted_at": "2025-05-01T12:00:00Z",
        "message_id": "m-1",
        "email_id": "em_1",
        "status": "queued",
        "message": "Email queued for delivery.",
    }
    result = adapter.parse_send(response(200, body), DOMAIN)
    assert (result.provider_message_id, result.provider_message_ids) == ("m-1", ("m-1",))


def test_errors_carry_type_message_and_reason(adapter):
    body = {"error": "validation_error", "message": "subject is required", "reason": "subject"}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(400, body), DOMAIN)
    error = info.value
    assert (error.status, error.error_type, error.transient) == (400, "validation_error", False)
    assert "subject is required (subject)" in str(error)


@pytest.mark.parametrize(("status", "hint"), [(403, "API_KEY"), (404, "verified at MailerLogic")])
def test_403_and_404_say_what_to_check(adapter, status, hint):
    with pytest.raises(ProviderAPIError, match=hint):
        adapter.parse_send(response(status, {"error": "x", "message": "no"}), DOMAIN)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_are_transient(adapter, status):
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(status, {"error": "internal_error", "message": "x"}), DOMAIN)
    assert info.value.transient


def test_the_key_never_appears_in_errors(adapter):
    body = {"error": "invalid_api_key", "message": f"key {KEY} is unknown"}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(403, body), DOMAIN)
    assert KEY not in str(info.value)


def test_a_non_json_error_body_is_reported(adapter):
    with pytest.raises(ProviderAPIError, match="Bad Gateway"):
        adapter.parse_send(ProviderResponse(502, {}, b"<html>Bad Gateway</html>"), DOMAIN)


# Webhooks (the shape is our documented assumption; see the module docstring)


def event(kind="email.delivered", **data):
    return {
        "id": "evt_1",
        "type": kind,
        "created_at": "2025-05-01T12:00:00Z",
        "data": {"message_id": "m-1", "email_id": "em_1", "to": "ann@x.example", **data},
    }


def parse(adapter, body):
    return adapter.parse_webhook(json.dumps(body).encode(), "application/json")


def test_the_signature_header_defaults_and_can_be_overridden():
    assert MailerLogicAdapter(account()).signature_header() == "X-MailerLogic-Signature"
    custom = MailerLogicAdapter(account(WEBHOOK_SIGNATURE_HEADER="X-ML-Hmac"))
    assert custom.signature_header() == "X-ML-Hmac"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("email.delivered", "delivered"),
        ("email.opened", "opened"),
        ("email.clicked", "clicked"),
        ("email.bounced", "bounced"),
        ("email.complained", "complained"),
        ("email.sent", "unknown"),
    ],
)
def test_event_types_map_to_ours(adapter, kind, expected):
    [parsed] = parse(adapter, event(kind))
    assert (parsed.type, parsed.provider_type) == (expected, kind)


def test_event_fields_are_read(adapter):
    message_id = str(uuid.uuid4())
    raw = event(
        "email.bounced",
        metadata={"txmail_id": message_id},
        bounce_type="hard",
        reason="mailbox does not exist",
        smtp_response="550 5.1.1 unknown user",
    )
    [parsed] = parse(adapter, raw)
    assert (parsed.provider_event_id, parsed.provider_message_id) == ("evt_1", "m-1")
    assert (parsed.message_id, parsed.recipient) == (message_id, "ann@x.example")
    assert (parsed.bounce_type, parsed.reason) == ("hard", "mailbox does not exist")
    assert parsed.mta_response == "550 5.1.1 unknown user"
    assert parsed.occurred_at == datetime(2025, 5, 1, 12, tzinfo=UTC)
    assert parsed.raw == raw


def test_click_details_are_read(adapter):
    [parsed] = parse(
        adapter, event("email.clicked", url="https://x.example", user_agent="UA", ip="1.2.3.4")
    )
    assert (parsed.click_url, parsed.user_agent, parsed.ip) == (
        "https://x.example",
        "UA",
        "1.2.3.4",
    )


def test_the_email_id_stands_in_for_a_missing_message_id(adapter):
    raw = event()
    del raw["data"]["message_id"]
    assert parse(adapter, raw)[0].provider_message_id == "em_1"


@pytest.mark.parametrize("created_at", [1746100800, 1746100800.0, "2025-05-01T14:00:00+02:00"])
def test_times_may_be_unix_seconds_or_iso_with_a_zone(adapter, created_at):
    raw = event() | {"created_at": created_at}
    assert parse(adapter, raw)[0].occurred_at == datetime(2025, 5, 1, 12, tzinfo=UTC)


def test_several_events_come_as_an_events_array(adapter):
    body = {"events": [event() | {"id": "a"}, event("email.opened") | {"id": "b"}]}
    assert [(e.provider_event_id, e.type) for e in parse(adapter, body)] == [
        ("a", "delivered"),
        ("b", "opened"),
    ]


MALFORMED = {
    "not-json": b"{oops",
    "not-utf8": b'{"id": "\xff"}',
    "events-not-a-list": b'{"events": {}}',
    "event-not-an-object": b'{"events": [1]}',
    "a-bare-list": b"[]",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bodies_are_refused(adapter, body):
    with pytest.raises(WebhookPayloadError):
        adapter.parse_webhook(body, "application/json")


BAD_EVENTS = {
    "no-id": {"id": None},
    "empty-id": {"id": ""},
    "no-type": {"type": None},
    "no-data": {"data": None},
    "data-a-list": {"data": []},
    "no-time": {"created_at": None},
    "naive-time": {"created_at": "2025-05-01T12:00:00"},
    "bad-time": {"created_at": "yesterday"},
    "boolean-time": {"created_at": True},
    "metadata-a-list": {"data": {"metadata": ["x"]}},
    "recipient-not-a-string": {"data": {"to": ["ann@x.example"]}},
}


@pytest.mark.parametrize("fields", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_events_of_the_wrong_shape_refuse_the_whole_batch(adapter, fields):
    bad = {k: v for k, v in (event() | fields).items() if v is not None}
    with pytest.raises(WebhookPayloadError):
        parse(adapter, {"events": [event(), bad]})


def test_the_messages_stream_is_the_stream_type_where_mailerlogic_has_it(adapter):
    assert payload_of(adapter, make(stream="broadcast"))["stream_type"] == "broadcast"
    assert payload_of(adapter, make(stream="transactional"))["stream_type"] == "transactional"
    assert "stream_type" not in payload_of(adapter, make(stream="newsletters"))
    # msg.stream_type says it outright.
    explicit = make(stream="broadcast", stream_type="shared")
    assert payload_of(adapter, explicit)["stream_type"] == "shared"
