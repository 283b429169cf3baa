"""A send that meets a configuration problem raises before it records anything.

Each problem here can be seen at send time: the task backend, the adapter,
the credentials, the API URI and the route. The call raises
``ImproperlyConfigured`` and leaves no row behind, so no worker sends the
message later and a caller that retries does not get two copies. A batch is
all or nothing: the good message beside the broken one is not recorded either.
"""

from __future__ import annotations

import sys

import django
import pytest
from django.core import mail
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from django_txmail.exceptions import ProviderAPIError
from django_txmail.message import TxMessage
from django_txmail.models import Message, SendingDomain
from django_txmail.outbox.resend import resend, retry
from tests.conftest import SANDBOX_KEY, txmail_settings
from txmail_sandbox import Fault

FRAMEWORK = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
IMMEDIATE_TASKS = f"{FRAMEWORK}.backends.immediate.ImmediateBackend"

pytestmark = pytest.mark.django_db(transaction=True)


def good(subject: str = "Receipt") -> TxMessage:
    return TxMessage(subject, "b", "noreply@example.com", ["a@x.example"])


def broken() -> TxMessage:
    return TxMessage("Alert", "b", "alerts@broken.example", ["b@x.example"])


def assert_nothing_recorded_or_sent(sandbox) -> None:
    assert Message.objects.count() == 0
    assert sandbox.messages == [] and sandbox.requests == []


@pytest.fixture
def accounts(sandbox, settings, domain):
    """A working account "nylas" (example.com) and a second account "other"
    (broken.example); returns a function that sets TXMAIL with changes to "other"
    (a key set to None is left out) and any other TXMAIL keys."""
    nylas = {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": sandbox.url, "SANDBOX": True}
    SendingDomain.objects.create(name="broken.example", provider="other")

    def configure(other: dict | None = None, **txmail) -> None:
        changed = nylas | (other or {})
        other_account = {key: value for key, value in changed.items() if value is not None}
        settings.TXMAIL = txmail_settings(sandbox.url, **txmail) | {
            "PROVIDERS": {"nylas": nylas, "other": other_account}
        }

    configure()
    return configure


@pytest.fixture
def task_delivery(settings):
    settings.TASKS = {"default": {"BACKEND": IMMEDIATE_TASKS}}
    return {"DELIVERY": "task", "MAX_ATTEMPTS": 1}


BROKEN_ACCOUNTS = {
    "an adapter that cannot be imported": ({"ADAPTER": "nyals"}, "Did you mean 'nylas'"),
    "no API_KEY": ({"API_KEY": None}, r"\['other'\] has no API_KEY"),
    "an empty API_KEY": ({"API_KEY": ""}, r"\['other'\] has no API_KEY"),
    "an API_URI without a scheme": ({"API_URI": "127.0.0.1:9"}, "not an http"),
}


@pytest.mark.parametrize("delivery", ["immediate", "task"])
@pytest.mark.parametrize("problem", list(BROKEN_ACCOUNTS))
def test_a_batch_with_a_misconfigured_account_records_and_sends_nothing(
    accounts, sandbox, task_delivery, delivery, problem
):
    other, says = BROKEN_ACCOUNTS[problem]
    accounts(other, **(task_delivery if delivery == "task" else {}))
    with pytest.raises(ImproperlyConfigured, match=says):
        mail.get_connection().send_messages([good(), broken()])
    assert_nothing_recorded_or_sent(sandbox)


@pytest.mark.parametrize("delivery", ["immediate", "task"])
def test_a_domain_that_names_no_account_stops_the_whole_batch(
    accounts, sandbox, task_delivery, delivery
):
    accounts(**(task_delivery if delivery == "task" else {}))
    SendingDomain.objects.filter(name="broken.example").update(provider="Nylas")
    with pytest.raises(ImproperlyConfigured, match="no account 'Nylas'.*Did you mean 'nylas'"):
        mail.get_connection().send_messages([good(), broken()])
    assert_nothing_recorded_or_sent(sandbox)


def test_a_message_that_names_no_account_stops_the_whole_batch(accounts, sandbox):
    typo = good("Typo")
    typo.provider = "nylass"
    with pytest.raises(ImproperlyConfigured, match="no account 'nylass'"):
        mail.get_connection().send_messages([good(), typo])
    assert_nothing_recorded_or_sent(sandbox)


TASK_BACKEND_PROBLEMS = {
    "an alias missing from TASKS": ({"TASK_BACKEND": "mail"}, {}, "TASK_BACKEND'] is 'mail'"),
    "a backend that cannot be loaded": (
        {"TASK_BACKEND": "txmail"},
        {"txmail": {"BACKEND": "no.such.Backend"}},
        "cannot be loaded",
    ),
}


@pytest.mark.parametrize("problem", list(TASK_BACKEND_PROBLEMS))
def test_task_delivery_to_a_task_backend_that_cannot_take_tasks_records_nothing(
    accounts, sandbox, task_delivery, settings, problem
):
    txmail, tasks, says = TASK_BACKEND_PROBLEMS[problem]
    accounts(**task_delivery, **txmail)
    settings.TASKS = settings.TASKS | tasks
    with pytest.raises(ImproperlyConfigured, match=says):
        mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"])
    assert_nothing_recorded_or_sent(sandbox)
    call_command("txmail_worker", "--once")
    assert sandbox.messages == []


def test_task_delivery_without_the_tasks_framework_records_nothing(
    accounts, sandbox, task_delivery, monkeypatch
):
    accounts(**task_delivery)
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, FRAMEWORK, None)
        patch.delitem(sys.modules, "django_txmail.sending.tasks", raising=False)
        with pytest.raises(ImproperlyConfigured, match="pip install django-tasks"):
            mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"])
    assert_nothing_recorded_or_sent(sandbox)


def test_resend_and_retry_check_the_task_backend_before_touching_the_outbox(
    accounts, sandbox, task_delivery
):
    sandbox.inject(Fault(status=400))
    with pytest.raises(ProviderAPIError):
        good().send()
    failed = Message.objects.get()
    assert failed.status == "failed"
    accounts(**task_delivery, TASK_BACKEND="mail")
    with pytest.raises(ImproperlyConfigured, match="TASK_BACKEND'] is 'mail'"):
        resend(failed)
    with pytest.raises(ImproperlyConfigured, match="TASK_BACKEND'] is 'mail'"):
        retry(failed)
    assert list(Message.objects.values_list("pk", "status")) == [(failed.pk, "failed")]
    assert len(sandbox.requests) == 1
