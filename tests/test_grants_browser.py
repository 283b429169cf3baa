"""Connected mailboxes in a real browser (Playwright driving Debian's chromium).

A logged-in user clicks Connect, consents at the sandbox's Hosted OAuth
page and lands back with a valid Grant; mail goes through it. The grant
expires (the sandbox's "expire this grant" control, whose signed webhook
reaches the live server): a new send raises ``GrantUnavailable`` and a
message queued before the expiry is held. The user connects again and the
held message goes out, once.

Needs ``apt-get install chromium`` (see ``tests/browser.py``).
"""

from __future__ import annotations

import io
import re

import pytest
import requests
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from playwright.sync_api import Page, expect

from django_txmail.exceptions import GrantUnavailable
from django_txmail.models import Grant, Message
from tests.grant_flow import SECRET, use_sandbox
from txmail_sandbox import Fault, WebhookOptions

from .browser import USERNAME, admin_browser, log_in, shot

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.e2e,
    pytest.mark.urls("tests.grant_urls"),
]

ANN = "ann@mail.example"
TIMEOUT = 15


@pytest.fixture
def app(txmail_sandbox, live_server, settings):
    use_sandbox(settings, txmail_sandbox)
    txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.0, retry_delay=0.1))
    txmail_sandbox.set_webhook("nylas", f"{live_server.url}/txmail/webhooks/nylas/", SECRET)
    yield txmail_sandbox
    txmail_sandbox.clear_webhooks()


@pytest.fixture
def page(app, live_server, monkeypatch):
    with admin_browser(live_server, monkeypatch) as page:
        yield page


def consent_at_the_sandbox(page: Page, sandbox_url: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(sandbox_url) + "/v3/connect/auth"))
    page.fill("#email", ANN)
    page.click("#allow")
    expect(page).to_have_url(re.compile(r"/txmail/grants/$"))


def grant_sends(sandbox) -> list[str]:
    return [m.payload["subject"] for m in sandbox.messages if m.route == "grant"]


def worker_pass() -> None:
    call_command("txmail_worker", "--once", stdout=io.StringIO())


def test_connect_send_expire_hold_reconnect_and_the_held_mail_goes_once(page: Page, app):
    log_in(page, "/txmail/grants/")
    page.click("#connect")
    consent_at_the_sandbox(page, app.url)
    row = page.locator(f'tr.grant[data-email="{ANN}"]')
    expect(row).to_have_attribute("data-status", "valid")
    shot(page, "grants-connected")
    app.flush_webhooks(TIMEOUT)  # grant.created, so it cannot arrive after the expiry
    grant = Grant.objects.get(email=ANN)
    assert grant.user.username == USERNAME and grant.status == "valid"

    mail.send_mail("Through my mailbox", "Hello", ANN, ["bob@x.example"])
    assert grant_sends(app) == ["Through my mailbox"]

    # A message that is waiting for a retry when the grant expires.
    app.inject(Fault(status=503, provider="nylas", route="grant"))
    mail.send_mail("Queued before expiry", "Hello", ANN, ["bob@x.example"])
    held = Message.objects.get(subject="Queued before expiry")
    assert held.status == "queued"
    Message.objects.filter(pk=held.pk).update(next_attempt_at=timezone.now())

    expired = requests.post(f"{app.url}/_sandbox/grants/{grant.grant_id}/expire", timeout=5)
    assert expired.status_code == 200
    app.flush_webhooks(TIMEOUT)
    grant.refresh_from_db()
    assert grant.status == "expired"

    with pytest.raises(GrantUnavailable):
        mail.send_mail("After expiry", "Hello", ANN, ["bob@x.example"])
    assert not Message.objects.filter(subject="After expiry").exists()
    worker_pass()
    held.refresh_from_db()
    assert held.status == "queued" and grant_sends(app) == ["Through my mailbox"]

    page.reload()
    expect(row).to_have_attribute("data-status", "expired")
    shot(page, "grants-expired")
    page.click(f'tr.grant[data-email="{ANN}"] a')
    consent_at_the_sandbox(page, app.url)
    expect(row).to_have_attribute("data-status", "valid")
    app.flush_webhooks(TIMEOUT)
    assert Grant.objects.get().grant_id == grant.grant_id  # the same grant, re-authenticated

    worker_pass()
    worker_pass()
    held.refresh_from_db()
    assert held.status == "sent"
    assert grant_sends(app) == ["Through my mailbox", "Queued before expiry"]
