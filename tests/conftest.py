"""Fixtures: a sandbox on an ephemeral port and the sending setup that uses it.

The sandbox server itself comes from django-txmail's pytest plugin
(``txmail_sandbox``), which the package registers as a pytest11 entry point.
"""

from __future__ import annotations

import pytest

from django_txmail.models import Grant, SendingDomain

SANDBOX_KEY = "sandbox-nylas-key"


def txmail_settings(url: str, **overrides) -> dict:
    account = {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": url, "SANDBOX": True}
    return {
        "PROVIDERS": {"nylas": account | overrides.pop("account", {})},
        "DEFAULT_PROVIDER": "nylas",
        "TIMEOUT": 5,
        **overrides,
    }


@pytest.fixture
def sandbox(txmail_sandbox, settings):
    """The sandbox, with TXMAIL pointing at it."""
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    return txmail_sandbox


@pytest.fixture
def domain(db):
    return SendingDomain.objects.create(name="example.com", provider="nylas")


@pytest.fixture
def grant(db):
    return Grant.objects.create(email="alice@example.org", provider="nylas", grant_id="grant-alice")
