"""Acting over the API, with the admin's rules and permissions: resend, retry and
cancel a message; the suppression list; rendering a template; checking a domain's DNS."""

from __future__ import annotations

import pytest
from django.urls import reverse

from django_txmail.models import Message, SendingDomain, Suppression, Template
from django_txmail.suppressions import is_suppressed, suppress
from tests.api_helpers import post_json, user_with
from tests.message_rows import message_row

pytestmark = pytest.mark.django_db


def action(message: Message, name: str) -> str:
    return reverse(f"txmail:message-{name}", args=[message.pk])


# --- resend, retry, cancel --------------------------------------------------------------------


def test_resend_records_a_new_message_and_sends_it(api, sandbox, domain):
    original = message_row()
    response = api.post(action(original, "resend"))
    assert response.status_code == 201, response.json()
    copy = Message.objects.get(pk=response.json()["id"])
    assert copy.resent_from_id == original.pk
    assert response.json()["resent_from"] == str(original.pk)
    assert response["Location"].endswith(reverse("txmail:message-detail", args=[copy.pk]))
    assert len(sandbox.requests) == 1


def test_resending_twice_is_a_409_naming_the_earlier_copy(api, sandbox, domain):
    original = message_row()
    first = api.post(action(original, "resend")).json()["id"]
    response = api.post(action(original, "resend"))
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_resend"
    assert first in response.json()["message"]


def test_retry_sends_a_failed_message_again_now(api, sandbox, domain):
    sent = post_json(
        api,
        reverse("txmail:message-list"),
        {"from": "noreply@example.com", "to": ["ann@example.org"], "subject": "Hi", "text": "."},
    ).json()
    Message.objects.filter(pk=sent["id"]).update(status="failed", failure_origin="ours")
    response = api.post(reverse("txmail:message-retry", args=[sent["id"]]))
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "sent"
    assert len(sandbox.requests) == 2


def test_retrying_a_delivered_message_is_a_409(api):
    response = api.post(action(message_row(status="delivered"), "retry"))
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_retry"


def test_cancel_stops_a_queued_message(api):
    message = message_row(status="queued", sent_at=None, provider_message_id="")
    response = api.post(action(message, "cancel"))
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"


def test_cancelling_a_sent_message_is_a_409(api):
    response = api.post(action(message_row(), "cancel"))
    assert response.status_code == 409
    assert response.json()["code"] == "cannot_cancel"


@pytest.mark.parametrize(
    ("name", "needs"),
    [("resend", "resend_message"), ("retry", "retry_message"), ("cancel", "cancel_message")],
)
def test_each_action_needs_its_own_permission(client, name, needs):
    message = message_row(status="queued", sent_at=None)
    others = {"resend_message", "retry_message", "cancel_message", "view_message"} - {needs}
    client.force_login(user_with(*others))
    response = client.post(action(message, name))
    assert response.status_code == 403
    message.refresh_from_db()
    assert message.status == "queued" and not message.resends.exists()


def test_an_action_on_an_unknown_message_is_a_404(api):
    url = reverse("txmail:message-cancel", args=["00000000-0000-0000-0000-000000000000"])
    assert api.post(url).status_code == 404


# --- suppressions ------------------------------------------------------------------------------

SUPPRESSIONS = reverse("txmail:suppression-list")


def test_suppressions_are_listed(api):
    suppress("ann@example.org", reason="hard_bounce")
    body = api.get(SUPPRESSIONS).json()
    assert [(s["address"], s["reason"]) for s in body["results"]] == [
        ("ann@example.org", "hard_bounce")
    ]


def test_adding_a_suppression_goes_through_suppress(api):
    response = post_json(api, SUPPRESSIONS, {"address": "Ann@Example.ORG", "note": "asked"})
    assert response.status_code == 201, response.json()
    assert response.json()["reason"] == "manual" and response.json()["stream"] == ""
    assert is_suppressed("ann@example.org", "transactional")
    again = post_json(api, SUPPRESSIONS, {"address": "ann@example.org"})
    assert again.status_code == 200 and Suppression.objects.count() == 1


def test_a_suppression_for_an_unknown_stream_is_a_400(api):
    response = post_json(api, SUPPRESSIONS, {"address": "ann@example.org", "stream": "nope"})
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_stream"
    assert not Suppression.objects.exists()


def test_removing_a_suppression_lifts_it(api):
    entry, _ = suppress("ann@example.org")
    response = api.delete(reverse("txmail:suppression-detail", args=[entry.pk]))
    assert response.status_code == 204
    assert not is_suppressed("ann@example.org")


@pytest.mark.parametrize(
    ("method", "needs"), [("get", "view"), ("post", "add"), ("delete", "delete")]
)
def test_the_suppression_list_asks_the_admins_permissions(client, method, needs):
    entry, _ = suppress("ann@example.org")
    client.force_login(
        user_with(
            *{f"{p}_suppression" for p in ("view", "add", "delete")} - {f"{needs}_suppression"}
        )
    )
    url = (
        reverse("txmail:suppression-detail", args=[entry.pk])
        if method == "delete"
        else SUPPRESSIONS
    )
    if method == "post":
        response = post_json(client, url, {"address": "bob@example.org"})
    else:
        response = getattr(client, method)(url)
    assert response.status_code == 403
    assert list(Suppression.objects.values_list("address", flat=True)) == ["ann@example.org"]


# --- templates -----------------------------------------------------------------------------------


@pytest.fixture
def welcome(db):
    return Template.objects.create(
        slug="welcome", name="Welcome", subject="Hi {{ name }}", html="<p>Hello {{ name }}</p>"
    )


def render_url(slug: str) -> str:
    return reverse("txmail:template-render", args=[slug])


def test_templates_are_listed(api, welcome):
    assert [t["slug"] for t in api.get(reverse("txmail:template-list")).json()["results"]] == [
        "welcome"
    ]


def test_a_template_renders_with_the_given_variables(api, welcome):
    response = post_json(api, render_url("welcome"), {"template_vars": {"name": "Ann"}})
    assert response.status_code == 200, response.json()
    assert response.json()["subject"] == "Hi Ann"
    assert "Hello Ann" in response.json()["html"]


def test_rendering_is_strict_about_missing_variables(api, welcome):
    welcome.strict = False
    welcome.save()
    response = post_json(api, render_url("welcome"), {"template_vars": {}})
    assert response.status_code == 422
    assert response.json()["code"] == "template_error"
    assert "name" in response.json()["message"]


def test_rendering_keeps_to_the_render_budget(api, welcome, settings):
    big = Template.objects.create(
        slug="big", name="Big", subject="x", html="{% for i in items %}{{ i }}{% endfor %}"
    )
    settings.TXMAIL = {**getattr(settings, "TXMAIL", {}), "TEMPLATE_MAX_SIZE": 1000}
    response = post_json(api, render_url(big.slug), {"template_vars": {"items": ["x" * 100] * 50}})
    assert response.status_code == 422
    assert response.json()["code"] == "template_error"


def test_an_unknown_template_is_a_404(api):
    assert post_json(api, render_url("nope"), {}).status_code == 404


def test_rendering_needs_the_view_permission_of_templates(client, welcome):
    client.force_login(user_with("view_message"))
    assert post_json(client, render_url("welcome"), {}).status_code == 403


# --- domains -------------------------------------------------------------------------------------


def test_domains_are_listed(api):
    SendingDomain.objects.create(name="example.com", provider="nylas")
    body = api.get(reverse("txmail:domain-list")).json()
    assert [(d["name"], d["status"]) for d in body["results"]] == [("example.com", "pending")]


def test_verify_answers_the_dns_checks_result(api, dns_server, settings):
    settings.TXMAIL = {
        "PROVIDERS": {
            "mailtrap": {"ADAPTER": "mailtrap", "API_TOKEN": "t", "API_URI": "https://x.test"}
        },
        "DNS_NAMESERVERS": [dns_server.nameserver],
        "DNS_TIMEOUT": 0.5,
    }
    SendingDomain.objects.create(name="good.zone.test", provider="mailtrap")
    response = api.post(reverse("txmail:domain-verify", args=["good.zone.test"]))
    assert response.status_code == 200, response.json()
    [report] = response.json()
    assert (report["domain"], report["status"], report["passed"]) == (
        "good.zone.test",
        "verified",
        True,
    )
    assert {r["status"] for r in report["records"]} == {"ok"}
    assert SendingDomain.objects.get().status == "verified"


def test_verifying_an_unknown_domain_is_a_404(api):
    assert api.post(reverse("txmail:domain-verify", args=["nope.example"])).status_code == 404


def test_verify_needs_its_permission(client):
    SendingDomain.objects.create(name="example.com", provider="nylas")
    client.force_login(user_with("view_sendingdomain", "change_sendingdomain"))
    assert client.post(reverse("txmail:domain-verify", args=["example.com"])).status_code == 403
