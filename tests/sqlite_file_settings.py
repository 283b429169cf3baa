"""Settings with the outbox in an SQLite file (``TXMAIL_TEST_SQLITE``), for the
W004 check; ``TXMAIL_TEST_SQLITE_WAL=1`` adds the options the check asks for."""

import os

from tests.settings import *  # noqa: F403

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["TXMAIL_TEST_SQLITE"]}
}
if os.environ.get("TXMAIL_TEST_SQLITE_WAL"):
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
