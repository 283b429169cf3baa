"""The pytest plugin: the ``txmail_sandbox`` fixtures in another project's
test run, however the plugin got registered."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sandbox_support import PROJECT

PLUGIN_TEST = """
def test_uses_the_sandbox(txmail_sandbox, txmail_sandbox_server):
    import requests
    assert txmail_sandbox is txmail_sandbox_server
    response = requests.post(
        txmail_sandbox.url + "/v3/domains/acme.io/messages/send",
        json={"from": {"email": "a@acme.io"}, "to": [{"email": "b@example.com"}]},
        headers={"Authorization": "Bearer custom-key"},
        timeout=10,
    )
    assert response.status_code == 200
    assert len(txmail_sandbox.messages) == 1


def test_starts_empty(txmail_sandbox):
    assert txmail_sandbox.messages == []
"""


@pytest.mark.parametrize(
    "entry_point, conftest",
    [(True, True), (True, False), (False, True)],
    ids=["entry-point-and-conftest", "entry-point-only", "conftest-only"],
)
def test_pytest_plugin_loads_once_whichever_way_it_is_registered(tmp_path, entry_point, conftest):
    site = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_DISABLE_PLUGIN_AUTOLOAD"}
    if entry_point:
        # A distribution of its own declaring the entry point, so the case
        # holds whether or not django-txmail-sandbox is installed here.
        dist_info = site / "txmail_sandbox_entry_point-0.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: txmail-sandbox-entry-point\nVersion: 0\n"
        )
        (dist_info / "entry_points.txt").write_text(
            "[pytest11]\ntxmail_sandbox = txmail_sandbox.pytest_plugin\n"
        )
    else:
        # No entry point at all, not even the installed distribution's.
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    project = tmp_path / "project"
    project.mkdir()
    plugins = '"txmail_sandbox.pytest_plugin"' if conftest else ""
    (project / "conftest.py").write_text(
        f"import pytest\npytest_plugins = [{plugins}]\n\n"
        "@pytest.fixture(scope='session')\n"
        "def txmail_sandbox_api_keys():\n    return {'custom-key'}\n"
    )
    (project / "test_plugin.py").write_text(PLUGIN_TEST)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), str(site)])
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:django"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
