"""``unsubscribe/<token>/``: one-click unsubscribe, as RFC 8058 asks.

* ``GET`` shows a small page with a button and changes nothing: link
  scanners and mail previews fetch URLs, and must not unsubscribe anyone.
* ``POST`` with ``List-Unsubscribe=One-Click`` (form-encoded or multipart,
  as mailbox providers send it, or from the page's button) puts the
  recipient on the suppression list of the token's stream and answers 200.
  No login, no cookie and no CSRF token: the mailbox provider's POST has
  none, and the token itself is the proof (``django_txmail.unsubscribe``).

A token that was altered or not made by this site is a 400; a token of a
stream no longer in ``TXMAIL["STREAMS"]`` a 404; each with a page that says so.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from django_txmail.conf import get_settings
from django_txmail.exceptions import InvalidMessage, InvalidUnsubscribeToken
from django_txmail.models import Suppression
from django_txmail.suppressions import normalize, suppress
from django_txmail.unsubscribe import ONE_CLICK, read_token

TEMPLATE = "django_txmail/unsubscribe.html"


def _page(request: HttpRequest, state: str, status: int = 200, **context) -> HttpResponse:
    response = render(request, TEMPLATE, {"state": state, **context}, status=status)
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex"
    return response


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    http_method_names = ["get", "post", "head"]

    def _recipient(self, request: HttpRequest, token: str) -> tuple[str, str] | HttpResponse:
        try:
            address, stream = read_token(token)
            address = normalize(address)
        except (InvalidUnsubscribeToken, InvalidMessage):
            return _page(request, "invalid", status=400)
        if stream not in get_settings().streams:
            return _page(request, "gone", status=404)
        return address, stream

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        found = self._recipient(request, token)
        if isinstance(found, HttpResponse):
            return found
        return _page(request, "confirm", action=request.path, one_click=ONE_CLICK)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        found = self._recipient(request, token)
        if isinstance(found, HttpResponse):
            return found
        if request.POST.get("List-Unsubscribe") != "One-Click":
            return _page(request, "not_one_click", status=400)
        address, stream = found
        suppress(
            address,
            stream=stream,
            reason=Suppression.Reason.UNSUBSCRIBE,
            note="One-click unsubscribe (RFC 8058).",
        )
        return _page(request, "done")
