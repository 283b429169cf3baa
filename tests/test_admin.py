"""The admin pages for domains, grants and messages render for staff."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from django_txmail.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_message(sandbox, domain):
    msg = mail.EmailMultiAlternatives(
        "Receipt <42>",
        "Plain",
        "Shop <noreply@example.com>",
        ["Ann <ann@x.example>"],
        cc=["cc@x.example"],
    )
    msg.attach("a.txt", "abc", "text/plain")
    msg.send()
    return Message.objects.get()


def test_message_list_and_detail_show_the_message(admin_client, sent_message):
    listing = admin_client.get(reverse("admin:django_txmail_message_changelist"))
    assert listing.status_code == 200
    assert "Receipt &lt;42&gt;" in listing.text and "ann@x.example" in listing.text
    detail = admin_client.get(reverse("admin:django_txmail_message_change", args=[sent_message.pk]))
    assert detail.status_code == 200
    assert "Ann &lt;ann@x.example&gt;" in detail.text
    assert sent_message.provider_message_id in detail.text and "a.txt" in detail.text


def test_messages_cannot_be_added_or_edited_in_the_admin(admin_client, sent_message):
    add = admin_client.get(reverse("admin:django_txmail_message_add"))
    assert add.status_code == 403
    change = reverse("admin:django_txmail_message_change", args=[sent_message.pk])
    admin_client.post(change, {"subject": "edited"})
    sent_message.refresh_from_db()
    assert sent_message.subject == "Receipt <42>"


def test_message_search_by_recipient_subject_and_provider_id(admin_client, sent_message):
    url = reverse("admin:django_txmail_message_changelist")
    for term in ("Receipt", sent_message.provider_message_id, str(sent_message.pk)):
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200
        assert response.context["cl"].result_count == 1, term


def test_domain_and_grant_admin_pages(admin_client, domain, grant):
    for name in ("sendingdomain", "grant"):
        response = admin_client.get(reverse(f"admin:django_txmail_{name}_changelist"))
        assert response.status_code == 200
    assert (
        "example.com"
        in admin_client.get(
            reverse("admin:django_txmail_sendingdomain_change", args=[domain.pk])
        ).text
    )


def test_message_api_is_for_staff_only(client, admin_client, sent_message):
    url = reverse("txmail:message-detail", args=[sent_message.pk])
    assert client.get(url).status_code in (401, 403)
    body = admin_client.get(url).json()
    assert body["status"] == "sent" and body["attempt_log"][0]["outcome"] == "sent"


def test_message_detail_shows_the_delivery_event_timeline(admin_client, sent_message):
    from django.utils import timezone

    from django_txmail.models import DeliveryEvent

    for kind, reason in (("delivered", ""), ("bounced", "552 mailbox full")):
        DeliveryEvent.objects.create(
            message=sent_message,
            provider="nylas",
            type=kind,
            provider_type=kind,
            provider_event_id=f"e-{kind}",
            recipient="ann@x.example",
            reason=reason,
            occurred_at=timezone.now(),
            raw={},
            ingest_batch="00000000-0000-0000-0000-000000000000",
        )
    detail = admin_client.get(
        reverse("admin:django_txmail_message_change", args=[sent_message.pk])
    ).text
    assert "delivery events (timeline)" in detail.lower()
    assert detail.index("e-delivered") < detail.index("e-bounced")
    assert "552 mailbox full" in detail
    events = admin_client.get(reverse("admin:django_txmail_deliveryevent_changelist"))
    assert events.status_code == 200 and "ann@x.example" in events.text
