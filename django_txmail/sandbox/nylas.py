"""The Nylas v3 send endpoints, emulated (PROVIDERS.md, "Nylas API v3").

``POST /v3/domains/{domain_name}/messages/send`` (domain route) and
``POST /v3/grants/{grant_id}/messages/send`` (grant route), with Nylas's
authentication, validation, size limits, response shapes, error envelope
and Idempotency-Key behaviour, so the adapter that passes against the
sandbox is the one that talks to Nylas.

A send goes through these steps; each can end it with an answer:

1. a ``status`` fault, if one is pending (nothing else happens);
2. ``Authorization: Bearer <key>`` against the configured API keys (401);
3. ``Idempotency-Key`` length (400 ``api.invalid_idempotency_key``);
4. body size from Content-Length, before reading it (400, see below);
5. the Idempotency-Key lookup: replay, or 409 for a different payload or
   for a request with the same key still in flight;
6. the sandbox's ``latency``;
7. decoding and validation (400 ``invalid_request_error``, cached);
8. acceptance: the message is stored and its 200 cached;
9. a ``delay_after_accept`` fault, if one is pending.

Idempotency decisions:

* Scope: the whole sandbox is one Nylas application, so domain-route keys
  are shared by every domain and every API key; grant-route keys are per
  grant.
* Payloads are compared semantically: the parsed JSON (key order and
  whitespace do not matter) and, for multipart, each file part's name,
  filename, content type and bytes (boundaries do not matter). A JSON
  request and a multipart request carrying the same message count as
  different payloads, and so do requests to two domains: reusing a
  domain-route key for another domain is a 409.
* A request is in flight from its lookup until its answer is about to be
  written, so during a ``delay_after_accept`` a retry with the same key gets 409
  ``api.concurrent_idempotent_request``, as Nylas answers while it is still
  processing the first; once the delay is over (even if the first client
  has gone) a retry gets the cached 200 replayed and no second message.
* Oversize bodies (step 4) and status faults are answered before the lookup
  and are not cached: the first was never read, the second stands for a
  failure in front of the API.

An oversize body is answered 400 ``invalid_request_error`` whose message
gives the limit and, for JSON, says to send multipart/form-data instead.

A grant-route message without ``from`` is sent from the grant's address;
the sandbox has no grants, so it reports ``<grant_id>@grants.sandbox.invalid``.
"""

from __future__ import annotations

import base64
import hmac
import html
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import nylas_payload as wire
from .faults import AFTER_ACCEPT, BEFORE_ACCEPT, Fault
from .httpd import BodyTooLarge, Request, Response, Route
from .idempotency import KeyState
from .state import ReceivedAttachment, ReceivedMessage, SandboxState

MAX_IDEMPOTENCY_KEY = 256
_SNIPPET_LENGTH = 100
_TAG = re.compile(r"<[^>]*>")
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "unauthorized",
    403: "insufficient_scopes",
    404: "not_found_error",
    405: "invalid_request_error",
    423: "resource_blocked",
    429: "rate_limit_error",
    504: "provider_error",
}


class NylasEmulator:
    name = "nylas"
    path_prefix = "/v3/"

    def __init__(self, state: SandboxState, api_keys: Iterable[str]) -> None:
        self.state = state
        self._api_keys = tuple(api_keys)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v3/domains/{domain_name}/messages/send", self.send_from_domain),
            Route("POST", "/v3/grants/{grant_id}/messages/send", self.send_from_grant),
        ]

    def error_response(
        self,
        status: int,
        message: str,
        error_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        """The Nylas error envelope ``{request_id, error: {type, message}}``."""
        if error_type is None:
            error_type = _ERROR_TYPES.get(status, "internal_error")
        envelope = {"request_id": _request_id(), "error": {"type": error_type, "message": message}}
        return Response.json(status, envelope, headers)

    def send_from_domain(self, request: Request, domain_name: str) -> Response:
        return self._send(request, "domain", domain_name)

    def send_from_grant(self, request: Request, grant_id: str) -> Response:
        return self._send(request, "grant", grant_id)

    def _send(self, request: Request, route: str, target: str) -> Response:
        request.transport = "multipart" if request.content_type == "multipart/form-data" else "json"
        refusal = self._refuse_unread(request, route)
        if refusal is not None:
            return refusal
        try:
            body = request.read_body(wire.body_limit(request.transport))
        except BodyTooLarge as exc:
            return self.error_response(400, wire.oversize_message(request.transport, exc.length))
        submission = wire.decode(
            body, request.transport, request.headers.get("Content-Type", ""), request.content_type
        )
        return self._answer_once(submission, route, target, request.headers.get("Idempotency-Key"))

    def _refuse_unread(self, request: Request, route: str) -> Response | None:
        """Steps 1-3: the answers given before the body is read."""
        fault = self.state.faults.take(self.name, route, BEFORE_ACCEPT)
        if fault is not None:
            return self._fault_response(fault)
        if not self._authorized(request):
            return self.error_response(
                401, "Unauthorized: send 'Authorization: Bearer <API key>' with a valid key."
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            return self.error_response(
                400,
                f"Idempotency-Key is {len(key)} characters; at most {MAX_IDEMPOTENCY_KEY}.",
                "api.invalid_idempotency_key",
            )
        return None

    def _answer_once(
        self, submission: wire.Submission, route: str, target: str, key: str | None
    ) -> Response:
        """Steps 5-9: process the submission at most once per Idempotency-Key."""
        scope = ("nylas", "application") if route == "domain" else ("nylas", "grant", target)
        fingerprint = f"{route}:{target}:{submission.fingerprint}"
        lookup = self.state.idempotency.begin(scope, key, fingerprint)
        if lookup.state is KeyState.REPLAY:
            return lookup.response.with_headers(("Idempotent-Response", "true"))
        if lookup.state is KeyState.MISMATCH:
            return self.error_response(
                409,
                "This Idempotency-Key was already used with a different request payload.",
                "api.invalid_idempotent_request",
            )
        if lookup.state is KeyState.IN_FLIGHT:
            return self.error_response(
                409,
                "A request with this Idempotency-Key is still being processed; retry later.",
                "api.concurrent_idempotent_request",
            )
        ticket = lookup.ticket
        assert ticket is not None
        try:
            if self.state.latency:
                time.sleep(self.state.latency)
            response = self._process(submission, route, target, key)
            ticket.store(response)
            if response.status == 200:
                delay = self.state.faults.take(self.name, route, AFTER_ACCEPT)
                if delay is not None and delay.delay_after_accept:
                    time.sleep(delay.delay_after_accept)
        finally:
            ticket.release()
        return response

    def _process(
        self, submission: wire.Submission, route: str, target: str, key: str | None
    ) -> Response:
        if submission.error is not None:
            return self.error_response(400, submission.error)
        try:
            wire.validate(submission.payload, route, time.time())
            attachments = wire.attachments(submission)
        except wire.InvalidRequest as exc:
            return self.error_response(400, str(exc))
        payload = submission.payload
        message = ReceivedMessage(
            id=_new_id(),
            provider=self.name,
            route=route,
            payload=payload,
            attachments=attachments,
            transport=submission.transport,
            received_at=datetime.now(UTC),
            idempotency_key=key,
            domain=target if route == "domain" else None,
            grant_id=target if route == "grant" else None,
            schedule_id=_new_id() if route == "grant" and payload.get("send_at") else None,
        )
        self.state.add_message(message)
        return Response.json(200, _success_body(message))

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        offered = token.strip().encode()
        # Check every key so the time taken does not say which one was close.
        matches = [hmac.compare_digest(offered, key.encode()) for key in self._api_keys]
        return any(matches)

    def _fault_response(self, fault: Fault) -> Response:
        assert fault.status is not None
        headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
        message = fault.message or f"Injected fault: HTTP {fault.status}."
        return self.error_response(fault.status, message, fault.error_type, headers)


def _success_body(message: ReceivedMessage) -> dict[str, Any]:
    payload = message.payload
    if message.route == "domain":
        sender = [payload["from"]]
    else:
        sender = payload.get("from") or [{"email": f"{message.grant_id}@grants.sandbox.invalid"}]
    body = payload.get("body") or ""
    data: dict[str, Any] = {
        "id": message.id,
        "object": "message",
        "from": [_pair(p) for p in sender],
        "to": [_pair(p) for p in payload["to"]],
        "cc": [_pair(p) for p in payload.get("cc") or []],
        "bcc": [_pair(p) for p in payload.get("bcc") or []],
        "reply_to": [_pair(p) for p in payload.get("reply_to") or []],
        "subject": payload.get("subject") or "",
        "body": body,
        "snippet": _snippet(body, bool(payload.get("is_plaintext"))),
        "attachments": [_attachment_summary(a) for a in message.attachments],
        "tracking_options": _tracking_options(payload.get("tracking_options")),
    }
    if message.route == "domain":
        return {"request_id": _request_id(), "data": data}
    data["grant_id"] = message.grant_id
    if message.schedule_id is not None:
        data["schedule_id"] = message.schedule_id
        data["send_at"] = payload["send_at"]
    return {"request_id": _request_id(), "grant_id": message.grant_id, "data": data}


def _pair(participant: dict[str, Any]) -> dict[str, str]:
    return {"name": participant.get("name") or "", "email": participant["email"]}


def _attachment_summary(attachment: ReceivedAttachment) -> dict[str, Any]:
    return {
        "content_type": attachment.content_type,
        "filename": attachment.filename,
        "content_id": attachment.content_id,
        "content_disposition": attachment.content_disposition,
        "size": attachment.size,
    }


def _tracking_options(options: dict[str, Any] | None) -> dict[str, Any]:
    options = options or {}
    return {
        "opens": bool(options.get("opens")),
        "links": bool(options.get("links")),
        "label": options.get("label") or "",
    }


def _snippet(body: str, is_plaintext: bool) -> str:
    text = body if is_plaintext else html.unescape(_TAG.sub(" ", body))
    return " ".join(text.split())[:_SNIPPET_LENGTH]


def _new_id() -> str:
    """A random, URL-safe id in the style of Nylas message ids."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()


def _request_id() -> str:
    return str(uuid.uuid4())
