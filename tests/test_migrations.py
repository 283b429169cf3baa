"""Data migrations: what existing rows become."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

APP = "django_txmail"


@pytest.mark.django_db(transaction=True)
def test_existing_failures_get_their_origin_from_the_providers_failed_events():
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, "0004_message_admin")])
    apps = executor.loader.project_state([(APP, "0004_message_admin")]).apps
    Message = apps.get_model(APP, "Message")
    DeliveryEvent = apps.get_model(APP, "DeliveryEvent")

    def failed(key: str, **fields):
        return Message.objects.create(
            route="domain",
            provider="nylas",
            from_email={"email": "n@example.com", "name": ""},
            from_address="n@example.com",
            status="failed",
            idempotency_key=key,
            **fields,
        )

    failed("ours", last_error_type="connection_error")
    reported = failed("reported")
    # A transient error of an attempt, then accepted, then failed by the provider.
    retried_then_reported = failed("retried", last_error_type="timeout")
    for message in (reported, retried_then_reported):
        DeliveryEvent.objects.create(
            message=message,
            provider="nylas",
            type="failed",
            provider_type="failed",
            provider_event_id=f"e-{message.idempotency_key}",
            occurred_at=timezone.now(),
            raw={},
            ingest_batch="00000000-0000-0000-0000-000000000000",
        )
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, "0005_message_failure_origin")])
    apps = executor.loader.project_state([(APP, "0005_message_failure_origin")]).apps
    origins = dict(
        apps.get_model(APP, "Message").objects.values_list("idempotency_key", "failure_origin")
    )
    assert origins == {"ours": "ours", "reported": "provider", "retried": "provider"}
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_covered_single_column_indexes_go_and_come_back():
    """0012 drops the indexes on provider, status and template alone (each leads a
    composite index that stays); reversed, they are made again."""
    from django.db import connection

    table = "django_txmail_message"

    def indexes() -> dict[tuple[str, ...], int]:
        with connection.cursor() as cursor:
            found = connection.introspection.get_constraints(cursor, table)
        counted: dict[tuple[str, ...], int] = {}
        for info in found.values():
            if info["index"] and not info["unique"] and not info["primary_key"]:
                key = tuple(info["columns"])
                counted[key] = counted.get(key, 0) + 1
        return counted

    alone = [("provider",), ("status",), ("template",)]
    before, after = "0011_api_send_permission", "0012_message_indexes_covered"
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, before)])
    old = indexes()
    assert all(old.get(columns) for columns in alone)
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, after)])
    new = indexes()
    assert not any(new.get(columns) for columns in alone)
    assert {c: n for c, n in old.items() if c not in alone} == new  # the rest untouched
    for leading in ("provider", "status", "template"):
        assert any(columns[0] == leading and len(columns) > 1 for columns in new)
    executor = MigrationExecutor(connection)
    executor.migrate([(APP, before)])
    assert indexes() == old
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
