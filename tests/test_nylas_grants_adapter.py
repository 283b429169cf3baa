"""The Nylas adapter's Hosted OAuth and grants API: pure translations, no network."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from django_txmail.conf import ProviderAccount
from django_txmail.exceptions import ProviderAPIError, WebhookPayloadError
from django_txmail.providers import ProviderResponse, Route
from django_txmail.providers.nylas.grants import code_challenge
from django_txmail.providers.nylas.send import NylasAdapter
from django_txmail.providers.nylas.webhooks import parse

KEY = "nyk_secret"
ACCOUNT = ProviderAccount(
    "nylas", "x", "https://api.us.nylas.com", {"API_KEY": KEY}, options={"CLIENT_ID": "cid"}
)
GRANT = Route("grant", "nylas", grant_id="g-1")


@pytest.fixture
def adapter():
    return NylasAdapter(ACCOUNT)


def answer(status: int, body: dict) -> ProviderResponse:
    return ProviderResponse(status, {}, json.dumps(body).encode())


def test_the_connect_url_carries_client_state_and_the_pkce_challenge(adapter):
    url = adapter.connect_url(
        redirect_uri="https://app.example/cb/", state="st", code_verifier="ver", login_hint="a@b.c"
    )
    assert url.startswith("https://api.us.nylas.com/v3/connect/auth?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["client_id"] == "cid" and query["state"] == "st"
    assert query["response_type"] == "code" and query["login_hint"] == "a@b.c"
    assert query["code_challenge"] == code_challenge("ver") != "ver"
    assert query["code_challenge_method"] == "S256"
    assert KEY not in url


def test_the_rfc_7636_example_challenge():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert code_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_the_token_exchange_sends_the_api_key_as_client_secret_not_a_header(adapter):
    request = adapter.build_token_exchange(
        code="c", redirect_uri="https://app/cb/", code_verifier="v"
    )
    assert request.method == "POST" and request.url.endswith("/v3/connect/token")
    assert "Authorization" not in request.headers
    body = json.loads(request.body)
    assert body == {
        "client_id": "cid",
        "client_secret": KEY,
        "grant_type": "authorization_code",
        "code": "c",
        "redirect_uri": "https://app/cb/",
        "code_verifier": "v",
    }


def test_a_token_answer_with_and_without_the_email(adapter):
    full = adapter.parse_token_exchange(
        answer(200, {"grant_id": "g", "email": "Ann@X.io", "provider": "google", "scope": "a b"})
    )
    assert (full.grant_id, full.email, full.provider, full.scopes) == (
        "g",
        "ann@x.io",
        "google",
        ("a", "b"),
    )
    bare = adapter.parse_token_exchange(answer(200, {"grant_id": "g"}))
    assert bare.email == ""


def test_a_refused_exchange_is_a_provider_error_without_the_key(adapter):
    with pytest.raises(ProviderAPIError) as raised:
        adapter.parse_token_exchange(
            answer(400, {"error": {"type": "invalid_grant", "message": f"bad code {KEY}"}})
        )
    assert raised.value.status == 400 and KEY not in str(raised.value)


def test_grant_status_from_the_grants_api(adapter):
    valid = adapter.parse_get_grant(
        answer(200, {"data": {"id": "g", "grant_status": "valid", "email": "a@b.c"}}), "g"
    )
    invalid = adapter.parse_get_grant(
        answer(200, {"data": {"id": "g", "grant_status": "invalid"}}), "g"
    )
    gone = adapter.parse_get_grant(answer(404, {"error": {"type": "not_found_error"}}), "g")
    assert (valid.status, invalid.status, gone.status) == ("valid", "expired", "revoked")


def test_revoking_is_a_delete_with_the_api_key(adapter):
    request = adapter.build_revoke_grant("g/1")
    assert request.method == "DELETE" and request.url.endswith("/v3/grants/g%2F1")
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    adapter.parse_revoke_grant(answer(404, {}))  # already gone: fine


@pytest.mark.parametrize(
    ("status", "message", "gone"),
    [
        (401, "The grant g-1 has expired", True),
        (404, "Grant not found", True),
        (401, "Unauthorized: bad API key", False),
        (400, "Bad grant field", False),
    ],
)
def test_a_send_refused_because_the_grant_is_gone_says_so(adapter, status, message, gone):
    with pytest.raises(ProviderAPIError) as raised:
        adapter.parse_send(answer(status, {"error": {"type": "x", "message": message}}), GRANT)
    assert raised.value.grant_gone is gone


def test_a_domain_send_is_never_about_a_grant(adapter):
    with pytest.raises(ProviderAPIError) as raised:
        adapter.parse_send(
            answer(404, {"error": {"message": "grant"}}), Route("domain", "nylas", domain="x.io")
        )
    assert raised.value.grant_gone is False


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("grant.created", "valid"),
        ("grant.updated", "valid"),
        ("grant.expired", "expired"),
        ("grant.deleted", "revoked"),
    ],
)
def test_grant_webhooks_name_the_grant_and_its_status(kind, status):
    body = {
        "specversion": "1.0",
        "type": kind,
        "id": "e1",
        "time": 1700000000,
        "data": {"object": {"grant_id": "g-1", "email": "a@b.c", "provider": "google"}},
    }
    [event] = parse(json.dumps(body).encode())
    assert (event.grant_id, event.grant_status, event.type) == ("g-1", status, "unknown")


def test_a_grant_webhook_without_a_grant_id_is_malformed():
    body = {"type": "grant.expired", "id": "e1", "time": 1, "data": {"object": {}}}
    with pytest.raises(WebhookPayloadError, match="grant_id"):
        parse(json.dumps(body).encode())
