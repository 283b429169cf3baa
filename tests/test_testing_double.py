"""django_txmail.testing: provider requests recorded and answered in-process, no socket."""

from __future__ import annotations

import io
import threading

import pytest
import requests
from django.core import mail
from django.core.mail import EmailMessage

from django_txmail.exceptions import ProviderAPIError
from django_txmail.models import Message, SendingDomain
from django_txmail.providers import ProviderRequest
from django_txmail.testing import provider_requests, provider_response
from tests.conftest import use_our_backend

pytestmark = pytest.mark.django_db

#: Nothing listens there: a request that reached the network would fail.
CLOSED = "http://127.0.0.1:9"
SECRETS = {
    "nylas": {"API_KEY": "nylas-key-3f9a1c", "WEBHOOK_SECRET": "nylas-whsec-77d0"},
    "mailtrap": {"API_TOKEN": "mailtrap-token-b41e", "WEBHOOK_SECRET": "mailtrap-whsec-0c5e"},
    "mailerlogic": {"API_KEY": "mailerlogic-key-9d27", "WEBHOOK_SECRET": "ml-whsec-a6f3"},
}
MAILTRAP_FROM = "Shop <shop@mailtrap.example>"
MAILERLOGIC_FROM = "Shop <shop@mailerlogic.example>"


@pytest.fixture(autouse=True)
def accounts(settings, domain):
    """One account per provider, none of them reachable, and our backend in use."""
    settings.TXMAIL = {
        "PROVIDERS": {
            name: {"ADAPTER": name, "API_URI": CLOSED, **secrets}
            for name, secrets in SECRETS.items()
        },
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
    }
    use_our_backend(settings)
    SendingDomain.objects.filter(pk=domain.pk).update(status=SendingDomain.Status.VERIFIED)
    for name in ("mailtrap", "mailerlogic"):
        SendingDomain.objects.create(
            name=f"{name}.example", provider=name, status=SendingDomain.Status.VERIFIED
        )


def assert_no_secret(outbox) -> None:
    for request in outbox.requests:
        seen = " ".join(
            [request.method, request.url, repr(request), repr(dict(request.headers))]
            + [request.body.decode("latin-1")]
        )
        for secrets in SECRETS.values():
            for secret in secrets.values():
                assert secret not in seen


def test_a_domain_route_send_is_recorded_and_accepted_as_nylas_would(domain):
    with provider_requests() as outbox:
        assert mail.send_mail("Receipt", "Thanks", "shop@example.com", ["ann@example.net"]) == 1
    [request] = outbox.requests
    assert request.method == "POST"
    assert request.url == f"{CLOSED}/v3/domains/example.com/messages/send"
    assert request.json["subject"] == "Receipt"
    assert request.json["from"] == {"email": "shop@example.com", "name": ""}
    assert request.json["to"] == [{"email": "ann@example.net", "name": ""}]
    assert request.headers["Authorization"] == "[redacted]"
    assert request.headers["content-type"] == "application/json"
    message = Message.objects.get()
    assert request.headers["Idempotency-Key"] == message.idempotency_key
    assert message.status == "sent" and message.provider_message_id
    assert_no_secret(outbox)


def test_a_grant_route_send_goes_to_the_grants_url(grant):
    with provider_requests() as outbox:
        mail.send_mail("Hello", "From my mailbox", "alice@example.org", ["bob@example.net"])
    [request] = outbox.requests
    assert request.url == f"{CLOSED}/v3/grants/grant-alice/messages/send"
    assert request.json["from"] == [{"email": "alice@example.org", "name": ""}]
    assert Message.objects.get().status == "sent"


def test_mailtrap_gets_one_send_with_an_id_per_recipient():
    msg = EmailMessage("Receipt", "Thanks", MAILTRAP_FROM, ["ann@example.net"], cc=["c@x.example"])
    with provider_requests() as outbox:
        assert msg.send() == 1
    [request] = outbox.requests
    assert request.url == f"{CLOSED}/api/send"
    assert request.json["from"] == {"email": "shop@mailtrap.example", "name": "Shop"}
    assert request.json["text"] == "Thanks"
    assert request.headers["Api-Token"] == "[redacted]"
    assert msg.txmail.status == "sent" and len(msg.txmail.provider_message_ids) == 1
    assert_no_secret(outbox)


def test_several_mailtrap_messages_go_in_one_batch_request():
    messages = [
        EmailMessage(f"Order {n}", "Shipped", MAILTRAP_FROM, [f"buyer{n}@example.net"])
        for n in range(3)
    ]
    with provider_requests() as outbox:
        assert mail.get_connection().send_messages(messages) == 3
    [request] = outbox.requests
    assert request.url == f"{CLOSED}/api/batch"
    assert [item["subject"] for item in request.json["requests"]] == [
        "Order 0",
        "Order 1",
        "Order 2",
    ]
    ids = [m.txmail.provider_message_ids for m in messages]
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 3
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert_no_secret(outbox)


def test_mailerlogic_gets_its_own_payload():
    with provider_requests() as outbox:
        mail.send_mail("Receipt", "Thanks", MAILERLOGIC_FROM, ["ann@example.net"])
    [request] = outbox.requests
    assert request.url == f"{CLOSED}/api/v1/send"
    assert request.json["domain"] == "mailerlogic.example"
    assert request.json["to"] == "ann@example.net"
    assert request.headers["X-API-Key"] == "[redacted]"
    message = Message.objects.get()
    assert message.status == "sent" and message.provider_message_id
    assert_no_secret(outbox)


def test_a_large_nylas_message_is_recorded_as_its_multipart_parts():
    # Over 3 MB once base64-encoded, so Nylas gets multipart/form-data; every
    # byte value and CRLF occurs, to show the content comes back exactly.
    content = bytes(range(256)) * 10_000
    msg = EmailMessage("Report", "Attached", "shop@example.com", ["ann@example.net"])
    msg.attach("report.bin", content, "application/octet-stream")
    with provider_requests() as outbox:
        msg.send()
    [request] = outbox.requests
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.json is None
    message, upload = request.parts
    assert (message.name, message.content_type) == ("message", "application/json")
    assert message.json["subject"] == "Report"
    assert "attachments" not in message.json
    assert (upload.name, upload.filename) == ("file0", "report.bin")
    assert upload.content_type == "application/octet-stream"
    assert upload.content == content
    assert request.part("file0") is upload
    assert Message.objects.get().status == "sent"
    assert_no_secret(outbox)


def test_a_stream_body_is_read_once_and_closed():
    stream = io.BytesIO(b'{"a": 1}')
    request = ProviderRequest(
        "POST", f"{CLOSED}/custom", {"Content-Type": "application/json"}, body=stream
    )
    with provider_requests() as outbox:
        answer = outbox.exchange(requests.Session(), request, 5)
    assert stream.closed
    assert outbox.requests[0].json == {"a": 1}
    assert (answer.status, answer.json()) == (200, {})


def test_a_canned_503_leaves_the_message_queued_for_retry():
    with provider_requests() as outbox:
        outbox.respond(
            503,
            json={"request_id": "r-1", "error": {"type": "provider_error", "message": "busy"}},
            headers={"Retry-After": "5"},
        )
        assert mail.send_mail("Hi", "b", "shop@example.com", ["ann@example.net"]) == 1
        message = Message.objects.get()
        assert message.status == "queued" and message.attempts == 1
        assert message.next_attempt_at is not None and "busy" in message.last_error
        # The canned answer is used up: the next request is accepted.
        mail.send_mail("Hi again", "b", "shop@example.com", ["ann@example.net"])
    assert [r.json["subject"] for r in outbox.requests] == ["Hi", "Hi again"]
    assert Message.objects.get(subject="Hi again").status == "sent"


def test_a_canned_400_raises_and_records_the_message_failed():
    with provider_requests() as outbox:
        outbox.respond(
            400,
            json={"request_id": "r-2", "error": {"type": "invalid_request_error", "message": "no"}},
        )
        with pytest.raises(ProviderAPIError) as caught:
            mail.send_mail("Hi", "b", "shop@example.com", ["ann@example.net"])
    assert caught.value.status == 400 and caught.value.error_type == "invalid_request_error"
    assert Message.objects.get().status == "failed"
    assert len(outbox.requests) == 1


def test_an_answer_callable_can_stand_for_a_network_failure():
    def answer(request):
        if "Timeout" in request.json["subject"]:
            raise requests.Timeout("no answer")
        return None  # the default success answer

    with provider_requests() as outbox:
        outbox.respond_with(answer)
        mail.send_mail("Timeout", "b", "shop@example.com", ["ann@example.net"])
        mail.send_mail("Fine", "b", "shop@example.com", ["ann@example.net"])
    assert Message.objects.get(subject="Timeout").last_error_type == "timeout"
    assert Message.objects.get(subject="Fine").status == "sent"
    assert len(outbox.requests) == 2


def test_no_socket_is_opened_inside_the_block_and_the_network_is_back_after_it():
    # API_URI is a closed port: only the double can make this send succeed.
    with provider_requests():
        mail.send_mail("Inside", "b", "shop@example.com", ["ann@example.net"])
    assert Message.objects.get(subject="Inside").status == "sent"
    mail.send_mail("Outside", "b", "shop@example.com", ["ann@example.net"])
    outside = Message.objects.get(subject="Outside")
    assert outside.status == "queued" and outside.last_error_type == "connection_error"


def test_the_previous_exchange_is_back_after_an_error_in_the_block():
    with pytest.raises(RuntimeError), provider_requests():
        raise RuntimeError("the test failed")
    mail.send_mail("After", "b", "shop@example.com", ["ann@example.net"])
    assert Message.objects.get().last_error_type == "connection_error"


def test_a_nested_block_records_its_own_requests_then_hands_back():
    with provider_requests() as outer:
        mail.send_mail("One", "b", "shop@example.com", ["ann@example.net"])
        with provider_requests() as inner:
            mail.send_mail("Two", "b", "shop@example.com", ["ann@example.net"])
        mail.send_mail("Three", "b", "shop@example.com", ["ann@example.net"])
    assert [r.json["subject"] for r in outer.requests] == ["One", "Three"]
    assert [r.json["subject"] for r in inner.requests] == ["Two"]


def test_clear_forgets_requests_but_not_queued_answers():
    with provider_requests() as outbox:
        mail.send_mail("One", "b", "shop@example.com", ["ann@example.net"])
        outbox.respond(503, json={}, times=2)
        outbox.clear()
        mail.send_mail("Two", "b", "shop@example.com", ["ann@example.net"])
    assert [r.json["subject"] for r in outbox.requests] == ["Two"]
    assert Message.objects.get(subject="Two").status == "queued"


def test_threads_share_the_queued_answers_without_losing_or_reusing_one():
    threads, calls = 8, 50
    start = threading.Barrier(threads)
    statuses: list[int] = []

    def send() -> None:
        start.wait()
        for _ in range(calls):
            request = ProviderRequest("POST", f"{CLOSED}/custom", {})
            statuses.append(outbox.exchange(requests.Session(), request, 5).status)

    with provider_requests() as outbox:
        outbox.respond(503, times=100)
        workers = [threading.Thread(target=send) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    assert len(outbox.requests) == threads * calls
    assert statuses.count(503) == 100 and statuses.count(200) == threads * calls - 100


def test_provider_response_encodes_json_with_its_content_type():
    answer = provider_response(202, json={"ok": True}, headers={"X-Request-Id": "r"})
    assert answer.json() == {"ok": True}
    assert answer.header("content-type") == "application/json"
    assert answer.header("X-Request-Id") == "r"
