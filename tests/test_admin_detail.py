"""One message in the admin: the sandboxed HTML preview, the text, attachments, the timeline."""

from __future__ import annotations

import html
import re

import pytest
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_txmail.admin.preview import sanitise
from django_txmail.models import Message, MessageAttachment

from .message_rows import event_row, message_row

pytestmark = pytest.mark.django_db

HOSTILE_HTML = (
    "<html><head><style>p { color: #123456 }</style></head><body>"
    '<p onclick="steal()">Hello <b>Ann</b></p><script>alert(document.cookie)</script>'
    '<img src="https://tracker.example/open.gif" alt="logo">'
    '<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">'
    '<a href="javascript:steal()">bad link</a> <a href="https://shop.example/o/42">order</a>'
    '<iframe src="https://evil.example"></iframe><form action="https://evil.example"></form>'
    "</body></html>"
)


def change_url(message) -> str:
    return reverse("admin:django_txmail_message_change", args=[message.pk])


def srcdoc(page: str) -> str:
    match = re.search(r'<iframe class="txmail-preview"([^>]*)srcdoc="([^"]*)"', page)
    assert match, "no preview frame"
    return html.unescape(match[2])


def test_html_part_is_shown_in_a_sandboxed_frame_without_scripts(admin_client):
    message = message_row(html_body=HOSTILE_HTML)
    page = admin_client.get(change_url(message)).text
    frame = re.search(r'<iframe class="txmail-preview"[^>]*>', page)[0]
    assert 'sandbox=""' in frame and "allow-scripts" not in frame
    document = srcdoc(page)
    assert "<b>Ann</b>" in document and "color: #123456" in document
    for gone in ("<script", "onclick", "javascript:", "<iframe", "<form", "tracker.example"):
        assert gone not in document, gone
    assert 'href="https://shop.example/o/42"' in document
    assert "default-src 'none'" in document  # nothing in the frame may load from the network


def test_remote_images_are_blocked_and_counted_data_images_kept():
    preview = sanitise(HOSTILE_HTML)
    assert preview.remote_images == 1
    assert 'alt="logo"' in preview.html and "data:image/png" in preview.html


def test_blocked_images_are_announced_above_the_preview(admin_client):
    message = message_row(html_body=HOSTILE_HTML)
    page = admin_client.get(change_url(message)).text
    assert "1 remote image(s) not loaded" in page


def test_text_part_and_addresses_are_shown_escaped(admin_client):
    message = message_row(text_body="Line 1\n<b>not bold</b>", subject="Receipt <42>")
    page = admin_client.get(change_url(message)).text
    assert '<pre class="txmail-text">Line 1\n&lt;b&gt;not bold&lt;/b&gt;</pre>' in page


@pytest.fixture
def with_attachment(sandbox, domain):
    msg = mail.EmailMessage("Invoice", "Attached.", "noreply@example.com", ["ann@x.example"])
    msg.attach("../../etc/invoice 42.pdf", b"%PDF-1.4 invoice", "application/pdf")
    msg.send()
    # Sending refuses a line break in a filename; a row stored before that still has one.
    MessageAttachment.objects.update(filename="../../etc/in\nvoice 42.pdf")
    return Message.objects.get()


def attachment_url(message, position=0) -> str:
    return reverse("admin:django_txmail_message_attachment", args=[message.pk, position])


def test_attachments_download_from_storage_with_a_safe_name(admin_client, with_attachment):
    page = admin_client.get(change_url(with_attachment)).text
    assert attachment_url(with_attachment) in page
    response = admin_client.get(attachment_url(with_attachment))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4 invoice"
    assert response["Content-Disposition"] == 'attachment; filename="invoice 42.pdf"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_attachment_downloads_need_permission_to_view_messages(client, with_attachment):
    url = attachment_url(with_attachment)
    assert client.get(url).status_code == 302  # to the login page
    staff = User.objects.create_user("support", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(url).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    assert client.get(url).status_code == 200


def test_a_missing_attachment_file_is_a_clear_404(admin_client, with_attachment):
    default_storage.delete(with_attachment.attachments.get().storage_name)
    response = admin_client.get(attachment_url(with_attachment))
    assert response.status_code == 404
    assert admin_client.get(attachment_url(with_attachment, 7)).status_code == 404


def test_the_detail_costs_the_same_queries_for_1_or_20_events(admin_client):
    message = message_row()
    event_row(message, "delivered")
    with CaptureQueriesContext(connection) as few:
        admin_client.get(change_url(message))
    for _ in range(19):
        event_row(message, "opened")
    with CaptureQueriesContext(connection) as many:
        page = admin_client.get(change_url(message)).text
    assert len(many) == len(few)
    assert page.count("opened") >= 19


def test_a_resent_message_links_both_ways(admin_client):
    original = message_row(subject="first")
    copy = message_row(subject="again", resent_from=original)
    assert change_url(copy) in admin_client.get(change_url(original)).text
    assert change_url(original) in admin_client.get(change_url(copy)).text


def test_buttons_match_the_status_and_the_permissions(client):
    failed = message_row(status="failed")
    queued = message_row(status="scheduled")
    staff = User.objects.create_user("support", password="pw", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_message"))
    client.force_login(staff)
    page = client.get(change_url(failed)).text
    assert "Resend" not in page and "Retry now" not in page
    for codename in ("resend_message", "retry_message", "cancel_message"):
        staff.user_permissions.add(Permission.objects.get(codename=codename))
    staff = User.objects.get(pk=staff.pk)
    client.force_login(staff)
    page = client.get(change_url(failed)).text
    assert "Resend…" in page and "Retry now" in page and "Cancel sending" not in page
    page = client.get(change_url(queued)).text
    assert "Cancel sending" in page and "Retry now" not in page


def test_a_failure_says_whose_verdict_it_is_and_only_ours_is_retried(admin_client):
    ours = message_row(status="failed", failure_origin="ours")
    reported = message_row(status="failed", failure_origin="provider")
    page = admin_client.get(change_url(ours)).text
    assert "our verdict" in page and "Retry now" in page
    page = admin_client.get(change_url(reported)).text
    assert "the provider&#x27;s report" in page and "Retry now" not in page
