"""A third-party adapter (tests/custom_adapter.py, the example of docs/adapters.md),
configured by dotted path and used end to end: django.core.mail → backend → a small
HTTP server standing in for the provider, and its webhooks through our view."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core import mail

from django_txmail.checks import check_settings
from django_txmail.conf import get_settings
from django_txmail.exceptions import InvalidMessage, ProviderAPIError, UnsupportedFeature
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, DeliveryEvent, Message, SendingDomain
from django_txmail.providers import load_adapter
from tests.conftest import use_our_backend
from tests.custom_adapter import AcmeMailAdapter

pytestmark = pytest.mark.django_db

API_KEY = "acme-live-key-0123456789"
WEBHOOK_SECRET = "acme-webhook-secret"
SENDER = "Shop <shop@acme.example>"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "adapters.md"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    payload: dict


@dataclass
class AcmeMail:
    """What the stand-in for Acme Mail received, and the answers it is told to give."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)

    def answer(self, status: int, body: dict) -> None:
        self.answers.append((status, body))


def serve(state: AcmeMail) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(self.path, dict(self.headers), json.loads(body)))
            status, answer = (
                state.answers.pop(0)
                if state.answers
                else (202, {"id": f"acme-{len(state.requests)}"})
            )
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def acme(settings) -> Iterator[AcmeMail]:
    """Acme Mail on an ephemeral loopback port, an account using the adapter by dotted
    path, a verified sending domain, and our backend in use."""
    state = AcmeMail()
    server = serve(state)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    settings.TXMAIL = {
        "PROVIDERS": {
            "acme": {
                "ADAPTER": "tests.custom_adapter.AcmeMailAdapter",
                "API_KEY": API_KEY,
                "API_URI": state.url,
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        },
        "TIMEOUT": 5,
        "RETRY_BACKOFF": (60, 600),
    }
    use_our_backend(settings)
    SendingDomain.objects.create(
        name="acme.example", provider="acme", status=SendingDomain.Status.VERIFIED
    )
    yield state
    server.shutdown()
    server.server_close()


def nothing_happened(acme: AcmeMail) -> bool:
    return acme.requests == [] and Message.objects.count() == 0


# Configuration


def test_the_adapter_is_named_by_dotted_path_and_passes_the_system_checks(acme):
    adapter = load_adapter(get_settings().account("acme"))
    assert isinstance(adapter, AcmeMailAdapter) and adapter.account.api_uri == acme.url
    assert check_settings() == []


def test_a_missing_credential_is_reported_by_the_system_checks(acme, settings):
    account = dict(settings.TXMAIL["PROVIDERS"]["acme"])
    del account["API_KEY"]
    settings.TXMAIL = settings.TXMAIL | {"PROVIDERS": {"acme": account}}
    [error] = check_settings()
    assert error.id == "txmail.E004" and "API_KEY" in error.msg


# Sending


def test_send_mail_reaches_acme_mail_in_its_wire_format(acme):
    msg = TxMessage(
        "Receipt",
        "Thanks",
        SENDER,
        ["Ann <ann@x.example>"],
        cc=["cc@x.example"],
        bcc=["audit@x.example"],
        reply_to=["help@acme.example"],
        tags=["receipt", "eu"],
        metadata={"order": 42},
    )
    msg.attach_alternative("<p>Thanks</p>", "text/html")
    assert msg.send() == 1
    [received] = acme.requests
    message = Message.objects.get()
    assert received.path == "/v1/domains/acme.example/messages"
    assert received.headers["Authorization"] == f"Bearer {API_KEY}"
    assert received.headers["Idempotency-Key"] == message.idempotency_key
    assert received.payload == {
        "from": '"Shop" <shop@acme.example>',
        "to": ['"Ann" <ann@x.example>'],
        "cc": ["cc@x.example"],
        "bcc": ["audit@x.example"],
        "reply_to": "help@acme.example",
        "subject": "Receipt",
        "text": "Thanks",
        "html": "<p>Thanks</p>",
        "tags": ["receipt", "eu"],
        "metadata": {"order": 42, "txmail_id": str(message.pk)},
    }
    assert (message.provider, message.status, message.provider_message_id) == (
        "acme",
        "sent",
        "acme-1",
    )
    assert msg.txmail.provider_message_ids == ["acme-1"]


@pytest.mark.parametrize(
    ("extras", "feature"),
    [
        ({"track_opens": True}, "open tracking"),
        ({"template_id": "welcome"}, "provider-hosted templates"),
        ({"headers": {"X-Order": "42"}}, "extra headers"),
    ],
)
def test_what_acme_mail_cannot_carry_is_refused_before_anything_is_stored(acme, extras, feature):
    with pytest.raises(UnsupportedFeature, match=feature) as info:
        TxMessage("Hi", "b", SENDER, ["ann@x.example"], **extras).send()
    assert info.value.provider == "acme"
    assert nothing_happened(acme)


def test_an_attachment_is_refused_naming_provider_and_feature(acme):
    msg = mail.EmailMessage("Hi", "b", SENDER, ["ann@x.example"])
    msg.attach("r.pdf", b"%PDF", "application/pdf")
    with pytest.raises(UnsupportedFeature, match="'acme' cannot send attachments"):
        msg.send()
    assert nothing_happened(acme)


def test_the_adapters_own_check_runs_before_anything_is_stored(acme):
    with pytest.raises(InvalidMessage, match="reserved"):
        TxMessage("Hi", "b", SENDER, ["ann@x.example"], metadata={"txmail_id": "x"}).send()
    assert nothing_happened(acme)


def test_a_refusal_is_permanent_and_reported_with_acmes_error(acme):
    acme.answer(422, {"error": {"code": "invalid_recipient", "message": "No such mailbox"}})
    with pytest.raises(ProviderAPIError, match="No such mailbox") as info:
        mail.send_mail("Hi", "b", SENDER, ["ann@x.example"])
    assert (info.value.status, info.value.error_type, info.value.transient) == (
        422,
        "invalid_recipient",
        False,
    )
    assert Message.objects.get().status == "failed"


def test_an_outage_is_transient_and_the_message_waits_for_its_retry(acme):
    acme.answer(503, {"error": {"code": "unavailable", "message": "Try later"}})
    assert mail.send_mail("Hi", "b", SENDER, ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "queued" and message.next_attempt_at is not None
    assert Attempt.objects.get(message=message).http_status == 503


def test_the_api_key_never_shows_in_errors(acme):
    acme.answer(401, {"error": {"code": "unauthorized", "message": f"Bad key {API_KEY}"}})
    with pytest.raises(ProviderAPIError) as info:
        mail.send_mail("Hi", "b", SENDER, ["ann@x.example"])
    assert API_KEY not in str(info.value) and "[redacted]" in str(info.value)
    assert API_KEY not in Message.objects.get().last_error
    assert API_KEY not in repr(load_adapter(get_settings().account("acme")).account)


# Webhooks through our view


def post_events(client, events, secret: str = WEBHOOK_SECRET):
    body = json.dumps({"events": events}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(
        "/txmail/webhooks/acme/",
        body,
        content_type="application/json",
        headers={"X-Acme-Signature": signature},
    )


def event(kind: str, event_id: str, **fields) -> dict:
    return {"id": event_id, "type": kind, "timestamp": 1_800_000_000, **fields}


def test_signed_webhooks_move_the_message_by_either_id(acme, client):
    mail.send_mail("Hi", "b", SENDER, ["ann@x.example"])
    message = Message.objects.get()
    events = [
        event("delivered", "e1", message_id="acme-1", recipient="ann@x.example"),
        event("opened", "e2", metadata={"txmail_id": str(message.pk)}),
        event("snoozed", "e3", message_id="acme-1"),
    ]
    response = post_events(client, events)
    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 3 and response.json()["unmatched"] == 0
    message.refresh_from_db()
    assert message.status == "delivered"
    assert message.recipient_status == {"ann@x.example": "delivered"}
    kinds = dict(DeliveryEvent.objects.values_list("provider_event_id", "type"))
    assert kinds == {"e1": "delivered", "e2": "opened", "e3": "unknown"}
    assert post_events(client, events).json()["duplicates"] == 3


def test_a_webhook_with_a_wrong_signature_is_refused(acme, client):
    response = post_events(client, [event("delivered", "e1")], secret="not-the-secret")
    assert response.status_code == 403 and DeliveryEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"events": [{"id": "e1"}]}',
        b'{"events": [{"id": "e1", "type": "delivered", "timestamp": "soon"}]}',
        b'{"events": [{"id": "e1", "type": "delivered", "timestamp": 1e30}]}',
        b'{"events": [{"id": "e1", "type": ["x"], "timestamp": 1}]}',
    ],
)
def test_a_malformed_webhook_is_a_400_and_nothing_is_stored(acme, client, body):
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        "/txmail/webhooks/acme/",
        body,
        content_type="application/json",
        headers={"X-Acme-Signature": signature},
    )
    assert response.status_code == 400 and DeliveryEvent.objects.count() == 0


# The documentation shows this very adapter


def test_the_example_in_the_docs_is_the_tested_adapter():
    source = (Path(__file__).parent / "custom_adapter.py").read_text()
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    assert source in blocks
