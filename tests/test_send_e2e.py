"""Sending with django.core.mail through the backend to the sandbox, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
from email.mime.image import MIMEImage

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.core.management import call_command

from django_txmail.backends import EmailBackend
from django_txmail.conf import get_settings
from django_txmail.exceptions import (
    HeaderInjection,
    InvalidMessage,
    MessageTooLarge,
    ProviderAPIError,
    UnroutableSender,
)
from django_txmail.message import TxMessage
from django_txmail.models import Attempt, Message, MessageAttachment
from django_txmail.providers import load_adapter
from django_txmail.sending.attempt import deliver
from django_txmail.sending.transport import Transport
from tests.conftest import txmail_settings, wait_for_requests
from txmail_sandbox import Fault

pytestmark = [pytest.mark.django_db, pytest.mark.e2e]


def test_send_mail_goes_through_the_domain_route(sandbox, domain):
    sent = mail.send_mail("Welcome", "Hello Ann", "Shop <noreply@example.com>", ["ann@x.example"])
    assert sent == 1
    [received] = sandbox.messages
    assert (received.route, received.domain) == ("domain", "example.com")
    assert received.payload["from"] == {"email": "noreply@example.com", "name": "Shop"}
    assert received.payload["to"] == [{"email": "ann@x.example", "name": ""}]
    assert received.payload["body"] == "Hello Ann" and received.payload["is_plaintext"] is True
    message = Message.objects.get()
    assert message.status == Message.Status.SENT
    assert message.provider_message_id == received.id
    assert message.sending_domain == domain and message.route == "domain"


def test_the_row_exists_before_the_call_and_its_key_is_sent(sandbox, domain):
    mail.send_mail("Hi", "Body", "noreply@example.com", ["ann@x.example"])
    [received] = sandbox.messages
    message = Message.objects.get()
    assert received.idempotency_key == message.idempotency_key
    assert received.payload["metadata"]["txmail_id"] == str(message.pk)


def test_from_address_of_a_grant_uses_the_grant_route(sandbox, grant):
    mail.send_mail("Hi", "From my mailbox", "Alice <alice@example.org>", ["ann@x.example"])
    [received] = sandbox.messages
    assert (received.route, received.grant_id) == ("grant", "grant-alice")
    assert received.payload["from"] == [{"email": "alice@example.org", "name": "Alice"}]
    message = Message.objects.get()
    assert (message.route, message.grant, message.status) == ("grant", grant, "sent")


def test_grant_id_forces_the_grant_route(sandbox, domain, grant):
    msg = TxMessage("Hi", "b", "noreply@example.com", ["ann@x.example"], grant_id="grant-alice")
    msg.send()
    [received] = sandbox.messages
    assert received.route == "grant" and received.grant_id == "grant-alice"
    assert msg.txmail.status == "sent"


def test_send_mass_mail_sends_each_message(sandbox, domain):
    datatuple = [
        ("One", "1", "noreply@example.com", ["a@x.example"]),
        ("Two", "2", "noreply@example.com", ["b@x.example"]),
        ("Three", "3", "noreply@example.com", ["c@x.example"]),
    ]
    assert mail.send_mass_mail(datatuple) == 3
    assert sorted(m.payload["subject"] for m in sandbox.messages) == ["One", "Three", "Two"]
    assert Message.objects.filter(status="sent").count() == 3


def test_html_alternative_cc_bcc_reply_to_and_headers_arrive(sandbox, domain):
    msg = mail.EmailMultiAlternatives(
        "Receipt",
        "Plain",
        "Shop <noreply@example.com>",
        ["Zoë <zoe@bücher.example>"],
        cc=["cc@x.example"],
        bcc=["audit@x.example"],
        reply_to=["help@example.com"],
        headers={"X-Order": "42"},
    )
    msg.attach_alternative("<h1>Receipt</h1>", "text/html")
    msg.send()
    [received] = sandbox.messages
    payload = received.payload
    assert payload["body"] == "<h1>Receipt</h1>"
    assert payload["to"] == [{"email": "zoe@xn--bcher-kva.example", "name": "Zoë"}]
    assert payload["cc"] == [{"email": "cc@x.example", "name": ""}]
    assert payload["bcc"] == [{"email": "audit@x.example", "name": ""}]
    assert payload["reply_to"] == [{"email": "help@example.com", "name": ""}]
    assert payload["custom_headers"] == [{"name": "X-Order", "value": "42"}]
    assert Message.objects.get().text_body == "Plain"


def test_mail_admins_is_sent_from_server_email(sandbox, domain):
    mail.mail_admins("Disk full", "on web-1")
    [received] = sandbox.messages
    assert received.payload["from"]["email"] == "server@example.com"
    assert [r["email"] for r in received.payload["to"]] == ["ops@example.com"]
    assert received.payload["subject"].endswith("Disk full")


def test_sendtestemail_goes_through_the_backend(sandbox, domain):
    call_command("sendtestemail", "you@example.com")
    [received] = sandbox.messages
    assert received.payload["to"] == [{"email": "you@example.com", "name": ""}]
    assert received.payload["subject"].startswith("Test email from")


def test_attachments_and_inline_images_arrive_intact(sandbox, domain, tmp_path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(b"%PDF-1.4 invoice")
    msg = mail.EmailMultiAlternatives(
        "Invoice", "See attached", "noreply@example.com", ["ann@x.example"]
    )
    msg.attach_alternative('<img src="cid:logo@shop">', "text/html")
    msg.attach_file(str(path))
    msg.attach("notes.txt", "ünïcode", "text/plain")
    logo = MIMEImage(b"GIF89a-logo", "gif")
    logo.add_header("Content-ID", "<logo@shop>")
    msg.attach(logo)
    msg.send()
    [received] = sandbox.messages
    got = {a.filename: a for a in received.attachments}
    assert got["invoice.pdf"].content == b"%PDF-1.4 invoice"
    assert got["notes.txt"].content == "ünïcode".encode()
    assert got["logo.gif"].content_id == "logo@shop"
    assert got["logo.gif"].content_disposition == "inline"
    stored = MessageAttachment.objects.filter(message=Message.objects.get())
    assert [a.filename for a in stored] == ["invoice.pdf", "notes.txt", "logo.gif"]
    with default_storage.open(stored[0].storage_name) as f:
        assert f.read() == b"%PDF-1.4 invoice"


def test_five_megabyte_attachment_travels_as_multipart_byte_identical(sandbox, domain):
    content = os.urandom(5 * 1024 * 1024)
    msg = mail.EmailMessage("Big", "Attached", "noreply@example.com", ["ann@x.example"])
    msg.attach("big.bin", content, "application/octet-stream")
    msg.send()
    [received] = sandbox.messages
    assert received.transport == "multipart"
    [attachment] = received.attachments
    assert attachment.size == len(content)
    assert hashlib.sha256(attachment.content).digest() == hashlib.sha256(content).digest()
    row = MessageAttachment.objects.get()
    assert row.sha256 == hashlib.sha256(content).hexdigest()


def test_an_inline_image_over_3_mb_keeps_its_cid_link(sandbox, domain):
    # Over 3 MB the request is multipart, where Nylas takes a file part's name as
    # its Content-ID: the image must travel under "logo@shop", not "file1".
    msg = mail.EmailMultiAlternatives("Photo", "See it", "noreply@example.com", ["ann@x.example"])
    msg.attach_alternative('<img src="cid:logo@shop">', "text/html")
    msg.attach("notes.txt", "hello", "text/plain")
    image = os.urandom(3_200_000)
    photo = MIMEImage(image, "png")
    photo.add_header("Content-ID", "<logo@shop>")
    photo.add_header("Content-Disposition", "inline", filename="photo.png")
    msg.attach(photo)
    msg.send()
    [received] = sandbox.messages
    assert received.transport == "multipart"
    assert "attachments" not in received.payload, "the files are parts, as Nylas's SDK sends them"
    got = {a.filename: a for a in received.attachments}
    assert (got["photo.png"].content_id, got["photo.png"].content_disposition) == (
        "logo@shop",
        "inline",
    )
    assert got["photo.png"].content == image
    assert (got["notes.txt"].content_id, got["notes.txt"].content_disposition) == (
        None,
        "attachment",
    )


def test_thirty_megabyte_attachment_is_refused_with_no_request(sandbox, domain, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    msg = mail.EmailMessage("Huge", "Attached", "noreply@example.com", ["ann@x.example"])
    msg.attach("huge.bin", b"\0" * (30 * 1024 * 1024), "application/octet-stream")
    with pytest.raises(MessageTooLarge, match="25 MB"):
        msg.send()
    assert sandbox.requests == [] and Message.objects.count() == 0
    assert list(tmp_path.iterdir()) == []


def test_retry_after_a_client_timeout_reuses_the_key_and_sends_once(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {"TIMEOUT": 0.5}
    sandbox.inject(Fault(delay_after_accept=1.5))
    msg = TxMessage("Once", "only once", "noreply@example.com", ["ann@x.example"])
    assert msg.send() == 1  # accepted into the outbox; the caller must not send again
    message = Message.objects.get()
    assert msg.txmail.status == message.status == Message.Status.QUEUED
    [first] = Attempt.objects.filter(message=message)
    assert (first.outcome, first.error_type) == ("transient", "timeout")
    assert len(sandbox.messages) == 1, "the provider has it although we timed out"

    adapter = load_adapter(get_settings().account("nylas"))
    with Transport() as transport:
        result = deliver(message, adapter, transport)
    assert result is not None and result.idempotent_replay
    message.refresh_from_db()
    assert message.status == "sent" and message.attempts == 2
    assert len(sandbox.messages) == 1
    assert message.provider_message_id == sandbox.messages[0].id

    wait_for_requests(sandbox, 2)
    assert {r.idempotency_key for r in sandbox.requests} == {message.idempotency_key}


def test_same_idempotency_key_twice_sends_once(sandbox, domain):
    for _ in range(2):
        TxMessage(
            "Receipt",
            "b",
            "noreply@example.com",
            ["ann@x.example"],
            idempotency_key="order-7-receipt",
        ).send()
    assert len(sandbox.messages) == 1 and len(sandbox.requests) == 1
    assert Message.objects.get().idempotency_key == "order-7-receipt"


def test_permanent_provider_error_raises_and_marks_the_message_failed(sandbox, domain):
    sandbox.inject(Fault(status=400))
    with pytest.raises(ProviderAPIError) as info:
        mail.send_mail("Hi", "b", "noreply@example.com", ["ann@x.example"])
    assert info.value.status == 400 and not info.value.transient
    message = Message.objects.get()
    assert message.status == "failed" and message.last_error
    assert Attempt.objects.get(message=message).outcome == "permanent"


def test_transient_provider_error_leaves_the_message_queued_for_retry(sandbox, domain):
    sandbox.inject(Fault(status=503))
    assert mail.send_mail("Hi", "b", "noreply@example.com", ["ann@x.example"]) == 1
    message = Message.objects.get()
    assert message.status == "queued" and message.next_attempt_at is not None
    assert Attempt.objects.get(message=message).http_status == 503


def test_wrong_api_key_is_a_permanent_error_without_the_key(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {
        "PROVIDERS": {"nylas": settings.TXMAIL["PROVIDERS"]["nylas"] | {"API_KEY": "wrong-key-42"}}
    }
    with pytest.raises(ProviderAPIError) as info:
        mail.send_mail("Hi", "b", "noreply@example.com", ["ann@x.example"])
    assert info.value.status == 401 and "wrong-key-42" not in str(info.value)
    assert "wrong-key-42" not in Message.objects.get().last_error


def test_fail_silently_swallows_send_errors(sandbox, domain):
    sandbox.inject(Fault(status=400))
    assert (
        mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"], fail_silently=True) == 0
    )


def _bcc_header():
    return mail.EmailMessage(
        "s", "b", "noreply@example.com", ["a@x.example"], headers={"Bcc": "spy@x.example"}
    )


def _big():
    msg = mail.EmailMessage("s", "b", "noreply@example.com", ["a@x.example"])
    msg.attach("big.bin", b"\0" * (26 * 1024 * 1024), "application/octet-stream")
    return msg


@pytest.mark.parametrize(
    ("build", "error", "advice"),
    [
        (
            lambda: mail.EmailMessage("A\r\nB", "b", "noreply@example.com", ["a@x.example"]),
            HeaderInjection,
            "must be one line",
        ),
        (
            lambda: mail.EmailMessage("s", "b", "noreply@example.com", ["not-an-address"]),
            InvalidMessage,
            "write it as 'user@example.com'",
        ),
        (
            lambda: mail.EmailMessage("s", "b", "noreply@example.com", []),
            InvalidMessage,
            "give it at least one To address",
        ),
        (
            lambda: mail.EmailMessage("s", "b", "someone@elsewhere.example", ["a@x.example"]),
            UnroutableSender,
            "add the domain under Sending domains",
        ),
        (_big, MessageTooLarge, "Send large files as links"),
        (_bcc_header, InvalidMessage, "Pass them as bcc=[...]"),
    ],
    ids=[
        "crlf-subject",
        "invalid-address",
        "no-recipients",
        "unroutable-from",
        "too-large",
        "bcc-header",
    ],
)
def test_bad_input_raises_and_nothing_is_sent_or_recorded(sandbox, domain, build, error, advice):
    with pytest.raises(error) as info:
        EmailBackend().send_messages([build()])
    assert advice in str(info.value)
    assert sandbox.requests == [] and Message.objects.count() == 0


def test_unverified_domain_is_refused_outside_the_sandbox(sandbox, domain, settings):
    settings.TXMAIL = settings.TXMAIL | {
        "PROVIDERS": {"nylas": settings.TXMAIL["PROVIDERS"]["nylas"] | {"SANDBOX": False}}
    }
    with pytest.raises(UnroutableSender, match="not verified"):
        mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"])
    domain.allow_unverified = True
    domain.save()
    assert mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"]) == 1


def test_send_at_schedules_on_the_grant_route(sandbox, grant):
    from datetime import timedelta

    from django.utils import timezone

    when = timezone.now() + timedelta(hours=1)
    msg = TxMessage("Later", "b", "alice@example.org", ["a@x.example"], send_at=when)
    msg.send()
    [received] = sandbox.messages
    assert received.payload["send_at"] == int(when.timestamp())
    message = Message.objects.get()
    assert message.status == "scheduled"
    assert message.provider_schedule_id == received.schedule_id != ""


def test_tracking_template_and_metadata_reach_the_provider(sandbox, domain):
    sandbox.add_template("nylas", "tpl_welcome", subject="Hi {{name}}", html="<p>{{name}}</p>")
    msg = TxMessage(
        "",
        "",
        "noreply@example.com",
        ["a@x.example"],
        template_id="tpl_welcome",
        merge_global_data={"name": "Ann"},
        track_opens=True,
        track_clicks=True,
        metadata={"user": 7},
        reply_to_message_id="<prev@example.com>",
    )
    msg.send()
    payload = sandbox.messages[0].payload
    assert payload["template"] == {
        "id": "tpl_welcome",
        "strict": True,
        "variables": {"name": "Ann"},
    }
    assert payload["tracking_options"] == {"opens": True, "links": True}
    assert payload["metadata"]["user"] == "7"
    assert payload["reply_to_message_id"] == "<prev@example.com>"


def test_json_attachments_are_base64_on_the_wire(sandbox, domain):
    msg = mail.EmailMessage("s", "b", "noreply@example.com", ["a@x.example"])
    msg.attach("a.bin", b"\x00\xff", "application/octet-stream")
    msg.send()
    [received] = sandbox.messages
    assert received.transport == "json"
    assert received.attachments[0].content == b"\x00\xff"
    assert base64.b64decode(received.payload["attachments"][0]["content"]) == b"\x00\xff"


def test_the_sandbox_fixture_sends_the_tests_mail_through_django_txmail(
    txmail_sandbox, settings, domain
):
    # Not the suite's `sandbox` fixture: only TXMAIL, as the README's example does.
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    mail.send_mail("Welcome", "Hello Ann", "noreply@example.com", ["ann@x.example"])
    assert [m.payload["subject"] for m in txmail_sandbox.messages] == ["Welcome"]
    assert mail.outbox == [] and Message.objects.get().status == "sent"


@pytest.mark.parametrize("fault", [None, 503], ids=["sent", "queued for a retry"])
def test_msg_txmail_message_is_the_row_as_the_send_left_it(sandbox, domain, fault):
    if fault:
        sandbox.inject(Fault(status=fault))
    msg = TxMessage("Hi", "Body", "noreply@example.com", ["ann@example.org"])
    msg.send()
    row, stored = msg.txmail.message, Message.objects.get()
    assert row.pk == stored.pk == msg.txmail.message_id and msg.txmail.created
    names = [f.attname for f in Message._meta.concrete_fields]
    assert {n: getattr(row, n) for n in names} == {n: getattr(stored, n) for n in names}
    assert row.status == ("queued" if fault else "sent") == msg.txmail.status
