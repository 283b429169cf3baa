"""Connecting a mailbox in tests: the app's views in Django's test client, the
user's steps at the provider (the sandbox's consent page) over real HTTP."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import requests
from django.contrib.auth.models import User
from django.test import Client

from django_txmail.models import Grant
from tests.conftest import txmail_settings, use_our_backend

SECRET = "whsec-grants"
CLIENT_ID = "sandbox-client-id"
CONNECT = "/txmail/grants/connect/"
CALLBACK = "/txmail/grants/callback/"


def user_client(name: str = "ann") -> tuple[User, Client]:
    user = User.objects.create_user(name, f"{name}@example.com", "pw")
    client = Client()
    client.force_login(user)
    return user, client


def start(client: Client, query: str = "") -> str:
    """The provider URL the connect view sends the browser to."""
    response = client.get(CONNECT + query)
    assert response.status_code == 302
    return response["Location"]


def consent(auth_url: str, email: str = "ann@mail.example", decision: str = "allow") -> str:
    """What the user does at the provider: the query our callback gets back."""
    page = requests.get(auth_url, timeout=5)
    assert page.status_code == 200 and 'id="allow"' in page.text
    form = {k: v[0] for k, v in parse_qs(urlsplit(auth_url).query).items()}
    answer = requests.post(
        auth_url.split("?")[0],
        data=form | {"email": email, "decision": decision},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.startswith("http://testserver" + CALLBACK)
    return "?" + urlsplit(location).query


def settings_for(sandbox_url: str, **account) -> dict:
    """TXMAIL for the sandbox, with a client id and a webhook secret."""
    return txmail_settings(
        sandbox_url, account={"CLIENT_ID": CLIENT_ID, "WEBHOOK_SECRET": SECRET, **account}
    )


def use_sandbox(settings, sandbox) -> None:
    settings.TXMAIL = settings_for(sandbox.url)
    use_our_backend(settings)


def connect(client: Client, email: str = "ann@mail.example") -> Grant:
    """The whole flow: start, consent at the sandbox, callback; the Grant it made."""
    response = client.get(CALLBACK + consent(start(client), email=email))
    assert response.status_code == 302, response.content
    return Grant.objects.get(email=email)
