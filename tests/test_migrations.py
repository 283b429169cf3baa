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
