"""Sending domains in the admin: status badges, "Check DNS now" (POST, CSRF, permission)
and the record table, against the dnsmasq zones."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from django_txmail.models import SendingDomain

CHANGELIST = "admin:django_txmail_sendingdomain_changelist"


@pytest.fixture(autouse=True)
def mailtrap_account(settings, dns_server):
    settings.TXMAIL = {
        "PROVIDERS": {
            "mailtrap": {
                "ADAPTER": "mailtrap",
                "API_TOKEN": "mailtrap-token",
                "API_URI": "https://send.api.mailtrap.io",
            }
        },
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1,
    }


@pytest.fixture
def domains(db):
    return [
        SendingDomain.objects.create(name=name, provider="mailtrap")
        for name in ("good.zone.test", "two-spf.zone.test")
    ]


def staff(*permissions: str) -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    for codename in permissions:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def csrf_post(client: Client, url: str, data: dict | None = None):
    """A POST the way a browser sends it: with the CSRF token of a page it loaded."""
    page = client.get(reverse(CHANGELIST))
    token = (
        page.cookies["csrftoken"].value
        if "csrftoken" in page.cookies
        else client.cookies["csrftoken"].value
    )
    return client.post(url, {**(data or {}), "csrfmiddlewaretoken": token}, follow=True)


def test_the_list_shows_each_domain_s_status_as_a_badge(admin_client, domains):
    domains[0].status = "verified"
    domains[0].save()
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert 'class="txmail-badge" style="background:#2e7d32' in page
    assert ">verified</span>" in page
    assert ">pending</span>" in page


def test_check_dns_now_runs_the_check_and_says_what_to_fix(domains):
    client = staff("view_sendingdomain", "change_sendingdomain", "verify_sendingdomain")
    response = csrf_post(
        client,
        reverse(CHANGELIST),
        {"action": "verify_now", "_selected_action": [d.pk for d in domains]},
    )
    text = response.content.decode()
    assert "DNS of good.zone.test: every required record passes." in text
    assert "DNS of two-spf.zone.test: 1 record(s) to fix or recheck." in text
    assert "2 SPF records at two-spf.zone.test" in text
    statuses = dict(SendingDomain.objects.values_list("name", "status"))
    assert statuses == {"good.zone.test": "verified", "two-spf.zone.test": "failed"}


def test_check_dns_now_needs_the_permission(domains):
    client = staff("view_sendingdomain", "change_sendingdomain")
    listing = client.get(reverse(CHANGELIST)).content.decode()
    assert "verify_now" not in listing
    csrf_post(
        client, reverse(CHANGELIST), {"action": "verify_now", "_selected_action": [domains[0].pk]}
    )
    button = reverse("admin:django_txmail_sendingdomain_verify", args=[domains[0].pk])
    assert csrf_post(client, button).status_code == 403
    assert SendingDomain.objects.get(pk=domains[0].pk).last_checked is None


def test_check_dns_now_refuses_a_post_without_the_csrf_token(domains):
    client = staff("view_sendingdomain", "change_sendingdomain", "verify_sendingdomain")
    button = reverse("admin:django_txmail_sendingdomain_verify", args=[domains[0].pk])
    assert client.post(button).status_code == 403
    assert client.get(button).status_code == 405
    assert SendingDomain.objects.get(pk=domains[0].pk).last_checked is None


def test_the_change_page_button_checks_and_shows_the_record_table(domains):
    client = staff("view_sendingdomain", "change_sendingdomain", "verify_sendingdomain")
    change = reverse("admin:django_txmail_sendingdomain_change", args=[domains[1].pk])
    before = client.get(change).content.decode()
    assert "Not checked yet" in before
    assert "Check DNS now</button>" in before
    button = reverse("admin:django_txmail_sendingdomain_verify", args=[domains[1].pk])
    page = csrf_post(client, button)
    assert page.redirect_chain[-1][0] == change
    text = page.content.decode()
    assert 'class="txmail-record-failed"' in text
    assert "<strong>Fix:</strong> Merge them into one TXT record" in text
    assert "<code>rwmt1._domainkey.two-spf.zone.test</code>" in text
    assert 'class="txmail-record-ok"' in text
    assert "Policy p=reject." in text


def test_the_change_page_hides_the_button_without_the_permission(domains):
    client = staff("view_sendingdomain", "change_sendingdomain")
    change = reverse("admin:django_txmail_sendingdomain_change", args=[domains[0].pk])
    assert "Check DNS now</button>" not in client.get(change).content.decode()


def test_the_change_page_button_also_needs_the_view_permission(domains):
    # Acting on a domain means seeing it first, as with every other admin action.
    client = staff("verify_sendingdomain")
    client.get(reverse("admin:index"))  # a page with a form: sets the CSRF cookie
    button = reverse("admin:django_txmail_sendingdomain_verify", args=[domains[0].pk])
    response = client.post(button, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert response.status_code == 403
    assert SendingDomain.objects.get(pk=domains[0].pk).last_checked is None


def test_check_dns_now_on_a_nylas_domain_without_a_service_account_names_the_problem(
    db, settings, dns_server
):
    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": {"ADAPTER": "nylas", "API_KEY": "key", "API_URI": "http://127.0.0.1:9"}
        },
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 1,
    }
    domain = SendingDomain.objects.create(name="absent.zone.test", provider="nylas")
    client = staff("view_sendingdomain", "change_sendingdomain", "verify_sendingdomain")
    button = reverse("admin:django_txmail_sendingdomain_verify", args=[domain.pk])
    text = csrf_post(client, button).content.decode()
    assert "0 record(s)" not in text
    assert "DNS of absent.zone.test: 2 problem(s) with the domain." in text
    assert "has no SERVICE_ACCOUNT_KEY_ID and SERVICE_ACCOUNT_PRIVATE_KEY" in text
    domain.refresh_from_db()
    assert domain.status == "failed"  # the name does not exist (docs/domains.md)
