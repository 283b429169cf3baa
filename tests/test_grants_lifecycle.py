"""A grant's life: webhooks move its status, mail through a grant that is not
valid is refused or held, and held mail goes out once the grant is back."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from datetime import timedelta

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from django_txmail import grants
from django_txmail.exceptions import GrantUnavailable, TxMailError
from django_txmail.models import DeliveryEvent, Grant, Message
from django_txmail.signals import grant_status_changed
from tests.grant_flow import SECRET, connect, use_sandbox, user_client
from txmail_sandbox import Fault

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.grant_urls")]

ANN = "ann@mail.example"


@pytest.fixture
def app(txmail_sandbox, settings):
    use_sandbox(settings, txmail_sandbox)
    return txmail_sandbox


@pytest.fixture
def grant(app) -> Grant:
    _, client = user_client()
    return connect(client, ANN)


@pytest.fixture
def changes():
    seen = []

    def receiver(sender, grant, previous, status, **kwargs):
        seen.append((grant.email, previous, status))

    grant_status_changed.connect(receiver)
    yield seen
    grant_status_changed.disconnect(receiver)


def notify(kind: str, grant_id: str, *, at: int | None = None, event_id: str = ""):
    """Post a signed Nylas grant webhook to the app."""
    when = int(timezone.now().timestamp()) if at is None else at
    body = json.dumps(
        {
            "specversion": "1.0",
            "type": kind,
            "source": "/nylas/grants",
            "id": event_id or str(uuid.uuid4()),
            "time": when,
            "data": {"application_id": "app", "object": {"grant_id": grant_id, "email": ANN}},
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return Client().post(
        "/txmail/webhooks/nylas/",
        body,
        content_type="application/json",
        headers={"X-Nylas-Signature": signature},
    )


def sends(sandbox) -> list:
    return [m for m in sandbox.messages if m.route == "grant"]


def send_from_ann(subject: str = "Hello") -> int:
    return mail.send_mail(subject, "Body", ANN, ["bob@x.example"])


def test_grant_webhooks_move_the_status_and_are_stored(grant, changes):
    assert notify("grant.expired", grant.grant_id).status_code == 200
    grant.refresh_from_db()
    assert grant.status == "expired"
    assert notify("grant.updated", grant.grant_id).status_code == 200
    grant.refresh_from_db()
    assert grant.status == "valid"
    assert notify("grant.deleted", grant.grant_id).status_code == 200
    grant.refresh_from_db()
    assert grant.status == "revoked"
    stored = DeliveryEvent.objects.order_by("received_at").values_list("provider_type", flat=True)
    assert "grant.expired" in list(stored) and "grant.deleted" in list(stored)
    assert changes[-3:] == [
        (ANN, "valid", "expired"),
        (ANN, "expired", "valid"),
        (ANN, "valid", "revoked"),
    ]


def test_a_webhook_for_an_unknown_grant_is_stored_and_changes_nothing(grant, changes):
    response = notify("grant.expired", "no-such-grant")
    assert response.status_code == 200
    assert DeliveryEvent.objects.filter(provider_type="grant.expired").count() == 1
    grant.refresh_from_db()
    assert grant.status == "valid" and changes == []


def test_a_stale_grant_webhook_does_not_undo_a_later_change(grant):
    an_hour_ago = int((timezone.now() - timedelta(hours=1)).timestamp())
    notify("grant.expired", grant.grant_id, at=an_hour_ago)
    grant.refresh_from_db()
    assert grant.status == "valid"


def test_a_redelivered_grant_webhook_is_stored_once(grant):
    notify("grant.expired", grant.grant_id, event_id="evt-1")
    notify("grant.expired", grant.grant_id, event_id="evt-1")
    assert DeliveryEvent.objects.filter(provider_event_id="evt-1").count() == 1


def test_sending_through_a_grant_that_is_not_valid_raises_and_records_nothing(app, grant):
    notify("grant.expired", grant.grant_id)
    with pytest.raises(GrantUnavailable) as raised:
        send_from_ann()
    assert isinstance(raised.value, TxMailError)
    assert ANN in str(raised.value) and "connect" in str(raised.value)
    assert not Message.objects.exists() and sends(app) == []


def _queued_for_retry(sandbox) -> Message:
    """A message for Ann's grant that failed once (503) and waits, due now."""
    sandbox.inject(Fault(status=503, provider="nylas", route="grant"))
    assert send_from_ann("Queued before") == 1
    message = Message.objects.get()
    assert message.status == "queued"
    # Due now, so only the hold can keep the worker from it.
    Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
    return message


def worker_pass() -> str:
    out = io.StringIO()
    call_command("txmail_worker", "--once", stdout=out)
    return out.getvalue()


def test_queued_mail_is_held_while_the_grant_is_expired_and_sent_once_after(app, grant):
    message = _queued_for_retry(app)
    notify("grant.expired", grant.grant_id)
    worker_pass()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 1)
    assert sends(app) == []

    notify("grant.updated", grant.grant_id)
    worker_pass()
    worker_pass()
    message.refresh_from_db()
    assert message.status == "sent"
    assert [m.payload["subject"] for m in sends(app)] == ["Queued before"]


def test_a_grant_the_provider_says_is_gone_holds_the_message_without_using_attempts(
    app, grant, changes
):
    # Expired at the provider; its webhook has not arrived.
    requests.post(f"{app.url}/_sandbox/grants/{grant.grant_id}/expire", timeout=5)
    assert send_from_ann("Through a dead grant") == 1
    message = Message.objects.get()
    assert (message.status, message.attempts) == ("queued", 0)
    assert message.attempt_log.count() == 1  # the refused attempt is on record
    grant.refresh_from_db()
    assert grant.status == "expired"
    assert (ANN, "valid", "expired") in changes
    worker_pass()
    message.refresh_from_db()
    assert (message.status, message.attempts) == ("queued", 0)


def test_a_hold_whose_transaction_is_rolled_back_and_tried_again_still_holds(
    app, grant, monkeypatch
):
    """The outcome's transaction fails after the hold was written (the grant's UPDATE
    meets a lock) and is tried again: the instance went back with the row, so the second
    try's guard (the attempt number) still matches and the message is held."""
    from django.db import OperationalError, connection

    from django_txmail.sending import attempt as delivery

    monkeypatch.setattr(delivery, "OUTCOME_WRITE_PAUSES", (0, 0, 0))
    requests.post(f"{app.url}/_sandbox/grants/{grant.grant_id}/expire", timeout=5)
    table = Grant._meta.db_table
    failed = []

    def grant_update_fails_once(execute, sql, params, many, context):
        if not failed and sql.startswith("UPDATE") and table in sql:
            failed.append(sql)
            raise OperationalError("database is locked")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(grant_update_fails_once):
        assert send_from_ann("Through a dead grant") == 1
    assert len(failed) == 1
    message = Message.objects.get()
    assert (message.status, message.attempts) == ("queued", 0)
    assert message.last_error_type and message.attempt_log.count() == 1


def test_disconnect_revokes_at_the_provider_and_refuses_new_mail(app, grant, changes):
    grants.disconnect(grant)
    grant.refresh_from_db()
    assert grant.status == "revoked"
    gone = requests.get(
        f"{app.url}/v3/grants/{grant.grant_id}",
        headers={"Authorization": "Bearer sandbox-nylas-key"},
        timeout=5,
    )
    assert gone.status_code == 404
    with pytest.raises(GrantUnavailable):
        send_from_ann()
    assert (ANN, "valid", "revoked") in changes


def test_txmail_grants_checks_each_grant_at_the_provider(app, grant):
    requests.post(f"{app.url}/_sandbox/grants/{grant.grant_id}/expire", timeout=5)
    out = io.StringIO()
    call_command("txmail_grants", stdout=out)
    grant.refresh_from_db()
    assert grant.status == "expired"
    assert ANN in out.getvalue() and "expired" in out.getvalue()
