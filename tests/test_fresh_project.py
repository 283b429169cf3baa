"""A new user's first hour, as a test: a project fresh from ``django-admin
startproject``, the README's Install snippets appended as written, ``check``,
``migrate``, the README's first send through the sandbox, and the README's
pytest example run by pytest in that project.

The snippets are read from README.md itself, so a snippet that stops pasting
(a missing import, a setting that needs the environment) fails here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import django
import pytest

README = Path(__file__).resolve().parent.parent / "README.md"

# About ten Django processes one after another: on a busy machine that takes
# minutes, and the bound is for a run that hangs, not a pace.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def section(heading: str) -> str:
    """The README's text under ``## heading``, up to the next ``## `` heading."""
    text = README.read_text()
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, re.M | re.S)


def applies_here(label: str) -> bool:
    """Whether a snippet labelled ``# settings.py, Django ...`` is for this Django."""
    if "Django 6.1+" in label:
        return django.VERSION >= (6, 1)
    if "Django 5.2 and 6.0" in label:
        return django.VERSION < (6, 1)
    return True


def install_snippets() -> dict[str, list[str]]:
    """The Install section's snippets for this Django, by the file they go to."""
    snippets: dict[str, list[str]] = {"settings.py": [], "urls.py": []}
    for block in python_blocks(section("Install")):
        label = block.splitlines()[0]
        target = re.match(r"# (settings\.py|urls\.py)\b", label)
        if target and applies_here(label):
            snippets[target.group(1)].append(block)
    return snippets


@pytest.fixture
def project(tmp_path, txmail_sandbox):
    """A new project with the README's Install snippets appended."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "mysite", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    snippets = install_snippets()
    assert len(snippets["settings.py"]) == 2 and len(snippets["urls.py"]) == 1, snippets
    for name, blocks in snippets.items():
        with (tmp_path / "mysite" / name).open("a") as file:
            file.write("\n\n" + "\n\n".join(blocks))
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DJANGO_SETTINGS_MODULE", "NYLAS_API_KEY", "TXMAIL_TEST_DB")
    }
    env |= {"TXMAIL_SANDBOX_URL": txmail_sandbox.url, "PYTHONWARNINGS": "ignore"}

    return Project(tmp_path, env)


class Project:
    """The new project's folder, and its commands run there as a user runs them."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env = root, env

    def run(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, *args], cwd=self.root, env=self.env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr


def test_the_readme_install_check_migrate_send_and_pytest_example(project, txmail_sandbox):
    assert "System check identified no issues" in project.run("manage.py", "check")
    project.run("manage.py", "migrate", "--noinput")

    # "add your sending domain", then the README's first send.
    create_domain = (
        "from django_txmail.models import SendingDomain; "
        "SendingDomain.objects.create(name='shop.example', provider='nylas')"
    )
    project.run("manage.py", "shell", "-c", create_domain)
    first_send = python_blocks(section("Sending"))[0]
    project.run("manage.py", "shell", "-c", first_send)
    [received] = txmail_sandbox.messages
    assert received.payload["subject"] == "Welcome"
    assert received.payload["to"] == [{"email": "ann@example.net", "name": "Ann"}]

    # The README's pytest example, in the project's own test run.
    [example] = [b for b in python_blocks(section("The sandbox")) if "def test_" in b]
    (project.root / "test_welcome.py").write_text(example)
    (project.root / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = mysite.settings\n")
    out = project.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_welcome.py")
    assert "1 passed" in out
