"""What several of the sandbox's test modules share: a Nylas send and its
error check, and the sandbox run as ``python -m txmail_sandbox``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

API_KEY = "sandbox-nylas-key"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
TIMEOUT = 10
#: The sandbox distribution's folder: ``python -m txmail_sandbox`` finds the
#: package there even where it is not installed.
PROJECT = Path(__file__).resolve().parent.parent


def message(**fields):
    payload = {
        "from": {"email": "hello@acme.io", "name": "Acme"},
        "to": [{"email": "ann@example.com", "name": "Ann"}],
        "subject": "Welcome",
        "body": "<p>Hi <b>Ann</b> &amp; welcome</p>",
    }
    payload.update(fields)
    return {name: value for name, value in payload.items() if value is not None}


def send_url(sandbox, route="domain", target=None):
    if route == "domain":
        return f"{sandbox.url}/v3/domains/{target or 'acme.io'}/messages/send"
    return f"{sandbox.url}/v3/grants/{target or 'grant-1'}/messages/send"


def send(http, sandbox, payload, route="domain", target=None, key=None, timeout=TIMEOUT):
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    return http.post(
        send_url(sandbox, route, target), json=payload, headers=headers, timeout=timeout
    )


def assert_nylas_error(response, status, error_type, mentions=""):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"]["type"] == error_type
    assert body["request_id"]
    assert mentions in body["error"]["message"]


def start_module(*args):
    """Run ``python -m txmail_sandbox ARGS`` without any Django settings."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    return subprocess.Popen(
        [sys.executable, "-m", "txmail_sandbox", *args],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_first_line(process):
    line = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()))
    reader.start()
    reader.join(30)
    assert line and "listening on" in line[0], (line, process.poll())
    return line[0]


def url_in(line):
    return re.search(r"http://[\d.:]+", line).group(0)


def wait_for(condition, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
