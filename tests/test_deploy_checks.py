"""``manage.py check --deploy``: accounts still set up for a laptop."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from tests.conftest import txmail_settings, use_our_backend

# Django 6.1's model checks ask the database whether it takes JSON fields.
pytestmark = pytest.mark.django_db


def deploy_check(settings) -> str:
    # As deployed: the test runner's locmem backend is an error of Django 6.1's deploy check.
    use_our_backend(settings)
    out = StringIO()
    call_command("check", "--deploy", stdout=out, stderr=out)
    return out.getvalue()


def test_a_sandbox_account_on_plain_http_is_reported_by_check_deploy(settings):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:8025")
    out = deploy_check(settings)
    assert "txmail.W012" in out and "TXMAIL['PROVIDERS']['nylas'] has 'SANDBOX': True" in out
    assert "txmail.W013" in out and "'http://127.0.0.1:8025': plain HTTP" in out


def test_a_production_account_passes_and_plain_check_says_nothing(settings):
    settings.TXMAIL = txmail_settings("https://api.us.nylas.com", account={"SANDBOX": False})
    out = deploy_check(settings)
    assert "txmail.W012" not in out and "txmail.W013" not in out
    # drf-spectacular's deploy check builds the project's schema: the webhook endpoint and
    # the API's schema and docs pages stay out of it, whatever DEFAULT_SCHEMA_CLASS is.
    assert "drf_spectacular.E001" not in out
    settings.TXMAIL = txmail_settings("http://127.0.0.1:8025")
    out = StringIO()
    call_command("check", stdout=out, stderr=out)
    assert "txmail.W012" not in out.getvalue() and "txmail.W013" not in out.getvalue()
