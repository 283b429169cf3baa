"""The admin in a real browser: Playwright driving Debian's chromium against the live server.

A support person logs in, filters the outbox, opens a message, sees its
HTML preview and its delivery timeline, resends it and finds the new
message; the dashboard draws its chart. Screenshots of each step are kept
in ``$TXMAIL_TEST_ARTIFACTS`` (default ``.tmp/artifacts/``).

Needs ``apt-get install chromium`` (see ``tests/browser.py``).
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from playwright.sync_api import Page, expect

from django_txmail.models import Message, Template

from .browser import ARTIFACTS, admin_browser, shot
from .browser import log_in as log_in_to
from .message_rows import event_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def outbox(sandbox, domain):
    """A receipt that was delivered, and a welcome mail, sent through the sandbox."""
    receipt = mail.EmailMultiAlternatives(
        "Your receipt", "Thanks, Ann.", "Shop <noreply@example.com>", ["Ann <ann@x.example>"]
    )
    receipt.attach_alternative(
        '<h1 style="color:#417690">Thanks, <b>Ann</b></h1><p>Order 42</p>'
        '<img src="https://tracker.example/o.gif" alt="tracker"><script>alert(1)</script>',
        "text/html",
    )
    receipt.send()
    mail.send_mail("Welcome", "Hello.", "noreply@example.com", ["bob@x.example"])
    message = Message.objects.get(subject="Your receipt")
    event_row(message, "delivered")
    Message.objects.filter(pk=message.pk).update(status="delivered")
    return message


@pytest.fixture
def page(outbox, live_server, monkeypatch):
    with admin_browser(live_server, monkeypatch) as page:
        yield page


def log_in(page: Page) -> None:
    log_in_to(page, "/admin/django_txmail/message/")
    expect(page.locator("#result_list")).to_be_visible()


def test_support_finds_a_message_sees_it_and_resends_it(page: Page, outbox):
    log_in(page)
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    shot(page, "1-list")

    page.locator("#changelist-filter a", has_text="delivered").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    page.fill("#searchbar", "ann@x.example")
    page.press("#searchbar", "Enter")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".txmail-badge")).to_have_text("delivered")
    shot(page, "2-filtered")

    rows.first.locator("a", has_text="Your receipt").click()
    frame = page.locator("iframe.txmail-preview")
    expect(frame).to_have_attribute("sandbox", "")
    preview = page.frame_locator("iframe.txmail-preview")
    expect(preview.locator("h1")).to_have_text("Thanks, Ann")
    expect(preview.locator("script")).to_have_count(0)
    expect(page.get_by_text("1 remote image(s) not loaded")).to_be_visible()
    timeline = page.locator("#events-group")
    expect(timeline).to_contain_text("delivery events (timeline)", ignore_case=True)
    expect(timeline.locator("td.field-type")).to_have_text(["delivered"])
    shot(page, "3-message")
    frame.screenshot(path=str(ARTIFACTS / "admin-3-preview.png"))

    page.get_by_role("link", name="Resend…").click()
    expect(page.get_by_text("This sends 1 message again")).to_be_visible()
    shot(page, "4-confirm-resend")
    page.get_by_role("button", name="Yes, resend").click()
    expect(page.locator(".messagelist .success")).to_contain_text("Resent as")
    copy = Message.objects.get(resent_from=outbox)
    assert copy.status == "sent"
    expect(page).to_have_url(re.compile(f"/admin/django_txmail/message/{copy.pk}/change/"))
    expect(page.locator(".field-resent_from a")).to_have_attribute(
        "href", re.compile(str(outbox.pk))
    )
    shot(page, "5-resent")

    page.goto("/admin/django_txmail/message/?q=ann%40x.example")
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    expect(page.locator("#result_list tbody tr").first.locator(".txmail-badge")).to_have_text(
        "sent"
    )


def test_the_dashboard_draws_its_chart(page: Page, outbox):
    log_in(page)
    page.get_by_role("link", name="Dashboard").click()
    chart = page.locator("svg.txmail-chart")
    expect(chart).to_be_visible()
    # sent, delivered, bounced, complained, suppressed
    expect(chart.locator("polyline")).to_have_count(5)
    expect(chart.locator("[data-series=sent] circle title").last).to_have_text(
        re.compile(r": 2 sent$")
    )
    expect(chart.locator("[data-series=delivered] circle title").last).to_have_text(
        re.compile(r": 1 delivered$")
    )
    box = chart.bounding_box()
    assert box and box["width"] > 500 and box["height"] > 200
    expect(page.locator("#txmail-domains")).to_contain_text("example.com")
    shot(page, "6-dashboard")


@pytest.fixture
def tracker():
    """An HTTP server standing for a remote host; records every path asked of it."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


def test_the_template_preview_loads_nothing_from_the_network(page: Page, tracker):
    origin, hits = tracker
    template = Template.objects.create(
        slug="tracked",
        name="Tracked",
        subject="Hello",
        html=(
            f'<link rel="stylesheet" href="{origin}/style.css">'
            f"<style>h1 {{ background: url({origin}/background.png) }}</style>"
            f'<h1>Hello {{{{ name }}}}</h1><img src="{origin}/pixel.gif" alt="pixel">'
            f'<p style="background-image: url({origin}/inline.png)">Order 42</p>'
        ),
        sample_vars={"name": "Ann"},
    )
    log_in(page)
    page.goto(f"/admin/django_txmail/template/{template.pk}/preview/", wait_until="load")
    frame = page.locator("#content-main iframe")
    expect(frame.content_frame.locator("h1")).to_have_text("Hello Ann")
    # The page's load event waits for its frames and everything they load.
    assert hits == []
    expect(frame).to_have_attribute("sandbox", "")
    srcdoc = frame.get_attribute("srcdoc") or ""
    assert "Content-Security-Policy" in srcdoc and "default-src 'none'" in srcdoc
    expect(page.get_by_text("1 remote image(s) not loaded")).to_be_visible()
    shot(page, "7-template-preview")
