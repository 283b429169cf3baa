"""One owner of a message's status: the table, its groups, and the provider's word over ours."""

from __future__ import annotations

import ast
import pathlib
import uuid
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

import django_txmail
from django_txmail.exceptions import ProviderAPIError
from django_txmail.models import Message
from django_txmail.outbox import states
from django_txmail.outbox.states import TRANSITIONS, Cause, allowed, rank
from tests.conftest import txmail_settings, use_our_backend
from tests.message_rows import message_row
from tests.test_webhooks import SECRET, bounced, complaint, delivered, notification, post

pytestmark = pytest.mark.django_db

S = Message.Status


@pytest.fixture
def gave_up(settings, domain):
    """A message we gave up on: the provider could not be reached on its only attempt."""
    settings.TXMAIL = txmail_settings(
        "http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET}, MAX_ATTEMPTS=1
    )
    use_our_backend(settings)
    with pytest.raises(ProviderAPIError, match="cannot reach"):
        mail.send_mail("Receipt", "Thanks", "noreply@example.com", ["ann@x.example"])
    message = Message.objects.get()
    assert (message.status, message.failure_origin) == (S.FAILED, "ours")
    assert message.last_error_type == "connection_error"
    return message


def echoed(message: Message) -> dict:
    """The provider's message as its webhooks name it: our id echoed in its metadata."""
    return {"id": f"nylas-{uuid.uuid4().hex[:8]}", "metadata": {"txmail_id": str(message.pk)}}


def with_echo(notice: dict, message: Message) -> dict:
    notice["data"]["object"]["message"] = echoed(message)
    return notice


@pytest.mark.parametrize(
    ("event", "status"),
    [(delivered, S.DELIVERED), (bounced, S.BOUNCED), (complaint, S.COMPLAINED)],
)
def test_the_providers_word_beats_our_give_up(client, gave_up, event, status):
    # The request reached the provider after all (a timeout we could not resolve):
    # its signed webhook says what happened, and support must not resend a delivered message.
    response = post(client, with_echo(event(gave_up), gave_up))
    assert response.status_code == 200
    gave_up.refresh_from_db()
    assert (gave_up.status, gave_up.failure_origin) == (status, "")
    assert gave_up.recipient_status["ann@x.example"] == status


def test_a_provider_reported_failure_keeps_its_precedence_over_a_late_delivered(
    client, domain, settings
):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET})
    message = message_row(provider_message_id="nylas-late")
    rejected = notification(
        "message.transactional.rejected",
        {"message": {"id": "nylas-late", "metadata": {}}, "rejected_at": 1_800_000_001},
        time=1_800_000_001,
    )
    assert post(client, rejected).status_code == 200
    assert post(client, delivered(message, time=1_800_000_000)).status_code == 200
    message.refresh_from_db()
    assert message.status == S.REJECTED


def test_a_provider_failure_event_ranks_with_bounces_and_is_not_retried(domain):
    from django_txmail.providers.base import WebhookEvent
    from django_txmail.tracking.ingest import ingest

    message = message_row(provider_message_id="p-1")
    now = timezone.now()

    def event(kind: str, seconds: int) -> WebhookEvent:
        return WebhookEvent(
            provider_event_id=f"e-{kind}",
            type=kind,
            provider_type=kind,
            occurred_at=now + timedelta(seconds=seconds),
            raw={},
            provider_message_id="p-1",
        )

    ingest("nylas", [event("failed", 1)])
    ingest("nylas", [event("delivered", 0)])
    message.refresh_from_db()
    assert (message.status, message.failure_origin) == (S.FAILED, "provider")
    assert not states.retryable(message)
    assert not states.retry_now(message)


def test_a_late_acceptance_replaces_our_give_up_but_not_the_providers_failure(domain):
    message = message_row(status=S.FAILED, failure_origin="ours", provider_message_id="")
    states.accept(message, provider_holds=False, provider_message_id="p-2")
    message.refresh_from_db()
    assert (message.status, message.failure_origin, message.provider_message_id) == (
        S.SENT,
        "",
        "p-2",
    )
    Message.objects.filter(pk=message.pk).update(status=S.FAILED, failure_origin="provider")
    message.refresh_from_db()
    states.accept(message, provider_holds=False, provider_message_id="p-3")
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == (S.FAILED, "p-3")


def test_every_status_is_reachable_and_every_cause_has_an_entry():
    assert set(TRANSITIONS) == set(Cause)
    targets = set().union(*(t.targets for t in TRANSITIONS.values()))
    assert targets | {S.CANCELLED} >= set(S.values)


def test_events_only_move_up_the_ranks():
    assert allowed(Cause.EVENT, S.SENT, S.DELIVERED)
    assert not allowed(Cause.EVENT, S.DELIVERED, S.SENT)
    assert not allowed(Cause.EVENT, S.BOUNCED, S.DELIVERED)
    assert allowed(Cause.EVENT, S.FAILED, S.DELIVERED, before_origin="ours")
    assert not allowed(Cause.EVENT, S.FAILED, S.DELIVERED, before_origin="provider")
    assert rank(S.FAILED, "ours") < rank(S.SENT) < rank(S.DELIVERED) < rank(S.COMPLAINED)


def test_causes_outside_the_table_are_refused():
    assert not allowed(Cause.CANCEL, S.SENT, S.CANCELLED)
    assert not allowed(Cause.CLAIM, S.DELIVERED, S.SENDING)
    assert not allowed(Cause.TRANSIENT, S.DELIVERED, S.QUEUED)
    assert not allowed(Cause.RETRY_NOW, S.FAILED, S.QUEUED, before_origin="provider")
    assert allowed(Cause.RETRY_NOW, S.FAILED, S.QUEUED, before_origin="ours")


def test_a_cancel_after_the_message_moved_on_changes_nothing(domain):
    message = message_row()
    assert not states.cancel(message)
    message.refresh_from_db()
    assert message.status == S.SENT


def _status_writes(path: pathlib.Path) -> list[int]:
    """Lines of ``path`` that write Message.status: ``.update(status=...)``, ``status=`` in
    ``create()``/``objects.filter(...).update``, or assigning ``.status``."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "update":
            if any(k.arg in ("status", "failure_origin") for k in node.keywords):
                lines.append(node.lineno)
    return lines


def test_only_the_states_module_writes_a_status_with_an_update():
    package = pathlib.Path(django_txmail.__file__).parent
    writers = {
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "migrations" not in path.parts and "sandbox" not in path.parts and _status_writes(path)
    }
    # SendingDomain.status is the DNS check's, written by the domain verifier;
    # Grant.status is the provider's word on a grant, written by grants.py.
    assert writers <= {"outbox/states.py", "dns/verify.py", "grants.py"}, writers
    assert "outbox/states.py" in writers
