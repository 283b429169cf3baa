"""``manage.py txmail_sandbox``: the sandbox run with the project's settings.

The command runs in a subprocess with its own tiny settings module
(``tests/sandbox_cmd_settings.py``). The sandbox itself is tested in
``sandbox/tests/``.
"""

from __future__ import annotations

import importlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from django.core.management import CommandError, call_command

from django_txmail.management.commands.txmail_sandbox import (
    SANDBOX_MISSING,
    Command,
    webhook_secret_from_settings,
)

TIMEOUT = 10
REPO = Path(__file__).resolve().parent.parent
NYLAS_MESSAGE = {"from": {"email": "hello@acme.io"}, "to": [{"email": "ann@example.com"}]}
MAILTRAP_MESSAGE = {
    "from": {"email": "hello@acme.io"},
    "to": [{"email": "ann@example.com"}],
    "subject": "Welcome",
    "text": "Hi",
}


def start_command(*args, settings_module="tests.sandbox_cmd_settings"):
    """Run ``txmail_sandbox`` in a subprocess (``settings_module=None``: bare
    ``settings.configure()``, so no TXMAIL setting at all).

    The command object is called directly so that the subprocess does not
    depend on the rest of the app being importable."""
    configure = "" if settings_module else "django.conf.settings.configure()\n"
    code = (
        f"import sys, django, django.conf\n{configure}django.setup()\n"
        "from django.core.management import call_command\n"
        "from django_txmail.management.commands.txmail_sandbox import Command\n"
        "call_command(Command(), *sys.argv[1:])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONUNBUFFERED"] = "1"
    if settings_module:
        env["DJANGO_SETTINGS_MODULE"] = settings_module
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=REPO,
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


def test_management_command_serves_settings_keys_until_sigterm():
    process = start_command("--port", "0")
    try:
        first_line = read_first_line(process)
        url = url_in(first_line)
        with requests.Session() as session:
            for key, status in [("cmd-nylas-key-one", 200), ("cmd-nylas-key-two", 200)]:
                response = session.post(
                    f"{url}/v3/domains/acme.io/messages/send",
                    json=NYLAS_MESSAGE,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=TIMEOUT,
                )
                assert response.status_code == status
            mailtrap = session.post(
                f"{url}/v3/domains/acme.io/messages/send",
                json=NYLAS_MESSAGE,
                headers={"Authorization": "Bearer cmd-mailtrap-token"},
                timeout=TIMEOUT,
            )
            assert mailtrap.status_code == 401
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)

    assert process.returncode == 0, stderr
    assert re.search(r"^POST /v3/domains/acme.io/messages/send 200 \d+\.\d ms$", stdout, re.M)
    assert re.search(r"^POST /v3/domains/acme.io/messages/send 401 \d+\.\d ms$", stdout, re.M)
    assert "2 API keys" in first_line
    assert stdout.rstrip().endswith("Sandbox stopped.")
    assert "cmd-nylas-key" not in first_line + stdout + stderr


def test_management_command_takes_keys_and_latency_from_options():
    process = start_command("--port", "0", "--api-key", "cli-key", "--latency", "0.2", "--quiet")
    try:
        url = url_in(read_first_line(process))
        started = time.monotonic()
        response = requests.post(
            f"{url}/v3/domains/acme.io/messages/send",
            json=NYLAS_MESSAGE,
            headers={"Authorization": "Bearer cli-key"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.2
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == 0, stderr
    assert "POST" not in stdout
    assert "cli-key" not in stdout + stderr


def test_management_command_without_keys_says_what_to_do():
    process = start_command("--port", "0", settings_module=None)
    try:
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode != 0
    assert "--api-key" in stderr


def test_the_management_command_accepts_the_settings_mailtrap_token():
    process = start_command("--port", "0", "--mailerlogic-key", "cli-ml-key")
    try:
        first_line = read_first_line(process)
        url = url_in(first_line)
        with requests.Session() as session:
            ok = session.post(
                f"{url}/api/send",
                json=MAILTRAP_MESSAGE,
                headers={"Api-Token": "cmd-mailtrap-token"},
                timeout=TIMEOUT,
            )
            assert ok.status_code == 200, ok.text
            refused = session.post(
                f"{url}/api/send",
                json=MAILTRAP_MESSAGE,
                headers={"Api-Token": "cmd-nylas-key-one"},
                timeout=TIMEOUT,
            )
            assert refused.status_code == 401
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert process.returncode == 0, stderr
    assert "Mailtrap: 1 API token" in first_line and "MailerLogic: 1 API key" in first_line
    assert "POST /api/send 200" in stdout and "POST /api/send 401" in stdout
    assert "cmd-mailtrap-token" not in first_line + stdout + stderr
    assert "cli-ml-key" not in first_line + stdout + stderr


def test_management_command_takes_a_fault_plan_and_reports_it():
    process = start_command(
        "--port", "0", "--fault-rate", "0.25", "--fault-kinds", "reset:1,slow:3", "--hang", "5"
    )
    try:
        line = read_first_line(process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert "25% of sends fail; seed 0; kinds reset:1,slow:3;" in line
    assert "hang 5 s" in line
    assert process.returncode == 0


def test_command_lines_without_a_fault_plan_say_so():
    process = start_command("--port", "0")
    try:
        line = read_first_line(process)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        process.kill()
        process.wait(30)
    assert "no random faults" in line


@pytest.mark.parametrize(
    "argv, mentions",
    [
        (["--fault-rate", "2"], "--fault-rate must be between 0 and 1"),
        (["--fault-seed", "3"], "--fault-seed needs --fault-rate"),
        (["--webhook-url", "nylas"], "takes PROVIDER=URL"),
        (["--latency", "-1"], "--latency must be >= 0"),
        (["--outage-rate", "2"], "--outage-rate must be between 0 and 1"),
    ],
    ids=["fault-rate", "fault-seed", "webhook-url", "latency", "outage-rate"],
)
def test_bad_options_are_command_errors(argv, mentions):
    with pytest.raises(CommandError, match=mentions):
        call_command(Command(), "--port", "0", "--api-key", "k", *argv)


def test_the_secret_defaults_to_the_accounts_webhook_secret(settings):
    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": {"ADAPTER": "nylas", "API_KEY": "k", "WEBHOOK_SECRET": "one"},
            "nylas-eu": {"ADAPTER": "nylas", "API_KEY": "k2"},
        }
    }
    assert webhook_secret_from_settings("nylas") == "one"
    settings.TXMAIL["PROVIDERS"]["nylas-eu"]["WEBHOOK_SECRET"] = "two"
    with pytest.raises(ValueError, match="different WEBHOOK_SECRETs"):
        webhook_secret_from_settings("nylas")


# Without the sandbox


@pytest.fixture
def no_sandbox(monkeypatch):
    """As if django-txmail-sandbox were not installed: importing it fails."""
    for name in [name for name in sys.modules if name.split(".")[0] == "txmail_sandbox"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "txmail_sandbox", None)


def test_without_the_sandbox_the_command_says_how_to_install_it(no_sandbox):
    with pytest.raises(CommandError) as raised:
        call_command("txmail_sandbox", "--port", "0")
    assert str(raised.value) == SANDBOX_MISSING
    assert "pip install django-txmail-sandbox" in SANDBOX_MISSING
    assert 'pip install "django-txmail[sandbox]"' in SANDBOX_MISSING


def test_without_the_sandbox_the_command_line_gets_the_message_not_a_traceback(no_sandbox, capsys):
    with pytest.raises(SystemExit) as exit_info:
        Command().run_from_argv(["manage.py", "txmail_sandbox", "--fault-rate", "0.3"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == f"CommandError: {SANDBOX_MISSING}\n"


def test_without_the_sandbox_the_command_module_still_imports(no_sandbox, monkeypatch):
    """So ``manage.py help`` and the other commands are unaffected."""
    name = Command.__module__
    monkeypatch.delitem(sys.modules, name)
    assert importlib.import_module(name).Command.help == Command.help
