"""Fixtures: a sandbox on an ephemeral port and the sending setup that uses it.

The sandbox server itself (the ``txmail_sandbox`` fixture) comes from the
pytest plugin of the django-txmail-sandbox distribution, registered by its
``pytest11`` entry point once it is installed (``make venv`` and tox install
it from ``sandbox/``).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator

import django
import pytest

from django_txmail.models import Grant, SendingDomain

pytest_plugins = ["tests.dns_zones", "tests.api_helpers"]

SANDBOX_KEY = "sandbox-nylas-key"
BACKEND = "django_txmail.backends.EmailBackend"


def txmail_settings(url: str, **overrides) -> dict:
    account = {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": url, "SANDBOX": True}
    return {
        "PROVIDERS": {"nylas": account | overrides.pop("account", {})},
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
        **overrides,
    }


def use_our_backend(settings) -> None:
    """Django's test environment swaps the email backend for locmem; use ours."""
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": {"BACKEND": BACKEND}}
    else:
        settings.EMAIL_BACKEND = BACKEND


@pytest.fixture
def sandbox(txmail_sandbox, settings):
    """The sandbox, with TXMAIL pointing at it and our backend in use.

    Django's test environment swaps the email backend for locmem; these
    tests want the real one.
    """
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    use_our_backend(settings)
    return txmail_sandbox


def wait_for_requests(sandbox, count: int, timeout: float = 5.0) -> None:
    """Wait until the sandbox has answered ``count`` requests (held answers included).

    A test that makes the sandbox hold an answer waits for it, so the answer
    is not logged during the next test.
    """
    deadline = time.monotonic() + timeout
    while len(sandbox.requests) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(sandbox.requests) >= count


def pytest_sessionfinish(session, exitstatus):
    from django.conf import settings

    if settings.configured and "txmail-test-" in str(getattr(settings, "TEST_TMP", "")):
        shutil.rmtree(settings.TEST_TMP, ignore_errors=True)


@pytest.fixture
def domain(db):
    return SendingDomain.objects.create(name="example.com", provider="nylas")


@pytest.fixture
def grant(db):
    return Grant.objects.create(email="alice@example.org", provider="nylas", grant_id="grant-alice")


@pytest.fixture
def commits(monkeypatch) -> Iterator[list[int]]:
    """Grows by one each time the default database commits a transaction: a COMMIT,
    or a statement that writes run outside a transaction (it commits by itself)."""
    from django.db import connection

    counted: list[int] = []
    commit = connection._commit
    monkeypatch.setattr(connection, "_commit", lambda: counted.append(1) or commit())

    def alone(execute, sql, params, many, context):
        if connection.get_autocommit() and WRITES.match(sql):
            counted.append(1)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(alone):
        yield counted


#: Statements that write (a WITH carrying an INSERT, UPDATE or DELETE too).
WRITES = re.compile(
    r"\s*(INSERT|UPDATE|DELETE|COPY|WITH\b.*\b(INSERT|UPDATE|DELETE))\b", re.I | re.S
)
