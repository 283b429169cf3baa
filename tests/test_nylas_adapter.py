"""The Nylas adapter as a pure translation: OutboundEmail → request, response → result."""

from __future__ import annotations

import base64
import datetime as dt
import email.parser
import email.policy
import io
import json
import uuid

import pytest
from django.utils import timezone

from django_txmail.conf import ProviderAccount
from django_txmail.exceptions import (
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnsupportedFeature,
)
from django_txmail.outbound_email import Address, Attachment, OutboundEmail
from django_txmail.providers import ProviderResponse, Route
from django_txmail.providers.nylas.send import NylasAdapter

KEY = "nyk_secret_123"
ACCOUNT = ProviderAccount("nylas", "x", "https://api.us.nylas.com", {"API_KEY": KEY})
DOMAIN = Route("domain", "nylas", domain="shop.example")
GRANT = Route("grant", "nylas", grant_id="grant-1")


@pytest.fixture
def adapter():
    return NylasAdapter(ACCOUNT)


def payload_of(request):
    assert request.transport == "json"
    return json.loads(request.body)


def make(**kwargs):
    base = {
        "from_email": Address("hi@shop.example", "Shop"),
        "to": [Address("ann@x.example", "Ann")],
    }
    return OutboundEmail(**(base | kwargs))


def test_domain_route_sends_from_as_one_object(adapter):
    req = adapter.build_send(make(subject="Hello", text="Hi"), DOMAIN)
    assert req.url == "https://api.us.nylas.com/v3/domains/shop.example/messages/send"
    assert payload_of(req)["from"] == {"email": "hi@shop.example", "name": "Shop"}
    assert payload_of(req)["to"] == [{"email": "ann@x.example", "name": "Ann"}]


def test_grant_route_sends_from_as_a_one_element_array(adapter):
    req = adapter.build_send(make(subject="Hello", text="Hi"), GRANT)
    assert req.url == "https://api.us.nylas.com/v3/grants/grant-1/messages/send"
    assert payload_of(req)["from"] == [{"email": "hi@shop.example", "name": "Shop"}]


def test_text_only_body_is_marked_plaintext(adapter):
    payload = payload_of(adapter.build_send(make(text="Hi"), DOMAIN))
    assert payload["body"] == "Hi" and payload["is_plaintext"] is True


def test_html_body_is_sent_as_html(adapter):
    payload = payload_of(adapter.build_send(make(text="Hi", html="<p>Hi</p>"), DOMAIN))
    assert payload["body"] == "<p>Hi</p>" and "is_plaintext" not in payload


def test_cc_bcc_reply_to_and_headers(adapter):
    email = make(
        cc=[Address("c@x.example")],
        bcc=[Address("b@x.example")],
        reply_to=[Address("r@x.example", "R")],
        headers={"X-Order": "42"},
    )
    payload = payload_of(adapter.build_send(email, DOMAIN))
    assert payload["cc"] == [{"email": "c@x.example", "name": ""}]
    assert payload["bcc"] == [{"email": "b@x.example", "name": ""}]
    assert payload["reply_to"] == [{"email": "r@x.example", "name": "R"}]
    assert payload["custom_headers"] == [{"name": "X-Order", "value": "42"}]


def test_auth_idempotency_and_content_type_headers(adapter):
    req = adapter.build_send(make(idempotency_key="txmail-abc"), DOMAIN)
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert req.headers["Idempotency-Key"] == "txmail-abc"
    assert req.headers["Content-Type"] == "application/json"


def test_metadata_values_become_strings_and_carry_our_message_id(adapter):
    message_id = uuid.uuid4()
    email = make(metadata={"order": 42, "vip": True}, message_id=message_id)
    payload = payload_of(adapter.build_send(email, DOMAIN))
    assert payload["metadata"] == {"order": "42", "vip": "true", "txmail_id": str(message_id)}


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({"k": {"nested": 1}}, "strings or numbers"),
        ({"k": "v" * 501}, "at most 500"),
        ({f"k{i}": "v" for i in range(50)}, "at most 50"),
        ({"txmail_id": "x"}, "reserved"),
    ],
)
def test_metadata_nylas_cannot_take_is_refused(adapter, metadata, match):
    with pytest.raises(InvalidMessage, match=match):
        adapter.check(make(metadata=metadata), DOMAIN)


def test_tracking_options(adapter):
    payload = payload_of(adapter.build_send(make(track_opens=True, track_clicks=False), DOMAIN))
    assert payload["tracking_options"] == {"opens": True, "links": False}


def test_send_at_is_unix_seconds(adapter):
    when = timezone.now().replace(microsecond=0) + dt.timedelta(hours=2)
    payload = payload_of(adapter.build_send(make(send_at=when), DOMAIN))
    assert payload["send_at"] == int(when.timestamp())


def test_no_send_at_means_no_send_at_whatever_the_clock(adapter):
    assert "send_at" not in payload_of(adapter.build_send(make(), DOMAIN))


def test_only_the_grant_route_is_scheduled_by_nylas(adapter):
    assert adapter.scheduling_window(DOMAIN) is None
    low, high = adapter.scheduling_window(GRANT)
    assert low >= dt.timedelta(minutes=1) and high == dt.timedelta(days=30)


def test_provider_template_with_variables_and_no_body(adapter):
    email = make(template_id="tpl_9", template_vars={"name": "Ann"})
    payload = payload_of(adapter.build_send(email, DOMAIN))
    assert payload["template"] == {"id": "tpl_9", "strict": True, "variables": {"name": "Ann"}}
    assert "body" not in payload and "subject" not in payload


def test_reply_to_message_id(adapter):
    payload = payload_of(adapter.build_send(make(reply_to_message_id="<m1@x>"), DOMAIN))
    assert payload["reply_to_message_id"] == "<m1@x>"


def test_esp_extra_is_merged_into_the_payload(adapter):
    email = make(track_opens=True, esp_extra={"tracking_options": {"label": "welcome"}})
    payload = payload_of(adapter.build_send(email, DOMAIN))
    assert payload["tracking_options"] == {"opens": True, "label": "welcome"}


def test_small_attachments_go_base64_in_json(adapter):
    email = make(
        attachments=[
            Attachment.from_bytes(b"hello", filename="a.txt", mimetype="text/plain"),
            Attachment.from_bytes(
                b"GIF", filename="l.gif", mimetype="image/gif", content_id="logo", inline=True
            ),
        ]
    )
    req = adapter.build_send(email, DOMAIN)
    assert req.transport == "json"
    assert payload_of(req)["attachments"] == [
        {
            "filename": "a.txt",
            "content_type": "text/plain",
            "content_disposition": "attachment",
            "content": base64.b64encode(b"hello").decode(),
        },
        {
            "filename": "l.gif",
            "content_type": "image/gif",
            "content_disposition": "inline",
            "content_id": "logo",
            "content": base64.b64encode(b"GIF").decode(),
        },
    ]


def test_large_attachments_go_as_streamed_multipart(adapter):
    big = bytes(range(256)) * (4 * 1024 * 4)  # 4 MiB
    opened = []

    def opener():
        opened.append(True)
        return io.BytesIO(big)

    email = make(
        subject="Big",
        idempotency_key="k-1",
        attachments=[
            Attachment(
                filename="big.bin",
                mimetype="application/octet-stream",
                size=len(big),
                opener=opener,
            ),
            Attachment.from_bytes(
                b"GIF", filename="l.gif", mimetype="image/gif", content_id="logo", inline=True
            ),
        ],
    )
    req = adapter.build_send(email, DOMAIN)
    assert req.transport == "multipart"
    assert opened == [], "the file is read only while the request streams"
    raw = req.body.read()
    assert opened == [True] and len(raw) == len(req.body)
    parsed = email_parser_for(req.headers["Content-Type"], raw)
    parts = {p.get_param("name", header="content-disposition"): p for p in parsed.iter_parts()}
    assert sorted(parts) == ["file0", "logo", "message"]
    message = json.loads(parts["message"].get_payload(decode=True))
    assert message["subject"] == "Big"
    assert "attachments" not in message, "the files are the parts"
    assert parts["file0"].get_payload(decode=True) == big
    assert parts["file0"].get_filename() == "big.bin"
    assert parts["logo"].get_payload(decode=True) == b"GIF"
    assert (parts["logo"].get_filename(), parts["logo"].get_content_type()) == (
        "l.gif",
        "image/gif",
    )


def test_an_inline_image_over_3_mb_goes_in_a_part_named_by_its_content_id(adapter):
    image = Attachment.from_bytes(
        b"\x89PNG" * 800_000,
        filename="logo.png",
        mimetype="image/png",
        content_id="logo@shop",
        inline=True,
    )
    pdf = Attachment.from_bytes(
        b"%PDF", filename="a.pdf", mimetype="application/pdf", content_id="not-inline"
    )
    email = make(html='<img src="cid:logo@shop">', attachments=[pdf, image])
    adapter.check(email, DOMAIN)
    req = adapter.build_send(email, DOMAIN)
    parsed = email_parser_for(req.headers["Content-Type"], req.body.read())
    names = [p.get_param("name", header="content-disposition") for p in parsed.iter_parts()]
    assert names == ["message", "file0", "logo@shop"]


def test_multipart_body_is_identical_on_every_attempt(adapter):
    big = Attachment.from_bytes(b"x" * 3_100_000, filename="a.bin", mimetype="application/pdf")
    email = make(idempotency_key="same-key", attachments=[big])
    first, second = (adapter.build_send(email, DOMAIN) for _ in range(2))
    assert first.headers["Content-Type"] == second.headers["Content-Type"]
    assert first.body.read() == second.body.read()


@pytest.mark.parametrize("content_id", ["message", "file0", "file12", 'say"cheese'])
def test_an_inline_image_whose_content_id_cannot_name_its_part_is_refused(adapter, content_id):
    # Over 3 MB the part's name is the Content-ID: "message" would collide with the
    # message part, "file0" would read as a plain attachment.
    big = Attachment.from_bytes(
        b"x" * 3_100_000,
        filename="a.png",
        mimetype="image/png",
        content_id=content_id,
        inline=True,
    )
    with pytest.raises(InvalidMessage, match="Content-ID .* another Content-ID"):
        adapter.check(make(attachments=[big]), DOMAIN)


def test_an_inline_image_named_message_is_sent_as_json_under_3_mb(adapter):
    small = Attachment.from_bytes(
        b"x" * 1_000, filename="a.png", mimetype="image/png", content_id="message", inline=True
    )
    email = make(attachments=[small])
    adapter.check(email, DOMAIN)
    assert (
        payload_of(adapter.build_send(email, DOMAIN))["attachments"][0]["content_id"] == "message"
    )


def test_a_big_body_without_attachments_goes_as_multipart(adapter):
    req = adapter.build_send(make(html="<p>" + "x" * 3_100_000 + "</p>"), DOMAIN)
    assert req.transport == "multipart"


def test_json_size_counts_escaped_filenames_and_esp_extra(adapter):
    # Just under 3 MB as base64; an escaped Cyrillic filename or esp_extra pushes it over.
    size = (3_000_000 - 1_000) * 3 // 4
    plain = Attachment.from_bytes(b"x" * size, filename="a.pdf", mimetype="application/pdf")
    assert adapter.build_send(make(attachments=[plain]), DOMAIN).transport == "json"
    cyrillic = Attachment.from_bytes(
        b"x" * size, filename="ж" * 300 + ".pdf", mimetype="application/pdf"
    )
    assert adapter.build_send(make(attachments=[cyrillic]), DOMAIN).transport == "multipart"
    extra = make(attachments=[plain], esp_extra={"x": "y" * 5_000})
    assert adapter.build_send(extra, DOMAIN).transport == "multipart"


def test_the_switch_to_multipart_happens_exactly_at_the_json_limit(adapter):
    transports = {}
    for size in range(2_249_000, 2_250_200, 50):
        attachment = Attachment.from_bytes(
            b"\xff" * size, filename="f.bin", mimetype="application/octet-stream"
        )
        req = adapter.build_send(make(attachments=[attachment]), DOMAIN)
        transports[size] = req.transport
        if req.transport == "json":
            assert len(req.body) <= 3_000_000
    switch = min(size for size, transport in transports.items() if transport == "multipart")
    assert all(transports[size] == "json" for size in transports if size < switch)
    attachment = Attachment.from_bytes(
        b"\xff" * (switch - 50), filename="f.bin", mimetype="application/octet-stream"
    )
    assert len(adapter.build_send(make(attachments=[attachment]), DOMAIN).body) > 2_999_900


def test_request_repr_never_shows_the_api_key(adapter):
    req = adapter.build_send(make(), DOMAIN)
    assert KEY in req.headers["Authorization"] and KEY not in repr(req)


def email_parser_for(content_type, raw):
    return email.parser.BytesParser(policy=email.policy.default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )


def test_over_25_mb_is_refused_before_any_request(adapter):
    huge = Attachment(
        filename="huge.bin",
        mimetype="application/octet-stream",
        size=25_000_000,
        opener=lambda: pytest.fail("must not be read"),
    )
    with pytest.raises(MessageTooLarge, match="25 MB"):
        adapter.check(make(attachments=[huge]), DOMAIN)


@pytest.mark.parametrize("feature", ["tags", "alternatives", "stream_type", "merge_data"])
def test_features_nylas_cannot_carry_raise_unsupported(adapter, feature):
    value = {
        "tags": ["a"],
        "alternatives": [("x", "text/calendar")],
        "stream_type": "broadcast",
        "merge_data": {"a@x.example": {"n": 1}},
    }[feature]
    with pytest.raises(UnsupportedFeature) as info:
        adapter.check(make(**{feature: value}), DOMAIN)
    assert info.value.provider == "nylas"


def test_message_without_to_is_unsupported(adapter):
    with pytest.raises(UnsupportedFeature, match="without To"):
        adapter.check(make(to=[], bcc=[Address("b@x.example")]), DOMAIN)


def test_header_overrides_are_unsupported(adapter):
    with pytest.raises(UnsupportedFeature, match="To or Cc header"):
        adapter.check(make(header_overrides={"To": [Address("l@x.example")]}), DOMAIN)


def response(status, body, **headers):
    return ProviderResponse(status, headers, json.dumps(body).encode())


def test_domain_success_is_parsed(adapter):
    result = adapter.parse_send(
        response(200, {"request_id": "r1", "data": {"id": "m1", "object": "message"}}), DOMAIN
    )
    assert (result.provider_message_id, result.request_id, result.idempotent_replay) == (
        "m1",
        "r1",
        False,
    )


def test_grant_schedule_id_and_idempotent_replay_are_parsed(adapter):
    result = adapter.parse_send(
        response(
            200,
            {"request_id": "r", "grant_id": "g", "data": {"id": "m", "schedule_id": "s"}},
            **{"Idempotent-Response": "true"},
        ),
        GRANT,
    )
    assert result.schedule_id == "s" and result.idempotent_replay


def test_error_envelope_becomes_provider_api_error(adapter):
    body = {"request_id": "req-9", "error": {"type": "invalid_request_error", "message": "bad to"}}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(400, body), DOMAIN)
    err = info.value
    assert (err.status, err.error_type, err.request_id, err.transient) == (
        400,
        "invalid_request_error",
        "req-9",
        False,
    )
    assert "bad to" in str(err) and "req-9" in str(err)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_server_errors_are_transient(adapter, status):
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(
            response(status, {"error": {"type": "x", "message": "m"}}, **{"Retry-After": "7"}),
            DOMAIN,
        )
    assert info.value.transient and info.value.retry_after == 7


def test_concurrent_idempotent_request_is_transient_not_a_failure(adapter):
    body = {"error": {"type": "api.concurrent_idempotent_request", "message": "in flight"}}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(409, body), DOMAIN)
    assert info.value.transient


def test_invalid_idempotent_request_is_permanent(adapter):
    body = {"error": {"type": "api.invalid_idempotent_request", "message": "other payload"}}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(409, body), DOMAIN)
    assert not info.value.transient


def test_the_api_key_never_appears_in_errors(adapter):
    body = {"error": {"type": "unauthorized", "message": f"key {KEY} is not valid"}}
    with pytest.raises(ProviderAPIError) as info:
        adapter.parse_send(response(401, body), DOMAIN)
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)


def test_non_json_error_body_is_reported(adapter):
    with pytest.raises(ProviderAPIError, match="Bad Gateway"):
        adapter.parse_send(ProviderResponse(502, {}, b"<html>Bad Gateway</html>"), DOMAIN)
