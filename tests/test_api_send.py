"""``POST api/messages/``: the same compose → route → record path as send_mail(),
idempotent with a key, refused whole (nothing recorded) on bad input."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from django_txmail.api import views
from django_txmail.flow import PRIORITY_RANK
from django_txmail.models import Message, MessageAttachment
from django_txmail.suppressions import suppress
from tests.api_helpers import post_json, user_with
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db

URL = reverse("txmail:message-list")
RECEIPT = {
    "from": "Shop <noreply@example.com>",
    "to": ["ann@example.org"],
    "subject": "Your receipt",
    "text": "Thanks for your order.",
    "html": "<p>Thanks for your order.</p>",
    "metadata": {"order": "1042"},
}


def test_a_send_records_and_delivers_the_message_and_answers_201_with_its_location(
    api, sandbox, domain
):
    response = post_json(api, URL, RECEIPT)
    assert response.status_code == 201, response.json()
    body = response.json()
    message = Message.objects.get(pk=body["id"])
    assert body["status"] == message.status == Message.Status.SENT
    assert response["Location"].endswith(reverse("txmail:message-detail", args=[message.pk]))
    assert (message.subject, message.html_body, message.metadata) == (
        "Your receipt",
        "<p>Thanks for your order.</p>",
        {"order": "1042"},
    )
    assert len(sandbox.requests) == 1


def test_the_api_sends_what_send_mail_would_send(api, sandbox, domain):
    post_json(api, URL, RECEIPT)
    via_api = Message.objects.get()
    python = mail.EmailMultiAlternatives(
        RECEIPT["subject"], RECEIPT["text"], RECEIPT["from"], RECEIPT["to"]
    )
    python.attach_alternative(RECEIPT["html"], "text/html")
    python.metadata = RECEIPT["metadata"]
    python.send()
    via_python = Message.objects.exclude(pk=via_api.pk).get()
    assert via_python.content_hash == via_api.content_hash


def test_attachments_arrive_as_the_bytes_sent_in_base64(api, sandbox, domain):
    pdf = b"%PDF-1.4 receipt\x00\xff"
    attachment = {
        "filename": "receipt.pdf",
        "content": base64.b64encode(pdf).decode(),
        "type": "application/pdf",
    }
    response = post_json(api, URL, {**RECEIPT, "attachments": [attachment]})
    assert response.status_code == 201, response.json()
    stored = MessageAttachment.objects.get()
    assert (stored.filename, stored.mimetype) == ("receipt.pdf", "application/pdf")
    assert stored.size == len(pdf)


def test_the_same_idempotency_key_and_body_answer_the_first_message(api, sandbox, domain):
    first = post_json(api, URL, RECEIPT, **{"Idempotency-Key": "order-1042"})
    again = post_json(api, URL, RECEIPT, **{"Idempotency-Key": "order-1042"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.count() == 1 and len(sandbox.requests) == 1


def test_the_same_key_with_another_body_is_a_409_and_records_nothing(api, sandbox, domain):
    post_json(api, URL, RECEIPT, **{"Idempotency-Key": "order-1042"})
    response = post_json(
        api, URL, {**RECEIPT, "subject": "Another"}, **{"Idempotency-Key": "order-1042"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    assert "order-1042" in response.json()["message"]
    assert Message.objects.count() == 1


def test_a_template_fills_the_message(api, sandbox, domain):
    from django_txmail.models import Template

    Template.objects.create(
        slug="welcome", name="Welcome", subject="Hi {{ name }}", html="<p>Hello {{ name }}</p>"
    )
    body = {
        "from": RECEIPT["from"],
        "to": RECEIPT["to"],
        "template": "welcome",
        "template_vars": {"name": "Ann"},
    }
    response = post_json(api, URL, body)
    assert response.status_code == 201, response.json()
    message = Message.objects.get()
    assert (message.subject, message.template) == ("Hi Ann", "welcome")


def test_a_suppressed_recipient_is_left_out_as_with_send_mail(api, sandbox, domain):
    suppress("ann@example.org")
    response = post_json(api, URL, RECEIPT)
    assert response.status_code == 201
    assert response.json()["status"] == Message.Status.SUPPRESSED
    assert sandbox.requests == []


def test_one_server_thread_keeps_its_backend_open_and_the_route_it_found(api, sandbox, domain):
    post_json(api, URL, RECEIPT)
    with CaptureQueriesContext(connection) as queries:
        assert post_json(api, URL, RECEIPT).status_code == 201
    assert not [q for q in queries if "django_txmail_sendingdomain" in q["sql"]]
    assert views.backend() is views.backend()
    assert len(sandbox.requests) == 2


def test_a_sending_domain_deleted_between_requests_is_seen_at_the_next_send(api, sandbox, domain):
    assert post_json(api, URL, RECEIPT).status_code == 201
    domain.delete()
    assert post_json(api, URL, RECEIPT).json()["code"] == "unroutable_sender"


def test_a_change_of_txmail_opens_the_backend_again(api, sandbox, domain, settings):
    post_json(api, URL, RECEIPT)
    before = views.backend()
    settings.TXMAIL = {**settings.TXMAIL}
    assert views.backend() is not before
    assert before.sender is None  # closed
    assert post_json(api, URL, RECEIPT).status_code == 201


def test_priority_is_the_message_extras(api, sandbox, domain):
    response = post_json(api, URL, {**RECEIPT, "priority": "high"})
    assert response.status_code == 201, response.json()
    assert Message.objects.get(pk=response.json()["id"]).priority == PRIORITY_RANK["high"]
    wrong = post_json(api, URL, {**RECEIPT, "priority": "urgent"})
    assert wrong.status_code == 400
    assert wrong.json()["fields"]["priority"][0]["code"] == "invalid_choice"


# --- permissions ----------------------------------------------------------------------------


def test_sending_needs_the_send_message_permission(client, sandbox, domain):
    client.force_login(user_with("view_message", "add_message"))
    response = post_json(client, URL, RECEIPT)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Message.objects.exists()


def test_send_message_alone_is_enough_to_send(client, sandbox, domain):
    client.force_login(user_with("send_message"))
    assert post_json(client, URL, RECEIPT).status_code == 201


def test_anonymous_sends_are_refused(client, sandbox, domain):
    assert post_json(client, URL, RECEIPT).status_code in (401, 403)
    assert not Message.objects.exists()


# --- bad input: each its 4xx with a code and a message, nothing recorded ---------------------


def _refused(api, body, status: int, code: str, **headers) -> dict:
    response = post_json(api, URL, body, **headers)
    assert response.status_code == status, response.content
    error = response.json()
    assert error["code"] == code and error["message"]
    assert not Message.objects.exists()
    return error


def test_malformed_json_is_a_400(api, sandbox, domain):
    _refused(api, b'{"from": "a@example.com",', 400, "parse_error")


def test_a_body_that_is_not_an_object_is_a_400(api, sandbox, domain):
    _refused(api, [RECEIPT], 400, "invalid")


def test_a_wrong_type_is_a_400_naming_the_field(api, sandbox, domain):
    error = _refused(api, {**RECEIPT, "to": "ann@example.org"}, 400, "not_a_list")
    assert "to" in error["fields"]


def test_unknown_fields_are_refused_not_ignored(api, sandbox, domain):
    error = _refused(api, {**RECEIPT, "subjcet": "typo"}, 400, "unknown_field")
    assert list(error["fields"]) == ["subjcet"]


def test_an_unknown_attachment_field_is_refused(api, sandbox, domain):
    attachment = {"filename": "a.txt", "content": "aGk=", "mimetype": "text/plain"}
    _refused(api, {**RECEIPT, "attachments": [attachment]}, 400, "unknown_field")


def test_an_oversize_body_is_a_413_before_it_is_parsed(api, sandbox, domain, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    _refused(api, b"not even json" * 100, 413, "request_too_large")


def test_a_body_within_the_limit_is_taken(api, sandbox, domain, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    assert post_json(api, URL, RECEIPT).status_code == 201


def test_invalid_base64_is_a_400(api, sandbox, domain):
    attachment = {"filename": "a.pdf", "content": "not base64!", "type": "application/pdf"}
    error = _refused(api, {**RECEIPT, "attachments": [attachment]}, 400, "invalid_base64")
    assert "attachments" in error["fields"]


def test_a_template_and_a_body_together_are_refused(api, sandbox, domain):
    _refused(api, {**RECEIPT, "template": "welcome"}, 400, "template_and_body")


def test_a_from_with_no_route_is_a_422(api, sandbox, domain):
    error = _refused(api, {**RECEIPT, "from": "me@nowhere.example"}, 422, "unroutable_sender")
    assert "nowhere.example" in error["message"]


def test_an_invalid_address_is_refused_by_the_same_validation_as_send_mail(api, sandbox, domain):
    _refused(api, {**RECEIPT, "to": ["not an address"]}, 400, "invalid_message")


def test_an_unknown_stream_is_a_400(api, sandbox, domain):
    _refused(api, {**RECEIPT, "stream": "newsletters"}, 400, "unknown_stream")


def test_json_is_the_only_body_taken(api, sandbox, domain):
    response = api.post(URL, {"from": "a@example.com"})  # a form
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def _in_the_outbox(message_id: str) -> dict:
    """What the API shows for the row as it is stored, read afresh (JSON as answered)."""
    from rest_framework.renderers import JSONRenderer

    from django_txmail.api.serializers import MessageSerializer

    stored = MessageSerializer(Message.objects.get(pk=message_id)).data
    return json.loads(JSONRenderer().render(stored))


def _later(**delta) -> str:
    return (timezone.now() + timedelta(**delta)).isoformat()


@pytest.mark.parametrize(
    "scenario",
    [
        "sent",
        "one recipient suppressed",
        "every recipient suppressed",
        "queued after a 503",
        "held in the outbox until send_at",
        "scheduled at the provider",
        "a template",
    ],
)
def test_the_answer_is_the_row_as_the_send_left_it(api, sandbox, domain, grant, scenario):
    """The 201 is written from the row the send recorded and updated, not read back:
    it must be what the outbox holds, whatever became of the message."""
    body = dict(RECEIPT)
    if scenario == "one recipient suppressed":
        suppress("ann@example.org")
        body["to"] = ["ann@example.org", "bob@example.org"]
    elif scenario == "every recipient suppressed":
        suppress("ann@example.org")
    elif scenario == "queued after a 503":
        sandbox.inject(Fault(status=503))
    elif scenario == "held in the outbox until send_at":
        body["send_at"] = _later(days=2)
    elif scenario == "scheduled at the provider":
        body.update({"from": grant.email, "send_at": _later(hours=2)})
    elif scenario == "a template":
        from django_txmail.models import Template

        Template.objects.create(slug="receipt", name="Receipt", subject="Hi {{ name }}", text="x")
        body = {"from": RECEIPT["from"], "to": RECEIPT["to"], "template": "receipt"}
        body["template_vars"] = {"name": "Ann"}
    response = post_json(api, URL, body)
    assert response.status_code == 201, response.json()
    answered = response.json()
    assert answered == _in_the_outbox(answered["id"])
    expected = {  # each scenario reached the state it is about: (status, requests made)
        "sent": ("sent", 1),
        "one recipient suppressed": ("sent", 1),
        "every recipient suppressed": ("suppressed", 0),
        "queued after a 503": ("queued", 1),
        "held in the outbox until send_at": ("scheduled", 0),
        "scheduled at the provider": ("scheduled", 1),
        "a template": ("sent", 1),
    }[scenario]
    assert (answered["status"], len(sandbox.requests)) == expected


def test_a_replayed_key_answers_the_row_as_stored(api, sandbox, domain):
    first = post_json(api, URL, RECEIPT, **{"Idempotency-Key": "order-7"}).json()
    again = post_json(api, URL, RECEIPT, **{"Idempotency-Key": "order-7"})
    assert again.status_code == 200
    assert again.json() == _in_the_outbox(first["id"]) and again.json()["status"] == "sent"


def test_a_send_reads_no_message_back_and_asks_for_no_key_it_was_not_given(api, sandbox, domain):
    post_json(api, URL, RECEIPT)  # the first send opens this thread's backend
    table = Message._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        response = post_json(api, URL, {**RECEIPT, "to": ["bob@example.org"]})
    assert response.status_code == 201
    on_messages = [q["sql"] for q in queries if table in q["sql"]]
    # The row's INSERT and its outcome's UPDATE (the attempt's INSERT rides in it on
    # PostgreSQL, or comes just before): nothing that reads a message back.
    assert len(on_messages) >= 2
    assert not any(sql.lstrip().startswith("SELECT") for sql in on_messages), on_messages


@pytest.mark.django_db(transaction=True)
def test_in_task_mode_the_answer_is_the_row_a_task_that_already_ran_left(
    api, sandbox, domain, settings
):
    """A task backend that runs each task as it is enqueued (ImmediateBackend) has sent
    the message before the answer is written: the answer says so, as the row does."""
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task", "TASK_BACKEND": "default"}
    response = post_json(api, URL, RECEIPT)
    assert response.status_code == 201, response.json()
    answered = response.json()
    assert answered == _in_the_outbox(answered["id"])
    assert (answered["status"], len(sandbox.requests)) == ("sent", 1)
