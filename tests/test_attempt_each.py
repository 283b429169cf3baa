"""A call's messages sent one request each: outcomes recorded together where the
provider replays a repeated idempotency key (Nylas), one by one where it does not
(Mailtrap), and never lost or sent twice when the process stops before recording."""

from __future__ import annotations

import pytest
from django.core import mail
from django.utils import timezone

from django_txmail.models import Attempt, Message
from django_txmail.sending import attempt as attempt_module
from django_txmail.sending.worker import Worker
from tests.test_send_providers_e2e import sandbox  # noqa: F401  (the fixture, used by name)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("sandbox")]


def nylas(count: int) -> list[mail.EmailMessage]:
    return [
        mail.EmailMessage(f"n{i}", "Body", "noreply@example.com", [f"u{i}@x.example"])
        for i in range(count)
    ]


def test_nylas_outcomes_of_a_call_are_recorded_in_one_transaction(domain, commits):
    assert mail.get_connection().send_messages(nylas(5)) == 5
    assert len(commits) == 2  # the messages, then their five outcomes
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert Attempt.objects.filter(outcome="sent").count() == 5
    durations = Attempt.objects.values_list("duration_ms", "started_at")
    assert len({started for _, started in durations}) == 5, "each attempt keeps its own start"


def test_at_most_outcomes_per_commit_wait_together(domain, commits, monkeypatch):
    monkeypatch.setattr(attempt_module, "OUTCOMES_PER_COMMIT", 2)
    assert mail.get_connection().send_messages(nylas(5)) == 5
    assert len(commits) == 1 + 3  # outcomes 2 + 2 + 1


def test_without_a_replaying_provider_each_outcome_is_its_own_commit(txmail_sandbox, commits):
    messages = []
    for i in range(3):  # attachments: Mailtrap sends these one by one, not in a batch
        msg = mail.EmailMessage(f"m{i}", "Body", "noreply@mailtrap.example", [f"u{i}@x.example"])
        msg.attach("a.txt", b"abc", "text/plain")
        messages.append(msg)
    assert mail.get_connection().send_messages(messages) == 3
    assert len(commits) == 1 + 3
    assert len(txmail_sandbox.messages) == 3


def test_a_lease_longer_than_the_providers_cache_records_each_outcome(domain, settings, commits):
    settings.TXMAIL = settings.TXMAIL | {"LEASE": 4000}  # Nylas replays keys for an hour
    assert mail.get_connection().send_messages(nylas(3)) == 3
    assert len(commits) == 1 + 3


def test_half_a_lease_gone_records_what_is_known_and_renews_the_rest(domain, commits, monkeypatch):
    seen = []
    original = attempt_module._lease_half_gone

    def third_finds_half_gone(message):
        seen.append(message.subject)
        return len(seen) == 3 or original(message)

    renewed = []
    renew = attempt_module.renew
    monkeypatch.setattr(attempt_module, "_lease_half_gone", third_finds_half_gone)
    monkeypatch.setattr(attempt_module, "renew", lambda ms: renewed.append(len(ms)) or renew(ms))
    assert mail.get_connection().send_messages(nylas(5)) == 5
    assert renewed == [3], "the three messages left, in one UPDATE"
    assert len(commits) == 1 + 2 + 1  # two outcomes (before the renewal, three after); renewal
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}


def test_a_process_stopped_before_recording_sends_nothing_twice(
    domain, txmail_sandbox, monkeypatch
):
    """The provider accepted three messages, then the process stopped before the outcome
    commit: what was known is recorded if it can be; the rest stays "sending" and,
    after its lease, is retried with the same key and answered from the cache."""
    provider = txmail_sandbox
    calls = []
    call = attempt_module.Transport.call

    def stop_at_the_fourth(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # the process is told to stop mid-call
        return call(self, *args, **kwargs)

    monkeypatch.setattr(attempt_module.Transport, "call", stop_at_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        mail.get_connection().send_messages(nylas(5))
    statuses = dict(Message.objects.values_list("subject", "status"))
    assert statuses == {"n0": "sent", "n1": "sent", "n2": "sent", "n3": "sending", "n4": "sending"}
    monkeypatch.undo()

    # Now a harder stop: accepted by the provider, the outcome commit never happens.
    Message.objects.all().delete()
    provider.reset()
    monkeypatch.setattr(
        attempt_module, "_finish_all", lambda *a, **k: (_ for _ in ()).throw(SystemExit(9))
    )
    with pytest.raises(SystemExit):
        mail.get_connection().send_messages(nylas(3))
    monkeypatch.undo()
    assert set(Message.objects.values_list("status", flat=True)) == {"sending"}
    assert len(provider.messages) == 3
    Message.objects.update(next_attempt_at=timezone.now())  # the lease has run out
    stats = Worker(concurrency=1).run(once=True)
    assert stats.sent == 3
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert len(provider.messages) == 3, "the retries were answered from the provider's cache"
    replayed = [r for r in provider.requests if r.path.endswith("/messages/send")]
    assert len(replayed) == 6
