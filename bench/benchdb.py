"""The throwaway database a benchmark runs on: a new PostgreSQL database or a SQLite file.

PostgreSQL is reached through the ``PG*`` variables (``scripts/postgres.sh
run`` sets them for a throwaway server); the database is created with a
random name before Django starts and dropped at the end.
"""

from __future__ import annotations

import os
import uuid
from typing import Any


def _admin_connection():
    import psycopg

    return psycopg.connect(
        dbname="postgres",
        autocommit=True,
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        password=os.environ.get("PGPASSWORD", ""),
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
    return name, {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "NAME": name,
    }


def drop(db: str, name: str) -> None:
    """Drop a PostgreSQL database made by :func:`create` (a SQLite file goes with its folder)."""
    if db != "postgres":
        return
    from django.db import connections

    connections.close_all()
    with _admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
