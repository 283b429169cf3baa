"""Nylas Hosted OAuth and the grants API, emulated (PROVIDERS.md, "Hosted OAuth").

``GET /v3/connect/auth``
    The consent page. It needs ``client_id``, ``redirect_uri``,
    ``response_type=code`` and a ``state``; ``login_hint`` fills in the
    address. The page has an address field and two buttons: *Allow*
    connects that address and *Decline* refuses. (Nylas would show the
    mailbox provider's own login; the sandbox consents at once.)
``POST /v3/connect/auth``
    The page's form: redirects (303) to ``redirect_uri?code=…&state=…``, or
    ``?error=access_denied&error_description=…&state=…`` when declined.
``POST /v3/connect/token``
    The exchange (JSON or form body): ``client_secret`` must be an API key,
    ``client_id`` and ``redirect_uri`` those of the auth request, and with
    PKCE the ``code_verifier`` whose S256 digest is the ``code_challenge``.
    A code works once: any later exchange of it is 400 ``invalid_grant``.
    One grant per address: connecting an address again re-authenticates its
    grant (same ``grant_id``, ``grant.updated`` with
    ``reauthentication_flag``); a new one emits ``grant.created``. The
    answer has no ``email`` or ``provider`` (as in older API versions), so
    the client reads the grant back.
``GET /v3/grants/{id}``, ``DELETE /v3/grants/{id}``
    API key auth. The grant's ``grant_status`` is "valid" or "invalid"; a
    deleted grant is 404 and emits ``grant.deleted``.

A send through an expired grant is 401 naming the grant, through a deleted
one 404; grants the sandbox never issued send as before.

The inspection API adds ``GET /_sandbox/grants`` (every grant) and
``POST /_sandbox/grants/{id}/expire``, which makes the grant invalid and
emits ``grant.expired``, as when a user changes their password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .httpd import Request, Response
from .nylas_notifications import APPLICATION_ID, new_id
from .nylas_responses import error_response
from .routing import Route
from .webhook_values import Notification

GRANT_SOURCE = "/nylas/grants"
SCOPES = ("https://www.googleapis.com/auth/gmail.send",)


@dataclass
class SandboxGrant:
    id: str
    email: str
    provider: str
    status: str = "valid"  # valid | invalid | deleted
    created_at: int = 0
    updated_at: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "grant_status": self.status if self.status != "deleted" else "invalid",
            "email": self.email,
            "provider": self.provider,
            "scope": list(SCOPES),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    email: str
    provider: str
    challenge: str = ""
    used: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class NylasGrants:
    name = "nylas"
    path_prefix = "/v3/"

    def __init__(
        self,
        authorized_key: Callable[[str], bool],
        authorized: Callable[[Request], bool],
        emit: Callable[[list[Notification]], None],
        wall_clock: Callable[[], float],
    ) -> None:
        self._authorized_key = authorized_key
        self._authorized = authorized
        self._emit = emit
        self._clock = wall_clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._grants: dict[str, SandboxGrant] = {}

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v3/connect/auth", self.consent_page),
            Route("POST", "/v3/connect/auth", self.decide),
            Route("POST", "/v3/connect/token", self.exchange),
            Route("GET", "/v3/grants/{grant_id}", self.get_grant),
            Route("DELETE", "/v3/grants/{grant_id}", self.delete_grant),
        ]

    def inspection_routes(self) -> list[Route]:
        return [
            Route("GET", "/_sandbox/grants", self.list_grants),
            Route("POST", "/_sandbox/grants/{grant_id}/expire", self.expire),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    # -- the browser's part ------------------------------------------------

    def consent_page(self, request: Request) -> Response:
        query = request.query
        missing = [k for k in ("client_id", "redirect_uri", "state") if not query.get(k)]
        if missing or query.get("response_type") != "code":
            text = f"Missing {', '.join(missing) or 'response_type=code'}."
            return error_response(400, text)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in query.items()
        )
        email = html.escape(query.get("login_hint", "") or "user@sandbox.test")
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Sandbox: connect "
            "your mailbox</title></head><body><h1>Connect your mailbox</h1>"
            f"<p>{html.escape(query['client_id'])} asks to send mail as you.</p>"
            f'<form method="post" action="/v3/connect/auth">{hidden}'
            f'<label>Address <input name="email" id="email" value="{email}"></label> '
            '<button name="decision" value="allow" id="allow">Allow</button> '
            '<button name="decision" value="decline" id="decline">Decline</button>'
            "</form></body></html>"
        )
        return Response(200, page.encode(), content_type="text/html; charset=utf-8")

    def decide(self, request: Request) -> Response:
        form = dict(parse_qsl(request.read_body(65536).decode("utf-8", "replace")))
        redirect_uri, state = form.get("redirect_uri", ""), form.get("state", "")
        if not redirect_uri or not form.get("client_id"):
            return error_response(400, "Missing client_id or redirect_uri.")
        if form.get("decision") != "allow":
            answer = {
                "error": "access_denied",
                "error_description": "The user declined.",
                "state": state,
            }
        else:
            code = uuid.uuid4().hex
            with self._lock:
                self._codes[code] = _Code(
                    form["client_id"],
                    redirect_uri,
                    form.get("email", "").strip().lower() or "user@sandbox.test",
                    form.get("provider") or "google",
                    challenge=form.get("code_challenge", ""),
                )
            answer = {"code": code, "state": state}
        separator = "&" if "?" in redirect_uri else "?"
        location = f"{redirect_uri}{separator}{urlencode(answer)}"
        return Response(303, b"", [("Location", location)], content_type=None)

    # -- the server's part -------------------------------------------------

    def exchange(self, request: Request) -> Response:
        raw = request.read_body(65536)
        if request.content_type == "application/json":
            try:
                body = json.loads(raw)
            except ValueError:
                return error_response(400, "The body is not JSON.")
            body = body if isinstance(body, dict) else {}
        else:
            body = dict(parse_qsl(raw.decode("utf-8", "replace")))
        if not self._authorized_key(str(body.get("client_secret") or "")):
            return error_response(401, "client_secret is not an API key of this application.")
        with self._lock:
            code = self._codes.get(str(body.get("code") or ""))
            if code is None or code.used:
                return error_response(400, "The code is not valid or was used.", "invalid_grant")
            code.used = True  # spent, whatever the rest of the request holds
            if (
                body.get("client_id") != code.client_id
                or body.get("redirect_uri") != code.redirect_uri
            ):
                return error_response(400, "client_id or redirect_uri differ.", "invalid_grant")
            if code.challenge and not hmac.compare_digest(
                _s256(str(body.get("code_verifier") or "")), code.challenge
            ):
                return error_response(400, "The code_verifier does not match.", "invalid_grant")
            grant, kind = self._connect(code.email, code.provider)
        self._notify(kind, grant, reauthentication_flag=kind == "grant.updated")
        return Response.json(
            200,
            {
                "access_token": uuid.uuid4().hex,
                "expires_in": 3600,
                "id_token": uuid.uuid4().hex,
                "refresh_token": uuid.uuid4().hex,
                "scope": " ".join(SCOPES),
                "token_type": "Bearer",
                "grant_id": grant.id,
            },
        )

    def _connect(self, email: str, provider: str) -> tuple[SandboxGrant, str]:
        """The grant for ``email``: the one it had (re-authenticated) or a new one (lock held)."""
        now = int(self._clock())
        for grant in self._grants.values():
            if grant.email == email and grant.status != "deleted":
                grant.status, grant.updated_at = "valid", now
                return grant, "grant.updated"
        grant = SandboxGrant(str(uuid.uuid4()), email, provider, created_at=now, updated_at=now)
        self._grants[grant.id] = grant
        return grant, "grant.created"

    def _found(self, request: Request, grant_id: str) -> SandboxGrant | Response:
        if not self._authorized(request):
            return error_response(401, "Unauthorized: send 'Authorization: Bearer <API key>'.")
        grant = self._grants.get(grant_id)
        if grant is None or grant.status == "deleted":
            return error_response(404, f"Grant {grant_id} not found.", "not_found_error")
        return grant

    def get_grant(self, request: Request, grant_id: str) -> Response:
        found = self._found(request, grant_id)
        if isinstance(found, Response):
            return found
        return Response.json(200, {"request_id": new_id(), "data": found.describe()})

    def delete_grant(self, request: Request, grant_id: str) -> Response:
        with self._lock:
            found = self._found(request, grant_id)
            if isinstance(found, Response):
                return found
            found.status, found.updated_at = "deleted", int(self._clock())
        self._notify("grant.deleted", found)
        return Response.json(200, {"request_id": new_id()})

    def refusal(self, grant_id: str) -> Response | None:
        """The answer to a send through ``grant_id`` when the grant no longer works."""
        grant = self._grants.get(grant_id)
        if grant is None or grant.status == "valid":
            return None
        if grant.status == "deleted":
            return error_response(404, f"Grant {grant_id} not found.", "not_found_error")
        return error_response(
            401, f"The grant {grant_id} has expired; the user must re-authenticate.", "unauthorized"
        )

    # -- inspection --------------------------------------------------------

    def listed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [g.describe() | {"sandbox_status": g.status} for g in self._grants.values()]

    def list_grants(self, request: Request) -> Response:
        return Response.json(200, self.listed())

    def expire_now(self, grant_id: str) -> SandboxGrant | None:
        """Make the grant invalid and emit ``grant.expired``; None if there is no such grant."""
        with self._lock:
            grant = self._grants.get(grant_id)
            if grant is None or grant.status == "deleted":
                return None
            grant.status, grant.updated_at = "invalid", int(self._clock())
        self._notify("grant.expired", grant)
        return grant

    def expire(self, request: Request, grant_id: str) -> Response:
        grant = self.expire_now(grant_id)
        if grant is None:
            return error_response(404, f"Grant {grant_id} not found.", "not_found_error")
        return Response.json(200, grant.describe())

    def reset(self) -> None:
        with self._lock:
            self._codes.clear()
            self._grants.clear()

    def _notify(self, kind: str, grant: SandboxGrant, **extra: Any) -> None:
        obj = {
            "grant_id": grant.id,
            "email": grant.email,
            "provider": grant.provider,
            "integration_id": APPLICATION_ID,
            "code": 25009 if kind == "grant.expired" else 0,
            **extra,
        }
        if kind == "grant.expired":
            obj["grant_updated_at"] = grant.updated_at
        identifier = new_id()
        envelope = {
            "specversion": "1.0",
            "type": kind,
            "source": GRANT_SOURCE,
            "id": identifier,
            "time": int(self._clock()),
            "webhook_delivery_attempt": 1,
            "data": {"application_id": APPLICATION_ID, "object": obj},
        }
        self._emit([Notification(identifier, kind, envelope)])


class NylasGrantsInspection:
    """``/_sandbox/grants`` and ``/_sandbox/grants/{id}/expire`` (see the module doc)."""

    name = "sandbox"
    path_prefix = "/_sandbox/grants"

    def __init__(self, grants: NylasGrants) -> None:
        self._grants = grants

    def routes(self) -> list[Route]:
        return self._grants.inspection_routes()

    def error_response(self, status: int, message: str) -> Response:
        return Response.json(status, {"error": {"type": "not_found_error", "message": message}})
