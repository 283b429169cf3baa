"""The Nylas v3 webhooks API, emulated, so registration can be tried end to end.

``POST /v3/webhooks`` ``{trigger_types[], webhook_url, description?,
notification_email_addresses?}``
    Creates a webhook destination: ``{request_id, data: {id, description,
    trigger_types, webhook_url, webhook_secret, status: "active",
    notification_email_addresses, created_at, updated_at,
    status_updated_at}}``. The secret is generated here and shown only in
    this answer, as at Nylas. From then on the webhook is a target of the
    sandbox's emission (``webhook_emitter.py``) for its trigger types,
    signed with that secret.
``GET /v3/webhooks``
    ``{request_id, data: [webhook, ...]}``, oldest first, without secrets.
``DELETE /v3/webhooks/{id}``
    Deletes it: ``{request_id, data: {status: "success"}}``; 404 for an
    unknown id. Nothing is posted to it any more.

Both with Nylas's ``Authorization: Bearer <API key>`` and error envelope
(``nylas_responses.py``). Before creating a webhook Nylas checks that the
URL is the app's: it calls ``GET <webhook_url>?challenge=<value>`` and wants
``200`` with exactly that value as the body within 10 s. The sandbox does
the same, synchronously, and refuses the webhook (400) when the answer is
wrong or missing, saying what came back.

Rules where Nylas documents none, or is stricter than a sandbox should be:

* ``webhook_url`` may be ``http://`` (Nylas wants a public HTTPS URL; the
  app under test listens on loopback);
* each webhook needs its own URL: a second one for the same URL is 400;
* a trigger type the sandbox does not know is 400, naming it; types it
  knows but never emits (``grant.created``, ...) are accepted.

``SandboxServer.reset()`` forgets registered webhooks.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit
from urllib.request import ProxyHandler, build_opener
from urllib.request import Request as URLRequest

from . import nylas_notifications
from .httpd import BodyTooLarge, Request, Response
from .nylas_responses import error_response, new_id, request_id
from .routing import Route
from .webhook_emitter import WebhookEmitter
from .webhook_values import WebhookTarget

MAX_BODY = 1_000_000
CHALLENGE_TIMEOUT = 10.0
#: Trigger types accepted: those the sandbox emits, and common ones it does not.
TRIGGER_TYPES = frozenset(
    {
        *nylas_notifications.EMITTED,
        "grant.created",
        "grant.deleted",
        "grant.expired",
        "grant.updated",
        "message.created",
        "message.updated",
        "message.send_success",
        "message.send_failed",
        "message.bounce_detected",
        "thread.replied",
    }
)
_DIRECT = build_opener(ProxyHandler({}))
_UNAUTHORIZED = "Unauthorized: send 'Authorization: Bearer <API key>' with a valid key."


class NylasWebhooksAPI:
    name = "nylas"
    path_prefix = "/v3/webhooks"
    provider = "nylas"

    def __init__(
        self,
        emitter: WebhookEmitter,
        authorized: Callable[[Request], bool],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._emitter = emitter
        self._authorized = authorized
        self._wall_clock = wall_clock

    def routes(self) -> list[Route]:
        return [
            route
            for path in ("/v3/webhooks", "/v3/webhooks/")
            for route in (
                Route("POST", path, self.create_webhook),
                Route("GET", path, self.list_webhooks),
            )
        ] + [Route("DELETE", "/v3/webhooks/{webhook_id}", self.delete_webhook)]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    def list_webhooks(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        data = [_public(target) for target in self._emitter.registered(self.provider)]
        return Response.json(200, {"request_id": request_id(), "data": data})

    def delete_webhook(self, request: Request, webhook_id: str) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        registered = self._emitter.registered(self.provider)
        found = [t for t in registered if (t.record or {}).get("id") == webhook_id]
        if not found:
            return error_response(404, f"Webhook {webhook_id} not found.")
        self._emitter.unregister(self.provider, found[0])
        return Response.json(200, {"request_id": request_id(), "data": {"status": "success"}})

    def create_webhook(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        try:
            fields = _fields(request)
        except ValueError as exc:
            return error_response(400, str(exc))
        url = fields["webhook_url"]
        if any(target.url == url for target in self._emitter.registered(self.provider)):
            message = f"A webhook for {url} exists already; each webhook needs its own URL."
            return error_response(400, message)
        problem = challenge(url)
        if problem is not None:
            return error_response(400, problem)
        now = int(self._wall_clock())
        record = {
            "id": new_id(),
            "description": fields["description"],
            "trigger_types": fields["trigger_types"],
            "webhook_url": url,
            "webhook_secret": secrets.token_hex(32),
            "status": "active",
            "notification_email_addresses": fields["notification_email_addresses"],
            "created_at": now,
            "updated_at": now,
            "status_updated_at": now,
        }
        target = WebhookTarget(
            url, record["webhook_secret"], frozenset(record["trigger_types"]), record
        )
        self._emitter.register(self.provider, target)
        return Response.json(200, {"request_id": request_id(), "data": record})


def _fields(request: Request) -> dict[str, Any]:
    """The validated request body; ValueError says what is wrong."""
    if request.content_type != "application/json":
        raise ValueError("Content-Type must be application/json.")
    try:
        body = json.loads(request.read_body(MAX_BODY))
    except BodyTooLarge:
        raise ValueError(f"Request body is over {MAX_BODY} bytes.") from None
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ValueError("The request body must be a JSON object.")
    triggers = body.get("trigger_types")
    if not isinstance(triggers, list) or not triggers:
        raise ValueError("trigger_types is required: a non-empty list of trigger types.")
    if not all(isinstance(t, str) for t in triggers):
        raise ValueError("trigger_types must hold strings.")
    unknown = sorted(set(triggers) - TRIGGER_TYPES)
    if unknown:
        raise ValueError(f"Unknown trigger_types: {', '.join(unknown)}.")
    url = body.get("webhook_url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook_url is required: an absolute https:// (or http://) URL.")
    description = body.get("description", "")
    if not isinstance(description, str):
        raise ValueError("description must be a string.")
    emails = body.get("notification_email_addresses", [])
    if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
        raise ValueError("notification_email_addresses must be a list of addresses.")
    return {
        "trigger_types": list(dict.fromkeys(triggers)),
        "webhook_url": url,
        "description": description,
        "notification_email_addresses": emails,
    }


def challenge(url: str) -> str | None:
    """Nylas's ownership check of ``url``: None if it passed, else why not."""
    value = secrets.token_urlsafe(16)
    separator = "&" if urlsplit(url).query else "?"
    probe = URLRequest(f"{url}{separator}{urlencode({'challenge': value})}", method="GET")
    failed = f"The webhook_url did not answer the challenge GET {url}?challenge=...: "
    hint = " Answer it with 200 and exactly the challenge value as the body, within 10 s."
    try:
        # Straight to the app, as Nylas would call it: no proxy from the environment.
        with _DIRECT.open(probe, timeout=CHALLENGE_TIMEOUT) as answer:
            status, body = answer.status, answer.read(len(value) + 1024)
    except HTTPError as exc:
        return f"{failed}HTTP {exc.code}.{hint}"
    except (URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return f"{failed}{reason}.{hint}"
    if status != 200 or body != value.encode():
        return f"{failed}HTTP {status} with a body that is not the challenge value.{hint}"
    return None


def _public(target: WebhookTarget) -> dict[str, Any]:
    record = dict(target.record or {})
    record.pop("webhook_secret", None)
    return record
