"""A trigram index for the admin's recipient search, on PostgreSQL where pg_trgm exists.

The admin finds a recipient with ``recipient_emails LIKE '%ann@%'``: a B-tree
index cannot serve a pattern with a leading wildcard, so without this index
every search reads the whole table (about 1.4 s at a million messages). A GIN
index with ``gin_trgm_ops`` serves it, in milliseconds at any size.

It is made only where it can be: on PostgreSQL, when the ``pg_trgm`` extension
is installed or this database user may install it (``CREATE EXTENSION`` needs
the owner of the database on PostgreSQL 13+ for this trusted extension, or a
superuser before). Elsewhere (SQLite, MySQL, a server without the extension or
without the right) the migration does nothing and the search still works,
scanning as before. docs/admin.md says how to add the index later by hand.

The index is built ``CONCURRENTLY``, so the outbox keeps taking writes while it
is built on a big table; that is why this migration is not atomic. The index is
the database's own business, not a field's: it is not in the model state, so
``makemigrations`` never sees it.
"""

from django.db import DatabaseError, migrations, transaction

INDEX = "txmail_msg_recipients_trgm"


def has_trigrams(cursor) -> bool:
    """Install pg_trgm if it is available and allowed; say whether it is installed."""
    cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
    if cursor.fetchone():
        return True
    cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
    if not cursor.fetchone():
        return False
    try:
        with transaction.atomic(using=cursor.db.alias):  # a savepoint inside a transaction
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError:  # no right to install it: the search scans instead
        return False
    return True


def create_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if not has_trigrams(cursor):
            return
        # An earlier CONCURRENTLY build that was interrupted leaves an invalid index.
        cursor.execute(
            "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = %s AND NOT i.indisvalid",
            [INDEX],
        )
        # CONCURRENTLY cannot run inside a transaction (a migration run by a test, or
        # by a caller that wraps migrate in one); there the table is locked briefly.
        concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
        if cursor.fetchone():
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")
        table = apps.get_model("django_txmail", "Message")._meta.db_table
        cursor.execute(
            f"CREATE INDEX {concurrently}IF NOT EXISTS {INDEX} "
            f"ON {connection.ops.quote_name(table)} USING gin (recipient_emails gin_trgm_ops)"
        )


def drop_index(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
        with connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("django_txmail", "0005_message_failure_origin"),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
