"""A webhook that meets a locked SQLite database waits its turn instead of
answering 503 at once: with task delivery a worker writes beside the web
process, and a provider retries a 503 only a few times."""

from __future__ import annotations

import logging
import sqlite3
import threading

import pytest
from django.db import connection

from django_txmail.models import DeliveryEvent
from tests.conftest import txmail_settings
from tests.message_rows import message_row
from tests.test_webhooks import SECRET, delivered, post

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's database-wide write lock"),
]


class Signal(logging.Handler):
    """Sets ``event`` when the view logs that the database was busy."""

    def __init__(self) -> None:
        super().__init__()
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "database busy" in record.getMessage():
            self.event.set()


@pytest.fixture
def no_waiting_for_locks():
    """The web process's connection without a busy timeout, as with Django's
    default (deferred) transactions: a write that meets the lock fails at once."""
    connection.ensure_connection()
    connection.connection.execute("PRAGMA busy_timeout = 0")
    yield
    connection.close()


def test_a_webhook_waits_while_another_process_holds_the_write_lock(
    client, settings, no_waiting_for_locks
):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET})
    message = message_row()
    busy = Signal()
    logger = logging.getLogger("django_txmail.tracking.views")
    logger.addHandler(busy)
    logger.setLevel(logging.INFO)
    worker = sqlite3.connect(
        connection.settings_dict["NAME"], isolation_level=None, check_same_thread=False
    )
    worker.execute("BEGIN IMMEDIATE")  # a worker's write transaction

    def finish_the_write() -> None:
        busy.event.wait(60)  # until the webhook has met the lock
        worker.execute("COMMIT")

    writer = threading.Thread(target=finish_the_write)
    writer.start()
    try:
        response = post(client, delivered(message))
    finally:
        busy.event.set()
        writer.join()
        worker.close()
        logger.removeHandler(busy)
        logger.setLevel(logging.NOTSET)
    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 1
    message.refresh_from_db()
    assert message.status == "delivered" and DeliveryEvent.objects.count() == 1
