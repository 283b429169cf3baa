"""The Nylas v3 send endpoints, emulated (PROVIDERS.md, "Nylas API v3").

``POST /v3/domains/{domain_name}/messages/send`` (domain route) and
``POST /v3/grants/{grant_id}/messages/send`` (grant route), with Nylas's
authentication, validation, size limits, response shapes, error envelope
and Idempotency-Key behaviour, so the adapter that passes against the
sandbox is the one that talks to Nylas. The grant route's schedules API is
in ``nylas_schedules.py``.

A send goes through these steps; each can end it with an answer:

1. an injected (``inject()``) status fault, if one is pending; nothing else
   happens, and the fault plan is not consulted;
2. ``Authorization: Bearer <key>`` against the configured API keys (401);
3. ``Idempotency-Key`` length (400 ``api.invalid_idempotency_key``);
4. body size from Content-Length, before reading it (400, see below);
5. the fault plan's draw; a refusal (500, 502, 503, 429 with or without
   ``Retry-After``, connection reset) answers here;
6. the Idempotency-Key lookup: replay, or 409 for a different payload or
   for a request with the same key still in flight;
7. the sandbox's ``latency``;
8. decoding and validation (400 ``invalid_request_error``, cached);
9. acceptance: the message is stored and its 200 cached;
10. for a newly accepted message only, the answer is delayed or withheld:
    by a pending injected ``delay_after_accept`` fault, else by the plan's
    ``slow`` (answered late) or ``timeout-after-accept`` (held for ``hang``
    seconds, then the connection is closed without an answer). Replays and
    errors are answered at once: a drawn ``slow`` or ``timeout-after-accept``
    has no effect on them and is not counted.

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
* In flight means being processed: a request is in flight from its lookup
  (step 6) until its response is cached (steps 8-9), which covers the
  latency. A same-key request in that window gets 409
  ``api.concurrent_idempotent_request``, as Nylas answers while it is still
  processing the first. From the moment the response is cached, a same-key
  retry gets it replayed (``Idempotent-Response: true``) and no second
  message, even while the first request's answer is still delayed or held
  (step 10) or was never written: the provider has finished, and the
  client that timed out is owed the result, not a conflict.
* What is cached: every answer from steps 8-9 (a 200 or a 400), whatever
  happens to it in step 10. Answers from steps 1-5 are not cached: an
  oversize body was never read, and injected or planned refusals stand for
  a failure in front of the API, so a retry with the key is processed anew.

An oversize body is answered 400 ``invalid_request_error`` whose message
gives the limit and, for JSON, says to send multipart/form-data instead.

A grant-route message without ``from`` is sent from the grant's address;
it reports ``<grant_id>@grants.sandbox.invalid``. A grant issued through the
emulated Hosted OAuth (``nylas_grants.py``) that expired answers 401, one
deleted 404.
"""

from __future__ import annotations

import hmac
from collections.abc import Hashable, Iterable
from datetime import UTC, datetime

from . import nylas_payload as wire
from .fault_plan import REFUSALS
from .httpd import BodyTooLarge, Request, Response
from .idempotency import KeyState
from .nylas_grants import NylasGrants
from .nylas_responses import error_response, new_id, sent_message
from .nylas_schedules import NylasSchedules
from .nylas_templates import NylasTemplates, render_template
from .routing import Route
from .send_steps import delay_or_withhold, injected_refusal, planned_refusal
from .state import ReceivedMessage, SandboxState

MAX_IDEMPOTENCY_KEY = 256


class NylasEmulator:
    name = "nylas"
    path_prefix = "/v3/"

    def __init__(self, state: SandboxState, api_keys: Iterable[str]) -> None:
        self.state = state
        self._api_keys = tuple(api_keys)
        #: Grants issued through Hosted OAuth (``nylas_grants.py``), set by the server.
        self.grants: NylasGrants | None = None
        self._schedules = NylasSchedules(state, self.authorized)
        self._templates = NylasTemplates(state, self.authorized)

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/v3/domains/{domain_name}/messages/send", self.send_from_domain),
            Route("POST", "/v3/grants/{grant_id}/messages/send", self.send_from_grant),
            *self._schedules.routes(),
            *self._templates.routes(),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    def authorized(self, request: Request) -> bool:
        """``Authorization: Bearer <key>`` with one of the configured keys."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.is_api_key(token.strip())

    def is_api_key(self, token: str) -> bool:
        """``token`` is one of the configured API keys."""
        if not token:
            return False
        offered = token.encode()
        # Check every key so the time taken does not say which one was close.
        matches = [hmac.compare_digest(offered, key.encode()) for key in self._api_keys]
        return any(matches)

    def send_from_domain(self, request: Request, domain_name: str) -> Response:
        return self._send(request, "domain", domain_name)

    def send_from_grant(self, request: Request, grant_id: str) -> Response:
        gone = self.grants.refusal(grant_id) if self.grants and self.authorized(request) else None
        if gone is not None:
            return gone  # an expired or deleted grant sends nothing
        return self._send(request, "grant", grant_id)

    def _send(self, request: Request, route: str, target: str) -> Response:
        request.transport = "multipart" if request.content_type == "multipart/form-data" else "json"
        refusal = self._refuse_unread(request, route)
        if refusal is not None:
            return refusal
        try:
            body = request.read_body(wire.body_limit(request.transport))
        except BodyTooLarge as exc:
            return error_response(400, wire.oversize_message(request.transport, exc.length))
        submission = wire.decode(
            body, request.transport, request.headers.get("Content-Type", ""), request.content_type
        )
        key = request.headers.get("Idempotency-Key")
        scope = ("nylas", "application") if route == "domain" else ("nylas", "grant", target)
        fingerprint = f"{route}:{target}:{submission.fingerprint}"
        # The plan knows a request by its key in its scope, or else by its payload.
        identity = f"key\0{'/'.join(scope)}\0{key}" if key is not None else f"body\0{fingerprint}"
        drawn = self.state.planned_faults.draw(identity)
        if drawn is not None and drawn[0] in REFUSALS:
            return planned_refusal(self.state, request, *drawn, error_response)
        response, accepted = self._answer_once(submission, route, target, key, scope, fingerprint)
        if not accepted:
            return response
        return delay_or_withhold(self.state, self.name, route, request, response, drawn)

    def _refuse_unread(self, request: Request, route: str) -> Response | None:
        """Steps 1-3: the answers given before the body is read."""
        injected = injected_refusal(self.state, self.name, route, request, error_response)
        if injected is not None:
            return injected
        if not self.authorized(request):
            return error_response(
                401, "Unauthorized: send 'Authorization: Bearer <API key>' with a valid key."
            )
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            return error_response(
                400,
                f"Idempotency-Key is {len(key)} characters; at most {MAX_IDEMPOTENCY_KEY}.",
                "api.invalid_idempotency_key",
            )
        return None

    def _answer_once(
        self,
        submission: wire.Submission,
        route: str,
        target: str,
        key: str | None,
        scope: Hashable,
        fingerprint: str,
    ) -> tuple[Response, bool]:
        """Steps 6-9: process the submission at most once per Idempotency-Key.

        Returns the answer and whether it accepted a new message."""
        lookup = self.state.idempotency.begin(scope, key, fingerprint)
        if lookup.state is KeyState.REPLAY:
            return lookup.response.with_headers(("Idempotent-Response", "true")), False
        if lookup.state is KeyState.MISMATCH:
            message = "This Idempotency-Key was already used with a different request payload."
            return error_response(409, message, "api.invalid_idempotent_request"), False
        if lookup.state is KeyState.IN_FLIGHT:
            message = "A request with this Idempotency-Key is still being processed; retry later."
            return error_response(409, message, "api.concurrent_idempotent_request"), False
        ticket = lookup.ticket
        assert ticket is not None
        try:
            self.state.pause(self.state.latency)
            response = self._process(submission, route, target, key)
            ticket.store(response)
        finally:
            ticket.release()
        return response, response.status == 200

    def _process(
        self, submission: wire.Submission, route: str, target: str, key: str | None
    ) -> Response:
        if submission.error is not None:
            return error_response(400, submission.error)
        try:
            wire.validate(submission.payload, route, self.state.wall_clock())
            attachments = wire.attachments(submission)
        except wire.InvalidRequest as exc:
            return error_response(400, str(exc))
        payload = submission.payload
        rendered = None
        if payload.get("template"):
            answer = render_template(self.state, payload["template"])
            if isinstance(answer, Response):
                return answer
            # The message's own subject and body take precedence over the template's.
            rendered = {
                "subject": payload.get("subject") or answer["subject"],
                "html": payload.get("body") or answer["body"],
            }
        message = ReceivedMessage(
            id=new_id(),
            provider=self.name,
            route=route,
            payload=payload,
            attachments=attachments,
            transport=submission.transport,
            received_at=datetime.now(UTC),
            idempotency_key=key,
            domain=target if route == "domain" else None,
            grant_id=target if route == "grant" else None,
            schedule_id=new_id() if route == "grant" and payload.get("send_at") else None,
            rendered=rendered,
        )
        self.state.add_message(message)
        return Response.json(200, sent_message(message))
