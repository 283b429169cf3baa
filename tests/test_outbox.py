"""The outbox row holds everything needed to send the message again."""

from __future__ import annotations

import json
from email.mime.image import MIMEImage

import pytest
from django.core import mail
from django.db import connection

from django_txmail.compose import compose
from django_txmail.message import TxMessage
from django_txmail.models import Message
from django_txmail.outbox.store import load, plan, record
from django_txmail.routing import resolve

pytestmark = pytest.mark.django_db


def rich_message():
    msg = TxMessage(
        "Receipt #7",
        "Plain body",
        "Shop <noreply@example.com>",
        ["Ann <ann@x.example>"],
        cc=["cc@x.example"],
        bcc=["b@x.example"],
        reply_to=["help@example.com"],
        headers={"X-Order": "7"},
        metadata={"order": 7},
        tags=["receipt"],
        template_id="tpl",
        merge_global_data={"n": 1},
        track_opens=True,
        reply_to_message_id="<p@x>",
        esp_extra={"a": {"b": 1}},
    )
    msg.attach_alternative("<p>HTML</p>", "text/html")
    msg.attach("a.txt", "abc", "text/plain")
    image = MIMEImage(b"GIF89a", "gif")
    image.add_header("Content-ID", "<logo>")
    msg.attach(image)
    return msg


def comparable(email):
    fields = dict(vars(email))
    attachments = fields.pop("attachments")
    for key in ("message_id", "idempotency_key"):
        fields.pop(key)
    return fields, [(a.filename, a.mimetype, a.content_id, a.inline, a.read()) for a in attachments]


def test_loaded_message_equals_the_composed_one(domain):
    email = compose(rich_message())
    expected = comparable(email)
    message, created = record(plan(email), resolve(email))
    assert created
    loaded = load(Message.objects.get(pk=message.pk))
    assert comparable(loaded) == expected
    assert loaded.message_id == message.pk and loaded.idempotency_key == message.idempotency_key


def test_stored_content_is_json_not_pickle(domain):
    email = compose(rich_message())
    message, _ = record(plan(email), resolve(email))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT options, headers, metadata, "
            + connection.ops.quote_name("to")
            + " FROM django_txmail_message WHERE id = %s",
            [Message._meta.pk.get_db_prep_value(message.pk, connection)],
        )
        raw = cursor.fetchone()
    options, headers, metadata, to = (
        json.loads(value) if isinstance(value, str) else value for value in raw
    )
    assert options["esp_extra"] == {"a": {"b": 1}}
    assert headers == {"X-Order": "7"} and metadata == {"order": 7}
    assert to == [{"email": "ann@x.example", "name": "Ann"}]


def test_generated_idempotency_keys_are_unique_per_message(domain):
    keys = set()
    for _ in range(3):
        email = compose(mail.EmailMessage("s", "b", "noreply@example.com", ["a@x.example"]))
        message, _ = record(plan(email), resolve(email))
        keys.add(message.idempotency_key)
    assert len(keys) == 3


def test_a_recorded_key_returns_the_existing_message(domain):
    first = compose(
        TxMessage("s", "b", "noreply@example.com", ["a@x.example"], idempotency_key="k-1")
    )
    message, created = record(plan(first), resolve(first))
    again = compose(
        TxMessage("s", "b", "noreply@example.com", ["a@x.example"], idempotency_key="k-1")
    )
    same, created_again = record(plan(again), resolve(again))
    assert created and not created_again and same.pk == message.pk
