"""Drop three single-column indexes of Message that composite indexes already cover.

``provider``, ``status`` and ``template`` each lead a composite index
(``txmail_msg_provider_new``, ``txmail_msg_due`` and ``txmail_msg_status_new``,
``txmail_msg_template_new``), which serves any filter on the column alone. Every
INSERT, and every UPDATE that changes the status, paid for three more index
entries (on PostgreSQL a status change never is a HOT update).

The fields lose ``db_index`` in the model state; in the database only the
indexes go, found by introspection (their names are Django's hashes; on
PostgreSQL each also has a ``_like`` twin). No table is rebuilt, which an
``AlterField`` would do on SQLite, and on PostgreSQL they are dropped
``CONCURRENTLY`` (so this migration is not atomic), not blocking the workers'
writes while it waits for their transactions. Reversed, the indexes are made
again as ``AlterField`` would make them.
"""

import copy

from django.db import migrations, models

COLUMNS = ("provider", "status", "template")


def _single_column_indexes(connection, table: str) -> list[str]:
    """The names of the plain (not unique, not composite) indexes on ``COLUMNS``."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return sorted(
        name
        for name, info in constraints.items()
        if info["index"]
        and not info["unique"]
        and not info["primary_key"]
        and list(info["columns"]) in ([column] for column in COLUMNS)
    )


def drop_indexes(apps, schema_editor):
    connection = schema_editor.connection
    table = apps.get_model("django_txmail", "Message")._meta.db_table
    concurrently = (
        "CONCURRENTLY "
        if connection.vendor == "postgresql" and not connection.in_atomic_block
        else ""
    )
    with connection.cursor() as cursor:
        for name in _single_column_indexes(connection, table):
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {connection.ops.quote_name(name)}")


def make_indexes(apps, schema_editor):
    model = apps.get_model("django_txmail", "Message")
    for column in COLUMNS:
        field = copy.copy(model._meta.get_field(column))
        field.db_index = True  # as it was before this migration
        for sql in schema_editor._field_indexes_sql(model, field):  # with PostgreSQL's _like
            schema_editor.execute(sql)

STATUS_CHOICES = [
    ("queued", "queued"),
    ("scheduled", "scheduled"),
    ("sending", "sending"),
    ("sent", "sent"),
    ("delivered", "delivered"),
    ("deferred", "deferred"),
    ("bounced", "bounced"),
    ("complained", "complained"),
    ("rejected", "rejected"),
    ("failed", "failed"),
    ("cancelled", "cancelled"),
    ("suppressed", "suppressed"),
]


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("django_txmail", "0011_api_send_permission"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="message",
                    name="provider",
                    field=models.CharField(max_length=64),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="status",
                    field=models.CharField(choices=STATUS_CHOICES, default="queued", max_length=16),
                ),
                migrations.AlterField(
                    model_name="message",
                    name="template",
                    field=models.CharField(
                        blank=True,
                        help_text="Slug of the stored template that produced the content.",
                        max_length=100,
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, make_indexes)],
        ),
    ]
