"""Several messages for one Mailtrap account go in /api/batch requests."""

from __future__ import annotations

import pytest
from django.core import mail

from django_txmail.backends import EmailBackend
from django_txmail.exceptions import ProviderAPIError
from django_txmail.models import Attempt, Message, SendingDomain
from django_txmail.sending.worker import Worker
from tests.conftest import use_our_backend
from tests.test_send_providers_e2e import MAILTRAP_FROM, accounts
from txmail_sandbox import Fault, SandboxServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def sandbox(txmail_sandbox, settings):
    settings.TXMAIL = accounts(txmail_sandbox.url)
    use_our_backend(settings)
    SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
    SendingDomain.objects.create(name="example.com", provider="nylas")
    return txmail_sandbox


def batch(count: int, sender: str = MAILTRAP_FROM):
    return [(f"Receipt {i}", "Thanks", sender, [f"user{i}@x.example"]) for i in range(count)]


def test_send_mass_mail_to_mailtrap_is_one_batch_request(sandbox):
    assert mail.send_mass_mail(batch(5)) == 5
    assert [r.path for r in sandbox.requests] == ["/api/batch"]
    assert sorted(m.batch_index for m in sandbox.messages) == [0, 1, 2, 3, 4]
    messages = Message.objects.order_by("subject")
    assert set(messages.values_list("status", flat=True)) == {"sent"}
    by_subject = {m.payload["subject"]: m.id for m in sandbox.messages}
    assert all(m.provider_message_id == by_subject[m.subject] for m in messages)
    assert Attempt.objects.filter(outcome="sent").count() == 5


def test_each_batch_item_is_the_single_send_of_its_message(sandbox):
    msg = mail.EmailMultiAlternatives(
        "Hi", "Text", MAILTRAP_FROM, ["a@x.example"], cc=["c@x.example"], headers={"X-Order": "7"}
    )
    msg.attach_alternative("<p>Hi</p>", "text/html")
    msg.tags = ["receipts"]
    msg.metadata = {"order": 7}
    EmailBackend().send_messages(
        [msg, mail.EmailMessage("Two", "b", MAILTRAP_FROM, ["b@x.example"])]
    )
    first = next(m for m in sandbox.messages if m.payload["subject"] == "Hi").payload
    assert first["html"] == "<p>Hi</p>" and first["text"] == "Text"
    assert first["cc"] == [{"email": "c@x.example"}] and first["headers"] == {"X-Order": "7"}
    assert first["category"] == "receipts"
    assert first["custom_variables"]["order"] == "7"
    assert first["custom_variables"]["txmail_id"] == str(Message.objects.get(subject="Hi").pk)


def test_more_than_500_messages_go_in_several_requests(sandbox):
    assert mail.send_mass_mail(batch(501)) == 501
    assert [r.path for r in sandbox.requests] == ["/api/batch", "/api/batch"]
    assert len(sandbox.messages) == 501
    assert Message.objects.filter(status="sent").count() == 501


def test_refused_items_fail_with_the_providers_reason_and_the_others_are_sent(settings, db):
    with SandboxServer(mailtrap_verified_domains={"mailtrap.example"}) as sandbox:
        settings.TXMAIL = accounts(sandbox.url)
        use_our_backend(settings)
        SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
        SendingDomain.objects.create(name="unverified.example", provider="mailtrap")
        messages = batch(2) + batch(1, sender="x@unverified.example")
        with pytest.raises(ProviderAPIError, match="Forbidden"):
            mail.send_mass_mail(messages)
        refused = Message.objects.get(from_address="x@unverified.example")
        assert refused.status == "failed" and "Forbidden" in refused.last_error
        assert set(Message.objects.exclude(pk=refused.pk).values_list("status", flat=True)) == {
            "sent"
        }
        assert len(sandbox.messages) == 2
        assert Worker().run(once=True).attempted == 0, "nothing accepted is sent again"
        assert len(sandbox.requests) == 1


def test_fail_silently_counts_only_the_accepted_items(settings, db):
    with SandboxServer(mailtrap_verified_domains={"mailtrap.example"}) as sandbox:
        settings.TXMAIL = accounts(sandbox.url)
        use_our_backend(settings)
        SendingDomain.objects.create(name="mailtrap.example", provider="mailtrap")
        SendingDomain.objects.create(name="unverified.example", provider="mailtrap")
        messages = batch(2) + batch(1, sender="x@unverified.example")
        assert mail.send_mass_mail(messages, fail_silently=True) == 2


def test_a_batch_that_fails_as_a_whole_leaves_every_message_queued(sandbox, settings):
    settings.TXMAIL = settings.TXMAIL | {"RETRY_BACKOFF": (0.01, 0.02)}
    sandbox.inject(Fault(status=503, provider="mailtrap"))
    assert mail.send_mass_mail(batch(3)) == 3
    assert set(Message.objects.values_list("status", flat=True)) == {"queued"}
    assert sandbox.messages == []


def test_messages_with_attachments_and_other_providers_go_one_by_one(sandbox):
    with_file = mail.EmailMessage("File", "b", MAILTRAP_FROM, ["a@x.example"])
    with_file.attach("a.txt", "abc", "text/plain")
    nylas = mail.EmailMessage("Nylas", "b", "noreply@example.com", ["n@x.example"])
    plain = [mail.EmailMessage(f"P{i}", "b", MAILTRAP_FROM, ["b@x.example"]) for i in range(2)]
    assert EmailBackend().send_messages([with_file, nylas, *plain]) == 4
    paths = sorted(r.path for r in sandbox.requests)
    assert paths == ["/api/batch", "/api/send", "/v3/domains/example.com/messages/send"]
    assert Message.objects.filter(status="sent").count() == 4


def test_one_message_is_a_plain_send(sandbox):
    mail.send_mail("Hi", "b", MAILTRAP_FROM, ["a@x.example"])
    assert [r.path for r in sandbox.requests] == ["/api/send"]


def test_an_invalid_message_does_not_stop_the_others(sandbox):
    good = mail.EmailMessage("Good", "b", MAILTRAP_FROM, ["a@x.example"])
    bad = mail.EmailMessage("Bad", "b", MAILTRAP_FROM, ["not-an-address"])
    with pytest.raises(Exception, match="not a valid address"):
        EmailBackend().send_messages([good, bad])
    assert Message.objects.get().status == "sent" and len(sandbox.messages) == 1
