"""Our Nylas requests against those of Nylas's official Python SDK (``nylas``).

For each logical message, our adapter and the SDK send to the same loopback
server (the SDK's own ``api_uri`` option points it there); the requests must
say the same thing once the differences listed in ``docs/providers/nylas.md``
("Compared with Nylas's SDK") are normalised away. A new difference fails
here until it is fixed or listed there with its reason.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import nylas
import pytest
from nylas.resources.webhooks import extract_challenge_parameter

from django_txmail.conf import ProviderAccount
from django_txmail.providers import Route
from django_txmail.providers.nylas.send import NylasAdapter
from django_txmail.sending.transport import Transport
from tests.sdk_conformance import (
    LOGO,
    PDF,
    PHOTO,
    TIMEOUT,
    Captured,
    CaptureServer,
    Logical,
    capture_server,  # noqa: F401 (the capture fixture)
    wire_form,
)

pytestmark = pytest.mark.timeout(60)

API_KEY = "nyk_conformance"
DOMAIN = Route("domain", "nylas", domain="shop.example")
GRANT = Route("grant", "nylas", grant_id="grant-1")
SEND_AT = 1_900_000_000


FULL = Logical(
    sender=("noreply@shop.example", "Shop"),
    to=[("ann@x.example", "Ann Example"), ("bob@x.example", "")],
    cc=[("carol@x.example", "Carol")],
    bcc=[("audit@shop.example", "")],
    reply_to=[("help@shop.example", "Help"), ("sales@shop.example", "")],
    subject="Your receipt — order 1042",
    html='<p>Thanks!</p><img src="cid:logo@shop.example">',
    files=[PDF, LOGO],
    metadata={"order": "1042", "customer": "ann"},
    headers={"X-Campaign": "receipts", "X-Priority": "3"},
    track_opens=True,
    track_clicks=False,
    reply_to_message_id="<previous@shop.example>",
    idempotency_key="conformance-key-1",
)


MESSAGES = {
    "full": FULL,
    "plain text": replace(FULL, html=None, text="Thanks!\nShop", files=[PDF]),
    "template": replace(
        FULL, subject="", html=None, files=[], template_id="tpl-1", template_vars={"name": "Ann"}
    ),
    "inline image over 3 MB": replace(FULL, files=[PDF, PHOTO]),
}


def sdk_send(capture: CaptureServer, message: Logical, route: Route) -> Captured:
    """``message`` sent the way Nylas's SDK documents it."""
    client = nylas.Client(api_key=API_KEY, api_uri=capture.url, timeout=TIMEOUT)
    body = sdk_body(message, route)
    overrides = {"headers": {"Idempotency-Key": message.idempotency_key}}
    if route.kind == "grant":
        client.messages.send(route.grant_id, body, overrides=overrides)
    else:
        client.transactional_send.send(route.domain, body, overrides=overrides)
    return capture.take()


def sdk_body(message: Logical, route: Route) -> dict[str, Any]:
    def pairs(addresses: list[tuple[str, str]]) -> list[dict[str, str]]:
        return [{"email": e, "name": n} if n else {"email": e} for e, n in addresses]

    [sender] = pairs([message.sender])
    body: dict[str, Any] = {"from_": [sender] if route.kind == "grant" else sender}
    body["to"] = pairs(message.to)
    for key in ("cc", "bcc", "reply_to"):
        if getattr(message, key):
            body[key] = pairs(getattr(message, key))
    if message.subject:
        body["subject"] = message.subject
    if message.html is not None:
        body["body"] = message.html
    elif message.text is not None:
        body.update(body=message.text, is_plaintext=True)
    if message.files:
        body["attachments"] = [sdk_attachment(f) for f in message.files]
    if message.metadata:
        body["metadata"] = message.metadata
    if message.headers:
        body["custom_headers"] = [{"name": k, "value": v} for k, v in message.headers.items()]
    body["tracking_options"] = {"opens": message.track_opens, "links": message.track_clicks}
    if message.send_at:
        body["send_at"] = message.send_at
    if message.template_id:
        body["template"] = {"id": message.template_id, "variables": message.template_vars}
    if message.reply_to_message_id:
        body["reply_to_message_id"] = message.reply_to_message_id
    return body


def sdk_attachment(file) -> dict[str, Any]:
    """As the SDK's ``attach_file_request_builder`` and its inline example build it."""
    attachment = {
        "filename": file.filename,
        "content_type": file.mimetype,
        "content": io.BytesIO(file.content),
        "size": len(file.content),
    }
    if file.inline:
        attachment.update(content_id=file.content_id, is_inline=True, content_disposition="inline")
    return attachment


def our_send(capture: CaptureServer, message: Logical, route: Route) -> Captured:
    adapter = NylasAdapter(ProviderAccount("nylas", "nylas", capture.url, {"API_KEY": API_KEY}))
    email = message.outbound()
    adapter.check(email, route)
    with Transport(timeout=TIMEOUT) as transport:
        transport.call(adapter, adapter.build_send(email, route), adapter.parse_send, route)
    return capture.take()


def normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Remove the differences listed in docs/providers/nylas.md, one by one."""
    document = dict(document)
    # We send "name": "" for an address without a name; the SDK leaves the key out.
    for key in ("from", "to", "cc", "bcc", "reply_to"):
        value = document.get(key)
        if isinstance(value, dict):
            document[key] = _without_empty_name(value)
        elif isinstance(value, list):
            document[key] = [_without_empty_name(a) for a in value]
    # The SDK's attachments carry "size" and "is_inline"; Nylas reads the size from
    # the content and inline-ness from content_disposition, which is all we send.
    # We also say "attachment" where the SDK leaves the disposition to its default.
    if "attachments" in document:
        document["attachments"] = [
            {
                k: v
                for k, v in a.items()
                if k not in ("size", "is_inline")
                and (k, v) != ("content_disposition", "attachment")
            }
            for a in document["attachments"]
        ]
    # We send the template's "strict": true, Nylas's default, explicitly.
    if isinstance(document.get("template"), dict):
        document["template"] = {"strict": True, **document["template"]}
    return document


def _without_empty_name(address: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in address.items() if (k, v) != ("name", "")}


def compared(request: Captured) -> dict[str, Any]:
    form = wire_form(request, normalise)
    form["authorization"] = request.header("Authorization")
    form["idempotency_key"] = request.header("Idempotency-Key")
    return form


@pytest.mark.parametrize("route", [DOMAIN, GRANT], ids=["domain route", "grant route"])
@pytest.mark.parametrize("name", list(MESSAGES))
def test_our_request_says_what_the_sdks_says(capture, route, name):
    message = MESSAGES[name]
    if route.kind == "grant":
        message = replace(message, send_at=SEND_AT)
    ours, theirs = our_send(capture, message, route), sdk_send(capture, message, route)
    assert compared(ours) == compared(theirs)


def test_both_send_an_inline_image_over_3_mb_as_a_part_named_by_its_content_id(capture):
    message = MESSAGES["inline image over 3 MB"]
    for request in (our_send(capture, message, DOMAIN), sdk_send(capture, message, DOMAIN)):
        form = wire_form(request, normalise)
        assert form["media_type"] == "multipart/form-data"
        assert [f["name"] for f in form["files"]] == ["file0", "photo@shop.example"]
        assert "attachments" not in form["message"]


# Webhooks. Nylas's SDK has no signature helper; it has the challenge's.

CHALLENGES = [
    "challenge=abc-123",
    "challenge=a%2Fb%3Dc%26d",  # percent-encoded
    "challenge=two+words",  # "+" is a space in a query string
    "challenge=%C3%A9t%C3%A9",  # UTF-8
    "challenge=first&challenge=second",  # repeated: the first
    "other=1&challenge=x",
]


@pytest.mark.django_db
@pytest.mark.parametrize("query", CHALLENGES)
def test_we_answer_the_challenge_the_sdk_extracts(client, query):
    expected = extract_challenge_parameter(f"https://app.example/txmail/webhooks/nylas/?{query}")
    response = client.get(f"/txmail/webhooks/nylas/?{query}")
    assert (response.status_code, response.content.decode()) == (200, expected)


@pytest.mark.django_db
@pytest.mark.parametrize("query", ["", "challenge=", "other=1"])
def test_we_refuse_a_challenge_the_sdk_finds_none_in(client, query):
    with pytest.raises(ValueError):
        extract_challenge_parameter(f"https://app.example/txmail/webhooks/nylas/?{query}")
    assert client.get(f"/txmail/webhooks/nylas/?{query}").status_code != 200
