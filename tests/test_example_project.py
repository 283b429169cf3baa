"""The example project, run as a user runs it: manage.py in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = Path(__file__).resolve().parent.parent / "example_project" / "manage.py"


@pytest.fixture
def manage(txmail_sandbox, tmp_path):
    env = os.environ | {
        "EXAMPLE_DB_PATH": str(tmp_path / "db.sqlite3"),
        "EXAMPLE_MEDIA_ROOT": str(tmp_path / "media"),
        "TXMAIL_NYLAS_API_URI": txmail_sandbox.url,
        "DJANGO_SETTINGS_MODULE": "example_project.settings",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("TXMAIL_TEST_DB", None)

    def run(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, str(MANAGE), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,  # a bound for a hang; on a busy machine a migrate takes minutes
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run("migrate", "--noinput")
    return run


def test_sendtestemail_goes_through_the_backend_to_the_sandbox(manage, txmail_sandbox):
    manage("sendtestemail", "you@example.com")
    [received] = txmail_sandbox.messages
    assert received.route == "domain" and received.domain == "example.com"
    assert received.payload["to"] == [{"email": "you@example.com", "name": ""}]
    assert received.payload["from"]["email"] == "noreply@example.com"


def test_demo_sends_through_both_routes_and_reports_rows_sent(manage, txmail_sandbox):
    out = manage("txmail_demo")
    routes = sorted((m.route, m.domain or m.grant_id) for m in txmail_sandbox.messages)
    assert routes == [("domain", "example.com")] * 3 + [("grant", "demo-grant-alice")]
    assert out.count("status=sent") == 4
    subjects = sorted(m.payload["subject"] for m in txmail_sandbox.messages)
    assert "Willkommen bei Example Shop, Bea" in subjects  # the German variant
    assert "Welcome to Example Shop, Ann" in subjects  # the stored template, rendered
    for received in txmail_sandbox.messages:
        assert f"provider_id={received.id}" in out
