"""Connecting a user's mailbox through the provider's Hosted OAuth (the views).

``grants/connect/`` (login required) sends the browser to the provider
with a ``state`` that is random, kept in this user's session and good for
one callback, and, unless the account sets ``PKCE: False``, a PKCE
challenge whose verifier never leaves the server. ``grants/callback/``
takes the state out of the session (so it cannot be used twice), trades
the code for the grant through the transport (the API key goes as
``client_secret``, server to server) and records the Grant
(``grants.connected``). Anything wrong — the user declined, a state that is
missing, forged, used or from another session, a refused exchange — shows
a page that says so and changes nothing.

``grants/`` lists the user's own mailboxes with a button to disconnect each.
Include them with ``path("txmail/grants/", include("django_txmail.grant_urls"))``.
"""

from __future__ import annotations

import secrets

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View

from django_txmail import grants
from django_txmail.conf import ProviderAccount, get_settings
from django_txmail.exceptions import ProviderAPIError
from django_txmail.models import Grant

#: Where the pending connections of a session are kept: {state: {...}}.
SESSION_KEY = "txmail_grant_connect"
#: A session keeps at most this many connections started and not finished.
MAX_PENDING = 5


def connect_account() -> ProviderAccount | None:
    """The provider account mailboxes connect to: the default one if it has a
    ``CLIENT_ID``, else the first that has one (None: none can)."""
    settings = get_settings()
    accounts = sorted(
        settings.providers.values(), key=lambda a: a.name != settings.default_provider
    )
    return next((a for a in accounts if a.options.get("CLIENT_ID")), None)


def _error(request: HttpRequest, reason: str, status: int = 400) -> HttpResponse:
    return render(request, "django_txmail/grants/error.html", {"reason": reason}, status=status)


def _safe_next(request: HttpRequest, value: str) -> str:
    if value and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return value
    return reverse("txmail_grants:list")


@method_decorator(login_required, name="dispatch")
class ConnectView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        account = connect_account()
        if account is None:
            return _error(request, "not_configured", status=503)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(48) if account.options.get("PKCE", True) else ""
        pending = dict(request.session.get(SESSION_KEY, {}))
        while len(pending) >= MAX_PENDING:
            pending.pop(next(iter(pending)))
        pending[state] = {
            "account": account.name,
            "verifier": verifier,
            "next": _safe_next(request, request.GET.get("next", "")),
        }
        request.session[SESSION_KEY] = pending
        url = grants.connect_adapter(account).connect_url(
            redirect_uri=request.build_absolute_uri(reverse("txmail_grants:callback")),
            state=state,
            code_verifier=verifier,
            provider=request.GET.get("provider", ""),
            login_hint=request.GET.get("login_hint", ""),
        )
        return HttpResponseRedirect(url)


@method_decorator(login_required, name="dispatch")
class CallbackView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        pending = dict(request.session.get(SESSION_KEY, {}))
        started = pending.pop(request.GET.get("state", ""), None)
        if started is None:
            return _error(request, "bad_state")
        request.session[SESSION_KEY] = pending  # the state is spent, whatever follows
        if request.GET.get("error") or not request.GET.get("code"):
            return _error(request, "declined")
        try:
            info = grants.exchange_code(
                started["account"],
                code=request.GET["code"],
                redirect_uri=request.build_absolute_uri(reverse("txmail_grants:callback")),
                code_verifier=started["verifier"],
            )
        except ProviderAPIError:
            return _error(request, "exchange_failed", status=502)
        grants.connected(started["account"], info, request.user)
        return HttpResponseRedirect(started["next"])


@method_decorator(login_required, name="dispatch")
class GrantListView(View):
    def get(self, request: HttpRequest) -> HttpResponse:
        mine = Grant.objects.filter(user=request.user, is_active=True)
        return render(request, "django_txmail/grants/list.html", {"grants": mine})


@method_decorator(login_required, name="dispatch")
class DisconnectView(View):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        grant = get_object_or_404(Grant, pk=pk, user=request.user)
        try:
            grants.disconnect(grant)
        except ProviderAPIError:
            return _error(request, "disconnect_failed", status=502)
        return HttpResponseRedirect(reverse("txmail_grants:list"))
