"""The throwaway Django a benchmark runs in: its settings and a new PostgreSQL database or
SQLite file.

PostgreSQL is reached through the ``PG*`` variables (``scripts/postgres.sh
run`` sets them for a throwaway server); the database is created with a
random name before Django starts and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from collections.abc import Callable
from typing import Any

#: Settings every benchmark shares; each adds its own apps, URLs and TXMAIL.
BASE_SETTINGS: dict[str, Any] = {
    "DEBUG": False,
    "SECRET_KEY": "bench-only-not-secret",
    "USE_TZ": True,
    "TIME_ZONE": "UTC",
    "ALLOWED_HOSTS": ["testserver"],
    "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
}


#: The apps a benchmark installs: django-txmail and what it needs.
APPS = ["django.contrib.contenttypes", "django.contrib.auth", "rest_framework", "django_txmail"]


def postgres_entry(name: str) -> dict[str, Any]:
    """A ``DATABASES`` entry for the database ``name`` on the server the PG* variables name."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "NAME": name,
    }


def _admin_connection():
    import psycopg

    entry = postgres_entry("postgres")
    return psycopg.connect(
        dbname=entry["NAME"],
        autocommit=True,
        host=entry["HOST"],
        port=entry["PORT"],
        user=entry["USER"],
        password=entry["PASSWORD"],
    )


def create(db: str, tmp: str) -> tuple[str, dict[str, Any]]:
    """Create the database; return its name and its ``DATABASES["default"]`` entry."""
    if db != "postgres":
        name = os.path.join(tmp, "bench.sqlite3")
        return name, {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
        }
    name = f"txmail_bench_{uuid.uuid4().hex[:8]}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, postgres_entry(name)


def setup(
    db: str, tmp: str, database_options: dict[str, Any] | None = None, **settings: Any
) -> str:
    """Create the database, configure Django with it and ``settings``, migrate; return its name.

    ``database_options`` go into its ``DATABASES["default"]`` entry (``CONN_MAX_AGE``...).
    """
    import django
    from django.conf import settings as django_settings
    from django.core.management import call_command

    name, database = create(db, tmp)
    database.update(database_options or {})
    django_settings.configure(**BASE_SETTINGS, DATABASES={"default": database}, **settings)
    django.setup()
    call_command("migrate", verbosity=0)
    return name


def setup_txmail(db: str, tmp: str, accounts: dict[str, dict], **txmail: Any) -> str:
    """:func:`setup` for django-txmail: its apps and URLs, ``TXMAIL["PROVIDERS"]`` =
    ``accounts`` and the other ``TXMAIL`` keys given; its backend sends the mail."""
    return setup(
        db,
        tmp,
        INSTALLED_APPS=APPS,
        ROOT_URLCONF="django_txmail.urls",
        EMAIL_BACKEND="django_txmail.backends.EmailBackend",
        TXMAIL={"PROVIDERS": accounts, **txmail},
    )


def drop(db: str, name: str) -> None:
    """Drop a PostgreSQL database made by :func:`create` (a SQLite file goes with its folder)."""
    if db != "postgres":
        return
    from django.db import connections

    connections.close_all()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def run_in_database(
    args: argparse.Namespace,
    configure: Callable[[str, str], str],
    run: Callable[[argparse.Namespace], int],
) -> int:
    """``configure(args.db, tmp)`` a fresh database, ``run(args)`` in it, then drop it."""
    with tempfile.TemporaryDirectory(prefix="txmail-bench-") as tmp:
        name = configure(args.db, tmp)
        try:
            return run(args)
        finally:
            drop(args.db, name)
