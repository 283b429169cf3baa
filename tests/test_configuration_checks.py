"""Mistakes in settings and in the accounts rows name, reported by ``manage.py check``.

Typos in ``TXMAIL``, in an account or in the backend's ``MAILERS`` OPTIONS
are errors that say what was meant; a sending domain or grant naming no
account is refused on save and reported by the database checks; a project
that has not configured a provider yet can still migrate, run and test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from django_txmail.checks import check_route_accounts, check_settings
from django_txmail.conf import SETTINGS_KEYS, _parse
from django_txmail.models import Grant, SendingDomain
from tests.conftest import BACKEND, use_our_backend

REPO = Path(__file__).resolve().parent.parent
NYLAS = {"ADAPTER": "nylas", "API_URI": "https://api.us.nylas.com", "API_KEY": "k", "SANDBOX": True}


def errors_with(id_: str) -> list:
    return [error for error in check_settings() if error.id == id_]


# -- unknown keys -------------------------------------------------------------------------


def test_a_misspelt_txmail_key_is_an_error_naming_the_key_meant(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS}, "DELIVERYY": "task"}
    [error] = errors_with("txmail.E010")
    assert error.msg == "TXMAIL has an unknown key 'DELIVERYY'."
    assert error.hint == "Did you mean 'DELIVERY'?"


def test_a_misspelt_account_key_is_an_error_naming_the_key_meant(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS | {"WEBHOOK_SECRTE": "s"}}}
    [error] = errors_with("txmail.E010")
    assert "TXMAIL['PROVIDERS']['nylas'] has an unknown key 'WEBHOOK_SECRTE'" in error.msg
    assert error.hint == "Did you mean 'WEBHOOK_SECRET'?"


def test_a_key_nothing_is_close_to_lists_the_keys_the_account_takes(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS | {"REGION": "eu"}}}
    [error] = errors_with("txmail.E010")
    assert "'REGION'" in error.msg
    assert error.hint.startswith(
        "It takes: ADAPTER, API_KEY, API_URI, BREAKER, CLIENT_ID, FAILOVER, LANE_SHARES, PKCE, "
        "RATE_LIMIT, SANDBOX, "
    )
    assert "SERVICE_ACCOUNT_KEY_ID" in error.hint


MAILTRAP = {"ADAPTER": "mailtrap", "API_URI": "https://send.api.mailtrap.io", "API_TOKEN": "t"}
MAILERLOGIC = {"ADAPTER": "mailerlogic", "API_URI": "https://api.mailerlogic.net", "API_KEY": "k"}


@pytest.mark.parametrize(
    ("account", "key", "value", "meant"),
    [
        (MAILTRAP, "API_KEY", "k", "API_TOKEN"),
        (MAILTRAP, "SPLIT_RECIPIENTS", True, None),
        (NYLAS, "SANDBOX_INBOX_ID", 1, None),
        (MAILERLOGIC, "SANDBOX_INBOX_ID", 1, None),
        (MAILERLOGIC, "SPLIT_RECIPENTS", True, "SPLIT_RECIPIENTS"),
    ],
)
def test_each_adapter_takes_only_the_options_it_declares(settings, account, key, value, meant):
    settings.TXMAIL = {"PROVIDERS": {"x": account | {key: value}}}
    [error] = errors_with("txmail.E010")
    assert f"unknown key {key!r}" in error.msg
    if meant:
        assert error.hint == f"Did you mean {meant!r}?"


@pytest.mark.parametrize(
    "account",
    [
        NYLAS | {"SERVICE_ACCOUNT_KEY_ID": "id", "SERVICE_ACCOUNT_PRIVATE_KEY": "pem"},
        MAILTRAP | {"API_URI": "https://sandbox.api.mailtrap.io", "SANDBOX_INBOX_ID": 2049},
        MAILERLOGIC | {"SPLIT_RECIPIENTS": True, "WEBHOOK_SIGNATURE_HEADER": "X-Sig"},
        NYLAS | {"WEBHOOK_SECRET": "s", "WEBHOOK_SECRETS": ["old"]},
        NYLAS | {"CLIENT_ID": "client", "PKCE": False},
    ],
)
def test_every_documented_account_option_passes(settings, account):
    settings.TXMAIL = {"PROVIDERS": {"x": account}}
    assert errors_with("txmail.E010") == []


def test_an_option_the_adapter_refuses_is_reported_at_startup(settings):
    settings.TXMAIL = {"PROVIDERS": {"x": MAILERLOGIC | {"SPLIT_RECIPIENTS": "yes"}}}
    [error] = errors_with("txmail.E003")
    assert "SPLIT_RECIPIENTS" in error.msg and "True or False" in error.msg


def test_the_known_txmail_keys_are_exactly_the_keys_the_setting_reads():
    read = set()

    class Recording(dict):
        def get(self, key, default=None):
            read.add(key)
            return super().get(key, default)

    _parse(Recording({"PROVIDERS": {"nylas": NYLAS}}))
    assert read == SETTINGS_KEYS


def test_an_unknown_adapter_lists_the_built_in_ones(settings):
    settings.TXMAIL = {"PROVIDERS": {"x": NYLAS | {"ADAPTER": "nyals"}}}
    [error] = errors_with("txmail.E003")
    assert "built-in adapter (mailerlogic, mailtrap, nylas)" in error.msg
    assert error.msg.endswith("Did you mean 'nylas'?")


# -- MAILERS OPTIONS ------------------------------------------------------------------------


def test_a_misspelt_mailers_option_is_an_error_naming_the_option_meant(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS}}
    settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"provder": "nylas"}}}
    [error] = errors_with("txmail.E010")
    assert error.msg.startswith("MAILERS['default']['OPTIONS'] has an unknown key 'provder'")
    assert error.hint == "Did you mean 'provider'?"


def test_a_mailers_provider_that_names_no_account_is_an_error(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS}}
    settings.MAILERS = {
        "default": {"BACKEND": BACKEND, "OPTIONS": {"provider": "nylass", "timeout": 3}},
        "smtp": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "mail.example.com", "provider": "x"},
        },
    }
    [error] = [e for e in check_settings() if e.id in ("txmail.E010", "txmail.E011")]
    assert error.id == "txmail.E011"
    assert "MAILERS['default']['OPTIONS']['provider'] is 'nylass'" in error.msg
    assert error.hint == "Did you mean 'nylas'?"


def test_the_backends_own_options_pass(settings):
    settings.TXMAIL = {"PROVIDERS": {"nylas": NYLAS}}
    options = {"provider": "nylas", "timeout": 3, "fail_silently": True}
    settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": options}}
    assert [e for e in check_settings() if e.id in ("txmail.E010", "txmail.E011")] == []


# -- no provider yet ------------------------------------------------------------------------


def test_no_providers_is_a_warning_while_another_backend_sends_the_mail(settings):
    settings.TXMAIL = {}
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    assert [(e.id, e.level) for e in check_settings()] == [("txmail.W010", 30)]


def test_no_providers_is_an_error_where_txmail_is_the_mail_backend(settings):
    settings.TXMAIL = {}
    use_our_backend(settings)
    [error] = check_settings()
    assert (error.id, error.is_serious()) == ("txmail.E002", True)


PROJECT_SETTINGS = """
    SECRET_KEY = "fresh-project"
    USE_TZ = True
    INSTALLED_APPS = [
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "rest_framework",
        "django_txmail",
    ]
    DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {db!r}}}}}
    DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
    {mail}
"""
PROJECT_TEST = """
    from django.test import SimpleTestCase

    class FirstTest(SimpleTestCase):
        def test_it_runs(self):
            self.assertTrue(True)
"""


def manage(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(REPO)])}
    env["DJANGO_SETTINGS_MODULE"] = "fresh_settings"
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=project,
    )


def fresh_project(tmp_path: Path, mail: str) -> Path:
    """A project with django_txmail installed and no TXMAIL setting yet."""
    db = str(tmp_path / "db.sqlite3")
    (tmp_path / "fresh_settings.py").write_text(
        textwrap.dedent(PROJECT_SETTINGS.format(db=db, mail=mail))
    )
    (tmp_path / "fresh_tests.py").write_text(textwrap.dedent(PROJECT_TEST))
    return tmp_path


def test_a_project_without_providers_migrates_and_runs_its_tests(tmp_path):
    project = fresh_project(tmp_path, mail="")
    migrated = manage(project, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    assert "txmail.W010" in migrated.stderr
    tested = manage(project, "test", "fresh_tests")
    assert tested.returncode == 0, tested.stderr
    assert "Ran 1 test" in tested.stderr


def test_a_project_sending_through_txmail_without_providers_is_stopped_but_can_test(tmp_path):
    project = fresh_project(tmp_path, mail=f"EMAIL_BACKEND = {BACKEND!r}")
    checked = manage(project, "check")
    assert checked.returncode != 0 and "txmail.E002" in checked.stderr
    # Django's test runner sends mail to its locmem backend: nothing goes through ours.
    tested = manage(project, "test", "fresh_tests")
    assert tested.returncode == 0, tested.stderr


# -- rows that name an account ------------------------------------------------------------


@pytest.mark.parametrize("model", [SendingDomain, Grant])
@pytest.mark.django_db
def test_a_row_naming_no_account_is_refused_with_the_account_it_meant(model):
    values = (
        {"name": "a.example"}
        if model is SendingDomain
        else {"email": "a@a.example", "grant_id": "g"}
    )
    row = model(provider="Nylas", **values)
    with pytest.raises(ValidationError) as refused:
        row.full_clean()
    assert refused.value.message_dict == {
        "provider": [
            "'Nylas' is not an account of TXMAIL['PROVIDERS'] (configured: nylas). "
            "Did you mean 'nylas'?"
        ]
    }
    row.provider = "nylas"
    row.full_clean()


@pytest.mark.django_db
def test_rows_naming_no_account_are_reported_by_the_database_checks():
    SendingDomain.objects.create(name="example.com", provider="nylas")
    typo = SendingDomain.objects.create(name="shop.example", provider="Nylas")
    gone = Grant.objects.create(email="a@a.example", provider="eu", grant_id="g")
    found = check_route_accounts(databases=["default"])
    assert [(w.id, w.obj) for w in found] == [("txmail.W011", typo), ("txmail.W011", gone)]
    assert found[0].msg == (
        "Sending domain shop.example (Nylas) names the provider 'Nylas', which is not an "
        "account of TXMAIL['PROVIDERS'] (configured: nylas): sending through it raises."
    )
    assert found[0].hint == (
        "Choose its account in the admin (Transactional mail → Sending domains). "
        "Did you mean 'nylas'?"
    )
    assert found[1].hint == "Choose its account in the admin (Transactional mail → Grants)."
    assert check_route_accounts(databases=None) == []
