"""Configuration mistakes are reported by system checks at startup."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from django_txmail.checks import check_settings

REPO = pathlib.Path(__file__).resolve().parent.parent


def ids(errors):
    return [e.id for e in errors]


def test_the_test_settings_pass():
    assert check_settings() == []


@pytest.mark.parametrize(
    ("txmail", "expected"),
    [
        ({"PROVIDERS": {"x": {"ADAPTER": "nylas"}}}, "txmail.E001"),
        (
            {"PROVIDERS": {"x": {"ADAPTER": "no.such.Adapter", "API_URI": "http://h"}}},
            "txmail.E003",
        ),
        ({"PROVIDERS": {"x": {"ADAPTER": "nylas", "API_URI": "http://h"}}}, "txmail.E004"),
        (
            {
                "PROVIDERS": {"x": {"ADAPTER": "nylas", "API_URI": "http://h", "API_KEY": "k"}},
                "DEFAULT_PROVIDER": "y",
            },
            "txmail.E001",
        ),
        (
            {
                "PROVIDERS": {"x": {"ADAPTER": "nylas", "API_URI": "http://h", "API_KEY": "k"}},
                "DELIVERY": "carrier-pigeon",
            },
            "txmail.E001",
        ),
        (
            {
                "PROVIDERS": {"x": {"ADAPTER": "nylas", "API_URI": "http://h", "API_KEY": "k"}},
                "RETRY_BACKOFF": (10, 1),
            },
            "txmail.E001",
        ),
    ],
)
def test_bad_settings_are_reported(settings, txmail, expected):
    settings.TXMAIL = txmail
    assert expected in ids(check_settings())


def test_rest_framework_must_be_installed(settings):
    settings.INSTALLED_APPS = [a for a in settings.INSTALLED_APPS if a != "rest_framework"]
    assert "txmail.E005" in ids(check_settings())


def test_use_tz_is_required(settings):
    settings.USE_TZ = False
    assert "txmail.E006" in ids(check_settings())


def test_an_account_without_a_webhook_secret_is_warned_about(settings):
    settings.TXMAIL = {
        "PROVIDERS": {"x": {"ADAPTER": "nylas", "API_URI": "http://h", "API_KEY": "k"}}
    }
    assert "txmail.W001" in ids(check_settings())
    settings.TXMAIL = {
        "PROVIDERS": {
            "x": {"ADAPTER": "nylas", "API_URI": "http://h", "API_KEY": "k", "WEBHOOK_SECRET": "s"}
        }
    }
    assert "txmail.W001" not in ids(check_settings())


@pytest.mark.parametrize(("wal", "warned"), [(False, True), (True, False)])
def test_an_sqlite_outbox_without_wal_is_a_warning_with_the_settings_that_fix_it(
    tmp_path, wal, warned
):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.sqlite_file_settings",
        "TXMAIL_TEST_SQLITE": str(tmp_path / "db.sqlite3"),
    }
    env.pop("TXMAIL_TEST_SQLITE_WAL", None)
    if wal:
        env["TXMAIL_TEST_SQLITE_WAL"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--database", "default"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=REPO,
    )
    output = result.stdout + result.stderr
    assert ("txmail.W004" in output) is warned, output
    if warned:
        assert "journal mode 'delete'" in output
        assert '"init_command": "PRAGMA journal_mode=WAL;"' in output
