"""Webhook bodies sent chunked (no Content-Length), over real HTTP, and what is read when.

A provider may send its webhook body with ``Transfer-Encoding: chunked``.
gunicorn (as mod_wsgi and cheroot) hands such a body over without
``Content-Length``, marking the input ``wsgi.input_terminated``; Django's own
development server cannot read it at all.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from django_txmail.models import DeliveryEvent
from tests.conftest import txmail_settings
from tests.test_webhooks import SECRET, URL, delivered, sent_message, sign

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 15
LIMIT = 1000


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.TXMAIL = txmail_settings("http://127.0.0.1:9", account={"WEBHOOK_SECRET": SECRET})


@pytest.fixture
def gunicorn(settings):
    """The test project served by gunicorn, on the test database; its base URL."""
    txmail = settings.TXMAIL | {"WEBHOOK_MAX_BYTES": LIMIT}
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tests.server_settings",
        "TXMAIL_TEST_TXMAIL": json.dumps(txmail),
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1"]
    server = subprocess.Popen(
        [*command, "django.core.wsgi:get_wsgi_application()"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        for line in server.stderr:  # the master says where it listens, then a worker boots
            if listening := re.search(r"Listening at: (http://\S+)", line):
                url = listening[1]
            if "Booting worker" in line:
                break
        else:
            pytest.fail(f"gunicorn did not start (exit {server.wait(TIMEOUT)})")
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=TIMEOUT)


def chunked(body: bytes, size: int = 100):
    """A generator body: requests sends it chunked, without Content-Length."""
    return (body[i : i + size] for i in range(0, len(body), size))


def post_chunked(url: str, body: bytes, signature: str) -> requests.Response:
    headers = {"Content-Type": "application/json", "X-Nylas-Signature": signature}
    return requests.post(url, data=chunked(body), headers=headers, timeout=TIMEOUT)


def test_a_chunked_body_is_read_whole_and_its_events_stored(gunicorn):
    message = sent_message()
    body = json.dumps(delivered(message)).encode()
    response = post_chunked(f"{gunicorn}{URL}", body, sign(body))
    assert "Content-Length" not in response.request.headers
    assert response.request.headers["Transfer-Encoding"] == "chunked"
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    message.refresh_from_db()
    assert message.status == "delivered"
    assert DeliveryEvent.objects.get().type == "delivered"


def test_a_chunked_body_up_to_the_limit_is_read_and_one_byte_more_refused(gunicorn):
    message = sent_message()
    payload = delivered(message)
    size = len(json.dumps(payload | {"padding": ""}).encode())
    payload["padding"] = "x" * (LIMIT - size)
    body = json.dumps(payload).encode()
    assert len(body) == LIMIT
    over = json.dumps(payload | {"padding": payload["padding"] + "x"}).encode()
    refused = post_chunked(f"{gunicorn}{URL}", over, sign(over))
    assert refused.status_code == 413, refused.text
    assert not DeliveryEvent.objects.exists()
    accepted = post_chunked(f"{gunicorn}{URL}", body, sign(body))
    assert accepted.status_code == 200, accepted.text
    assert DeliveryEvent.objects.count() == 1


def test_a_chunked_body_the_server_cannot_read_asks_for_a_content_length(live_server):
    # Django's development server does not take chunked bodies: 411, so the
    # provider sends it again instead of the event being refused as unsigned.
    body = json.dumps(delivered(sent_message())).encode()
    response = post_chunked(f"{live_server.url}{URL}", body, sign(body))
    assert response.status_code == 411, response.text
    assert not DeliveryEvent.objects.exists()


class CountingInput(io.BytesIO):
    """A request body that counts what the view read of it."""

    taken = 0

    def read(self, size=-1):
        data = super().read(size)
        self.taken += len(data)
        return data


def test_the_signature_header_is_checked_before_the_body_is_read(client):
    body = json.dumps(delivered(sent_message())).encode() + b" " * 50_000
    stream = CountingInput(body)
    response = client.generic(
        "POST", URL, body, content_type="application/json", **{"wsgi.input": stream}
    )
    assert response.status_code == 401
    assert stream.taken == 0
    assert not DeliveryEvent.objects.exists()
