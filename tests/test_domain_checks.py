"""System checks W002/W003: unverified and stale sending domains (database checks)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_txmail.checks import check_sending_domains
from django_txmail.models import SendingDomain

LIVE = {"ADAPTER": "mailtrap", "API_TOKEN": "t", "API_URI": "https://send.api.mailtrap.io"}


@pytest.fixture(autouse=True)
def accounts(settings):
    settings.TXMAIL = {
        "PROVIDERS": {
            "mailtrap": LIVE,
            "sandbox": {**LIVE, "SANDBOX": True},
        },
        "DEFAULT_PROVIDER": "mailtrap",
        "DOMAIN_CHECK_MAX_AGE": 3 * 24 * 3600,
    }


def ids(messages) -> list[tuple[str, str]]:
    return [(m.id, m.obj.name) for m in messages]


@pytest.mark.django_db
def test_unverified_and_stale_domains_are_warned_about_with_the_command_to_run():
    now = timezone.now()
    SendingDomain.objects.create(name="pending.example", provider="mailtrap")
    SendingDomain.objects.create(
        name="unverified-but-allowed.example", provider="mailtrap", allow_unverified=True
    )
    SendingDomain.objects.create(
        name="stale.example",
        provider="mailtrap",
        status="verified",
        last_checked=now - timedelta(days=4),
    )
    SendingDomain.objects.create(
        name="fresh.example",
        provider="mailtrap",
        status="verified",
        last_checked=now - timedelta(days=1),
    )
    SendingDomain.objects.create(name="local.example", provider="sandbox")
    warnings = check_sending_domains(databases=["default"])
    assert ids(warnings) == [
        ("txmail.W002", "pending.example"),
        ("txmail.W003", "stale.example"),
        ("txmail.W002", "unverified-but-allowed.example"),
    ]
    pending, stale, allowed = warnings
    assert pending.msg == (
        "Sending domain pending.example (mailtrap) is pending: mail from it is refused until "
        "it is verified."
    )
    assert pending.hint == (
        "Run `manage.py txmail_verify_domains pending.example` and publish the records it reports."
    )
    assert "unauthenticated mail goes to spam" in allowed.msg
    assert stale.msg.startswith(
        f"Sending domain stale.example (mailtrap) was last checked: "
        f"{now - timedelta(days=4):%Y-%m-%d}."
    )
    assert "from cron" in stale.hint


@pytest.mark.django_db
def test_the_check_runs_only_when_asked_for_the_database():
    SendingDomain.objects.create(name="pending.example", provider="mailtrap")
    with CaptureQueriesContext(connection) as queries:
        assert not [m for m in run_checks() if m.id == "txmail.W002"]
    assert not queries.captured_queries
    found = [m.id for m in run_checks(databases=["default"])]
    assert "txmail.W002" in found


@pytest.mark.django_db(transaction=True)
def test_the_check_says_nothing_before_the_tables_exist():
    table = SendingDomain._meta.db_table
    with connection.schema_editor() as editor:
        editor.alter_db_table(SendingDomain, table, "txmail_moved_away")
    try:
        assert check_sending_domains(databases=["default"]) == []
    finally:
        with connection.schema_editor() as editor:
            editor.alter_db_table(SendingDomain, "txmail_moved_away", table)
