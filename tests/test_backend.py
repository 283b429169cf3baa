"""The backend's own behaviour: options, sessions, transactions, reused keys."""

from __future__ import annotations

import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from django_txmail.backends import EmailBackend
from django_txmail.exceptions import InvalidMessage
from django_txmail.message import TxMessage
from django_txmail.models import Message, MessageAttachment
from tests.conftest import wait_for_requests
from txmail_sandbox import Fault

pytestmark = pytest.mark.django_db


def message(subject="Hi", **kwargs):
    return TxMessage(subject, "b", "noreply@example.com", ["a@x.example"], **kwargs)


def test_timeout_option_bounds_each_request(sandbox, domain):
    sandbox.inject(Fault(delay_after_accept=1.0))
    assert EmailBackend(timeout=0.3).send_messages([message()]) == 1
    stored = Message.objects.get()
    assert (stored.status, stored.last_error_type) == ("queued", "timeout")
    wait_for_requests(sandbox, 1)


@pytest.mark.parametrize("timeout", ["10", 0, -1, True])
def test_a_bad_timeout_option_is_a_configuration_error(timeout):
    with pytest.raises(ImproperlyConfigured, match="timeout"):
        EmailBackend(timeout=timeout)


def test_the_backend_reuses_one_connection_between_open_and_close(sandbox, domain):
    backend = EmailBackend()
    assert backend.open() is True and backend.open() is False
    session = backend.session
    for i in range(3):
        backend.send_messages([message(f"m{i}")])
        assert backend.session is session
    pools = list(session.get_adapter(sandbox.url).poolmanager.pools._container.values())
    assert [pool.num_connections for pool in pools] == [1]
    backend.close()
    assert backend.session is None and len(sandbox.messages) == 3


def test_send_messages_opens_and_closes_its_own_session(sandbox, domain):
    backend = EmailBackend()
    assert backend.send_messages([message("a"), message("b")]) == 2
    assert backend.session is None


def test_attachments_go_to_the_configured_storage(sandbox, domain, settings, tmp_path):
    settings.STORAGES = settings.STORAGES | {
        "mail": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        }
    }
    settings.TXMAIL = settings.TXMAIL | {"ATTACHMENT_STORAGE": "mail"}
    msg = message()
    msg.attach("a.txt", "abc", "text/plain")
    msg.send()
    stored = MessageAttachment.objects.get()
    assert (tmp_path / stored.storage_name).read_bytes() == b"abc"


def test_a_very_long_attachment_filename_is_kept_on_the_row_not_the_disk(sandbox, domain):
    name = "r" * 300 + ".pdf"
    msg = message()
    msg.attach(name, b"%PDF", "application/pdf")
    assert msg.send() == 1
    stored = MessageAttachment.objects.get()
    assert stored.filename == name and len(stored.storage_name) < 100
    assert sandbox.messages[0].attachments[0].filename == name


def test_fail_silently_also_covers_errors_before_sending(sandbox, domain):
    msg = mail.EmailMessage("s", "b", "x@unknown.example", ["a@x.example"])
    assert EmailBackend(fail_silently=True).send_messages([msg]) == 0
    assert Message.objects.count() == 0 and sandbox.requests == []


def test_a_reused_key_with_other_content_is_refused(sandbox, domain):
    message(idempotency_key="order-1").send()
    with pytest.raises(InvalidMessage, match="already used for a different message"):
        message("Other subject", idempotency_key="order-1").send()
    assert len(sandbox.messages) == 1


def test_a_reused_key_of_a_failed_message_is_not_counted_as_sent(sandbox, domain):
    sandbox.inject(Fault(status=400))
    with pytest.raises(Exception, match="400"):
        message(idempotency_key="order-2").send()
    again = message(idempotency_key="order-2")
    assert again.send() == 0
    assert again.txmail.status == "failed" and len(sandbox.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_mail_goes_when_it_commits(sandbox, domain):
    with transaction.atomic():
        msg = message()
        assert msg.send() == 1
        assert msg.txmail.status == "queued" and sandbox.requests == []
    assert len(sandbox.messages) == 1
    assert Message.objects.get().status == "sent"


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_transaction_sends_nothing_and_records_nothing(sandbox, domain):
    with pytest.raises(RuntimeError), transaction.atomic():
        message().send()
        raise RuntimeError("the view failed")
    assert sandbox.requests == [] and Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_permanent_failure_after_commit_is_recorded_not_raised(sandbox, domain):
    sandbox.inject(Fault(status=400))
    with transaction.atomic():
        message().send()
    stored = Message.objects.get()
    assert stored.status == "failed" and stored.last_error
