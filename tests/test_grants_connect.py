"""Connecting a mailbox through the sandbox's Hosted OAuth, and what can go wrong.

The app's views run in Django's test client; the user's browser steps at
the provider (the consent page) are real HTTP requests to the sandbox.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.checks import run_checks
from django.test import Client

from django_txmail.connect import SESSION_KEY
from django_txmail.models import Grant
from tests.conftest import txmail_settings
from tests.grant_flow import CALLBACK, CLIENT_ID, consent, start, use_sandbox, user_client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.grant_urls")]

CONNECT = "/txmail/grants/connect/"


@pytest.fixture
def app(txmail_sandbox, settings):
    use_sandbox(settings, txmail_sandbox)
    return txmail_sandbox


def test_connecting_creates_a_valid_grant_for_the_user_and_returns_to_next(app):
    user, client = user_client()
    auth_url = start(client, "?next=/after/&login_hint=ann@mail.example&provider=google")
    query = parse_qs(urlsplit(auth_url).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["provider"] == ["google"] and query["login_hint"] == ["ann@mail.example"]
    assert "sandbox-nylas-key" not in auth_url  # the API key never goes to the browser
    response = client.get(CALLBACK + consent(auth_url))
    assert response.status_code == 302 and response["Location"] == "/after/"
    grant = Grant.objects.get()
    assert (grant.email, grant.user, grant.status) == ("ann@mail.example", user, "valid")
    assert grant.scopes and grant.connected_at is not None
    exchange = [r for r in app.requests if r.path == "/v3/connect/token"]
    assert len(exchange) == 1 and "Authorization" not in exchange[0].headers


def test_reconnecting_the_same_address_updates_the_same_grant(app):
    user, client = user_client()
    client.get(CALLBACK + consent(start(client)))
    first = Grant.objects.get()
    Grant.objects.filter(pk=first.pk).update(status="expired")
    client.get(CALLBACK + consent(start(client)))
    again = Grant.objects.get()
    assert (again.pk, again.grant_id, again.status) == (first.pk, first.grant_id, "valid")


def test_declining_shows_a_page_and_changes_nothing(app):
    _, client = user_client()
    response = client.get(CALLBACK + consent(start(client), decision="decline"))
    assert response.status_code == 400 and b'data-reason="declined"' in response.content
    assert not Grant.objects.exists()


def test_a_callback_without_or_with_a_forged_state_changes_nothing(app):
    _, client = user_client()
    query = consent(start(client))
    code = parse_qs(query[1:])["code"][0]
    for bad in (f"?code={code}", f"?code={code}&state=forged"):
        response = client.get(CALLBACK + bad)
        assert response.status_code == 400 and b'data-reason="bad_state"' in response.content
    assert not Grant.objects.exists()
    assert not [r for r in app.requests if r.path == "/v3/connect/token"]


def test_a_state_from_another_session_is_refused(app):
    _, ann = user_client("ann")
    _, bob = user_client("bob")
    query = consent(start(ann))
    response = bob.get(CALLBACK + query)
    assert response.status_code == 400 and b'data-reason="bad_state"' in response.content
    assert not Grant.objects.exists()


def test_a_state_is_good_for_one_callback(app):
    _, client = user_client()
    query = consent(start(client))
    assert client.get(CALLBACK + query).status_code == 302
    replay = client.get(CALLBACK + query)
    assert replay.status_code == 400 and b'data-reason="bad_state"' in replay.content
    assert Grant.objects.count() == 1


def test_a_replayed_code_is_refused_by_the_provider_and_changes_nothing(app):
    _, client = user_client()
    query = parse_qs(consent(start(client))[1:])
    assert (
        client.get(f"{CALLBACK}?code={query['code'][0]}&state={query['state'][0]}").status_code
        == 302
    )
    Grant.objects.all().delete()
    # A fresh state of this session, with the code already spent.
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    response = client.get(f"{CALLBACK}?code={query['code'][0]}&state={state}")
    assert response.status_code == 502 and b'data-reason="exchange_failed"' in response.content
    assert not Grant.objects.exists()


def test_pkce_is_checked_by_the_sandbox(app):
    _, client = user_client()
    query = parse_qs(consent(start(client))[1:])
    session = client.session
    session[SESSION_KEY][query["state"][0]]["verifier"] = "not-the-verifier"
    session.save()
    response = client.get(f"{CALLBACK}?code={query['code'][0]}&state={query['state'][0]}")
    assert response.status_code == 502
    assert not Grant.objects.exists()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_next_never_leaves_the_site(app, target):
    _, client = user_client()
    auth_url = start(client, "?next=" + requests.utils.quote(target, safe=""))
    response = client.get(CALLBACK + consent(auth_url))
    assert response.status_code == 302 and response["Location"] == "/txmail/grants/"


def test_connect_needs_a_logged_in_user(app):
    response = Client().get(CONNECT)
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_missing_client_id_is_a_system_check_error_when_the_urls_are_installed(
    txmail_sandbox, settings
):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    assert "txmail.E040" in [m.id for m in run_checks()]
    settings.TXMAIL = txmail_settings(txmail_sandbox.url, account={"CLIENT_ID": CLIENT_ID})
    assert "txmail.E040" not in [m.id for m in run_checks()]


@pytest.mark.urls("tests.urls")
def test_no_check_error_without_the_connect_urls(txmail_sandbox, settings):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    assert "txmail.E040" not in [m.id for m in run_checks()]
