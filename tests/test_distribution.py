"""What each distribution of this repository ships: django-txmail without the
provider emulator, django-txmail-sandbox with it and with its pytest plugin.

Both wheels are built as a release would build them, offline (hatchling from
the ``test`` extra, no build isolation), in about a second.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
import tarfile
import zipfile
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SANDBOX = REPO / "sandbox"


class Wheel:
    def __init__(self, path: Path) -> None:
        with zipfile.ZipFile(path) as archive:
            self.files = {name: archive.read(name) for name in archive.namelist()}

    def dist_info(self, name: str) -> bytes | None:
        found = [path for path in self.files if path.endswith(f".dist-info/{name}")]
        return self.files[found[0]] if found else None

    @property
    def metadata(self) -> Message:
        return message_from_bytes(self.dist_info("METADATA"))

    def entry_points(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser()
        parser.read_string((self.dist_info("entry_points.txt") or b"").decode())
        return parser


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> dict[str, Wheel]:
    out = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--wheel-dir", str(out), str(REPO), str(SANDBOX)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    built = {path.name.split("-")[0]: Wheel(path) for path in out.glob("*.whl")}
    assert sorted(built) == ["django_txmail", "django_txmail_sandbox"]
    return built


def sandbox_module_names() -> set[str]:
    """File names of the emulator's modules that the runtime package has no
    module of the same name for (``routing.py`` is in both, for example)."""
    emulator = {path.name for path in (SANDBOX / "txmail_sandbox").glob("*.py")}
    runtime = {path.name for path in (REPO / "django_txmail").rglob("*.py")}
    return emulator - runtime


def test_the_runtime_wheel_holds_no_part_of_the_sandbox(wheels):
    files = list(wheels["django_txmail"].files)
    assert [f for f in files if f.startswith("txmail_sandbox/")] == []
    assert [f for f in files if "sandbox/" in f] == []
    emulator_modules = sandbox_module_names()
    assert {"server.py", "httpd.py", "fault_plan.py", "pytest_plugin.py"} <= emulator_modules
    assert [f for f in files if f.rsplit("/", 1)[-1] in emulator_modules] == []
    assert "django_txmail/backends.py" in files


def test_the_runtime_wheel_registers_no_pytest_plugin(wheels):
    assert not wheels["django_txmail"].entry_points().has_section("pytest11")


def test_the_runtime_wheel_offers_the_sandbox_as_an_extra(wheels):
    metadata = wheels["django_txmail"].metadata
    assert "sandbox" in metadata.get_all("Provides-Extra")
    assert "django-txmail-sandbox; extra == 'sandbox'" in metadata.get_all("Requires-Dist")
    required = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in required if r.startswith("django-txmail-sandbox")]


def test_the_sandbox_wheel_holds_the_emulator_and_its_pytest_plugin(wheels):
    sandbox = wheels["django_txmail_sandbox"]
    assert {"txmail_sandbox/server.py", "txmail_sandbox/py.typed"} <= set(sandbox.files)
    assert not [f for f in sandbox.files if f.startswith("django_txmail/")]
    assert dict(sandbox.entry_points()["pytest11"]) == {
        "txmail_sandbox": "txmail_sandbox.pytest_plugin"
    }
    metadata = sandbox.metadata
    assert (metadata["Name"], metadata["Version"]) == ("django-txmail-sandbox", "0.1.0")
    assert not [r for r in metadata.get_all("Requires-Dist") if r.lower().startswith("django")]


@pytest.mark.parametrize("name", ["django_txmail", "django_txmail_sandbox"])
def test_each_wheel_carries_the_mit_license(wheels, name):
    wheel = wheels[name]
    assert wheel.metadata["License-Expression"] == "MIT"
    assert wheel.metadata["License-File"] == "LICENSE"
    assert wheel.dist_info("licenses/LICENSE").startswith(b"MIT License")


def sdist_files(project: Path, out: Path) -> set[str]:
    """The files of ``project``'s sdist, built as a release builds it (offline)."""
    code = "import sys; from hatchling.build import build_sdist; print(build_sdist(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        cwd=project,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    with tarfile.open(out / done.stdout.strip().splitlines()[-1]) as archive:
        return {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}


def test_the_sdists_carry_the_license_and_what_their_tests_need(tmp_path):
    runtime = sdist_files(REPO, tmp_path)
    assert "LICENSE" in runtime
    # tests/test_example_project.py runs the example project.
    assert "tests/test_example_project.py" in runtime
    assert {"example_project/manage.py", "example_project/example_project/settings.py"} <= runtime
    sandbox = sdist_files(SANDBOX, tmp_path)
    assert {"LICENSE", "txmail_sandbox/server.py"} <= sandbox


#: A Markdown link whose target is not a URL: a repository path, or a section.
RELATIVE_LINK = re.compile(r"\]\((?![a-zA-Z][a-zA-Z0-9+.-]*:)([^)\s]+)\)")


def test_the_package_index_readme_has_no_link_to_a_repository_file(wheels, tmp_path):
    # The project publishes no URL to resolve them against: each is named as the file the
    # sdist ships instead. Links to the README's own sections stay.
    description = wheels["django_txmail"].metadata.get_payload()
    assert wheels["django_txmail"].metadata["Description-Content-Type"] == "text/markdown"
    assert [t for t in RELATIVE_LINK.findall(description) if not t.startswith("#")] == []
    in_repository = {
        target.split("#")[0]
        for target in RELATIVE_LINK.findall((REPO / "README.md").read_text())
        if not target.startswith("#")
    }
    assert {"docs/grants.md", "docs/flow-control.md", "sandbox/README.md"} <= in_repository
    named = set(re.findall(r"`([\w/.-]+)` in the source distribution", description))
    assert named == in_repository
    assert named <= sdist_files(REPO, tmp_path)
