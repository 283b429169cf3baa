"""SQLite beside task workers: the check that asks for IMMEDIATE transactions (W006)."""

from __future__ import annotations

import pytest
from django.db import connection

from django_txmail.checks import check_sqlite_beside_workers

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="an SQLite setting")


@pytest.fixture
def deferred_transactions(monkeypatch):
    """The outbox database with Django's default SQLite transactions."""
    options = dict(connection.settings_dict["OPTIONS"])
    options.pop("transaction_mode")
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", options)


def test_task_delivery_on_sqlite_without_immediate_is_a_warning(settings, deferred_transactions):
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    [warning] = check_sqlite_beside_workers()
    assert warning.id == "txmail.W006"
    assert "database is locked" in warning.msg and '"transaction_mode": "IMMEDIATE"' in warning.hint


def test_immediate_transactions_or_immediate_delivery_pass(settings, deferred_transactions):
    assert check_sqlite_beside_workers() == []  # DELIVERY "immediate"
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    connection.settings_dict["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    assert check_sqlite_beside_workers() == []
