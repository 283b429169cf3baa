"""A real browser on the admin: Playwright driving Debian's chromium against the live server.

Needs ``apt-get install chromium`` (``.ci/run`` installs it). Without it the
browser tests fail: a skipped browser test would hide a broken admin.
Screenshots go to ``$TXMAIL_TEST_ARTIFACTS`` (default ``.tmp/artifacts/``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.contrib.auth.models import User
from django.db import connections
from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("TXMAIL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get(
        "TXMAIL_TEST_ARTIFACTS", Path(__file__).resolve().parent.parent / ".tmp/artifacts"
    )
)
USERNAME, PASSWORD = "support", "correct horse"


@contextmanager
def admin_browser(live_server, monkeypatch) -> Iterator[Page]:
    """A page of a fresh browser, with a superuser to log in as (``log_in``)."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes between browser steps are plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    User.objects.create_superuser(USERNAME, "support@example.com", PASSWORD)
    assert os.path.exists(CHROMIUM), (
        f"No chromium at {CHROMIUM}: install Debian's with `apt-get install chromium` "
        "(or point TXMAIL_CHROMIUM at one); the browser tests need it."
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        page = context.new_page()
        try:
            yield page
        finally:
            browser.close()
            # ORM calls made while Playwright's sync API runs leave a connection that
            # pytest-django's teardown does not close; close it here, or PostgreSQL
            # cannot drop the test database at the end of the session.
            connections.close_all()


def log_in(page: Page, path: str) -> None:
    """Log in as the superuser and land on ``path``."""
    page.goto(f"/admin/login/?next={path}")
    page.fill("#id_username", USERNAME)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page).to_have_url(re.compile(re.escape(path) + "$"))


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"admin-{name}.png"), full_page=True)
