"""The Mailtrap sending API, emulated (PROVIDERS.md, "Mailtrap sending API").

``POST /api/send`` and ``POST /api/batch`` (live sending), and the same on
a test inbox, ``POST /api/send/{inbox_id}`` and ``/api/batch/{inbox_id}``,
with Mailtrap's authentication (``Api-Token: <token>`` or ``Authorization:
Bearer <token>``), validation, limits and answers:

* a send answers ``{"success": true, "message_ids": [...]}`` with one id per
  recipient (To, Cc, Bcc order), or a single id in a test inbox;
* errors are ``{"success": false, "errors": ["..."]}``: 400 for an invalid
  message (every problem listed), 401 for a missing or unknown token, 403
  ``Forbidden`` for a sender whose domain is not verified (only when the
  server is given ``verified_domains``; test inboxes take any sender), 404
  for an inbox id that is not a number;
* a batch is ``{base, requests: [...]}`` with 1 to 500 requests and at most
  50 MB. Once its shape is right it is always answered 200 ``{"success":
  true, "responses": [...]}``, one result per request in order: an item
  that fails validation (or the verified-domain check) gets ``{"success":
  false, "errors": [...]}`` and the others are sent. A wrong shape (not an
  object, no ``requests``, more than 500, recipients in ``base``) is a 400
  for the whole batch.

A send goes through the steps of ``send_steps.py``: an injected status
fault, then the token, the body size (read no further than the limit), the
fault plan's refusals, the latency, validation and acceptance, then, for a
request that accepted a message, an injected delay or the plan's ``slow`` /
``timeout-after-accept``. Fault filters name the provider ``"mailtrap"`` and
the route ``"domain"`` (``/api/send``) or ``"batch"`` (``/api/batch``).

The account's suppression list is ``mailtrap_suppressions.py``: the
simulator's hard bounces and complaints land on it, as at Mailtrap.

Mailtrap has **no idempotency keys**: every request is processed anew, so a
retry after a timeout sends a second copy, as it would at Mailtrap. The
fault plan knows a request by its endpoint and body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import mailtrap_payload as wire
from .addresses import domain_of
from .fault_plan import REFUSALS
from .httpd import BodyTooLarge, Request, Response
from .mailtrap_suppressions import MailtrapSuppressionsAPI, SuppressionList
from .mailtrap_templates import MailtrapTemplates, render_for_send
from .routing import Route
from .send_steps import delay_or_withhold, injected_refusal, planned_refusal
from .state import ReceivedAttachment, ReceivedMessage, SandboxState


def error_response(
    status: int, errors: list[str], headers: Iterable[tuple[str, str]] = ()
) -> Response:
    """Mailtrap's error body ``{"success": false, "errors": [...]}``."""
    return Response.json(status, {"success": False, "errors": errors}, headers)


class MailtrapEmulator:
    name = "mailtrap"
    path_prefix = "/api/"
    #: Mailtrap documents no Retry-After on its 429 (PROVIDERS.md).
    sends_retry_after = False

    def __init__(
        self,
        state: SandboxState,
        api_tokens: Iterable[str],
        verified_domains: Iterable[str] | None = None,
    ) -> None:
        self.state = state
        self._tokens = tuple(api_tokens)
        self._verified = None if verified_domains is None else {d.lower() for d in verified_domains}
        self.suppressions = SuppressionList()

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/api/send", self.send),
            Route("POST", "/api/batch", self.batch),
            Route("POST", "/api/send/{inbox_id}", self.send),
            Route("POST", "/api/batch/{inbox_id}", self.batch),
            *MailtrapTemplates(self.state, self.authorized).routes(),
            *MailtrapSuppressionsAPI(self.suppressions, self.authorized).routes(),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, [message])

    def authorized(self, request: Request) -> bool:
        """``Api-Token: <token>``, or ``Authorization: Bearer <token>``."""
        token = request.headers.get("Api-Token")
        if token is None:
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer":
                return False
        offered = token.strip().encode()
        if not offered:
            return False
        # Check every token so the time taken does not say which one was close.
        return any([hmac.compare_digest(offered, t.encode()) for t in self._tokens])

    def send(self, request: Request, inbox_id: str | None = None) -> Response:
        return self._handle(request, "domain", inbox_id)

    def batch(self, request: Request, inbox_id: str | None = None) -> Response:
        return self._handle(request, "batch", inbox_id)

    @staticmethod
    def _refuse(
        status: int, message: str, error_type: str | None, headers: Iterable[tuple[str, str]]
    ) -> Response:
        return error_response(status, [message], headers)

    def _handle(self, request: Request, route: str, inbox_id: str | None) -> Response:
        request.transport = "json"
        refusal = injected_refusal(self.state, self.name, route, request, self._refuse)
        if refusal is not None:
            return refusal
        if not self.authorized(request):
            return error_response(401, ["Unauthorized"])
        if inbox_id is not None and not inbox_id.isdigit():
            return error_response(404, [f"No test inbox {inbox_id!r}: inbox ids are numbers."])
        limit = wire.MAX_BATCH_BYTES if route == "batch" else wire.MAX_SEND_BYTES
        try:
            body = request.read_body(limit)
        except BodyTooLarge as exc:
            size = f"{exc.length} bytes" if exc.length is not None else "too large"
            return error_response(400, [f"Request body is {size}; at most {limit} bytes."])
        identity = hashlib.sha256(body).hexdigest()
        drawn = self.state.planned_faults.draw(f"body\0mailtrap:{route}:{inbox_id}:{identity}")
        if drawn is not None and drawn[0] in REFUSALS:
            return planned_refusal(self.state, request, *drawn, self._refuse)
        self.state.pause(self.state.latency)
        if request.content_type != "application/json":
            return error_response(400, ["Content-Type must be application/json"])
        try:
            document = json.loads(body)
        except ValueError as exc:
            return error_response(400, [f"invalid JSON: {exc}"])
        if route == "batch":
            response, accepted = self._batch(document, inbox_id)
        else:
            response, accepted = self._send(document, inbox_id)
        if not accepted:
            return response
        return delay_or_withhold(self.state, self.name, route, request, response, drawn)

    def _send(self, message: Any, inbox_id: str | None) -> tuple[Response, bool]:
        errors, files = wire.check(message)
        if errors:
            return error_response(400, errors), False
        if self._forbidden(message, inbox_id):
            return error_response(403, ["Forbidden"]), False
        rendered = self._rendered(message)
        if isinstance(rendered, list):
            return error_response(400, rendered), False
        stored = self._store(message, files, inbox_id, None, rendered)
        return Response.json(200, {"success": True, "message_ids": list(stored.message_ids)}), True

    def _batch(self, document: Any, inbox_id: str | None) -> tuple[Response, bool]:
        problem = _batch_shape_error(document)
        if problem:
            return error_response(400, [problem]), False
        base = document.get("base") or {}
        responses: list[dict[str, Any]] = []
        for index, item in enumerate(document["requests"]):
            if not isinstance(item, dict):
                responses.append({"success": False, "errors": ["request must be an object"]})
                continue
            message = wire.overlay(base, item)
            errors, files = wire.check(message)
            if not errors and self._forbidden(message, inbox_id):
                errors = ["Forbidden"]
            rendered = None if errors else self._rendered(message)
            if isinstance(rendered, list):
                errors = rendered
            if errors:
                responses.append({"success": False, "errors": errors})
                continue
            stored = self._store(message, files, inbox_id, index, rendered)
            responses.append({"success": True, "message_ids": list(stored.message_ids)})
        accepted = any(result["success"] for result in responses)
        return Response.json(200, {"success": True, "responses": responses}), accepted

    def _forbidden(self, message: dict[str, Any], inbox_id: str | None) -> bool:
        """A live send from a domain outside the configured verified ones."""
        if inbox_id is not None or self._verified is None:
            return False
        return domain_of(message["from"]["email"]) not in self._verified

    def _rendered(self, message: dict[str, Any]) -> dict[str, str] | list[str] | None:
        """A template send's rendered content (None without a template), or its errors."""
        if message.get("template_uuid") is None:
            return None
        return render_for_send(self.state, message)

    def _store(
        self,
        message: dict[str, Any],
        files: list[ReceivedAttachment],
        inbox_id: str | None,
        batch_index: int | None,
        rendered: dict[str, str] | None = None,
    ) -> ReceivedMessage:
        recipients = sum(len(message.get(field) or []) for field in ("to", "cc", "bcc"))
        ids = tuple(str(uuid.uuid4()) for _ in range(1 if inbox_id else recipients))
        received = ReceivedMessage(
            id=ids[0],
            provider=self.name,
            route="domain",
            payload=message,
            attachments=files,
            transport="json",
            received_at=datetime.now(UTC),
            domain=domain_of(message["from"]["email"]),
            inbox_id=inbox_id,
            batch_index=batch_index,
            message_ids=ids,
            rendered=rendered,
        )
        self.state.add_message(received)
        self.suppressions.after_send(received)
        return received


def _batch_shape_error(document: Any) -> str:
    if not isinstance(document, dict):
        return "request body must be a JSON object {base, requests}"
    requests = document.get("requests")
    if not isinstance(requests, list) or not requests:
        return "'requests' is required: an array of 1 to 500 messages"
    if len(requests) > wire.MAX_BATCH_REQUESTS:
        return f"'requests' has {len(requests)} messages; at most {wire.MAX_BATCH_REQUESTS}"
    base = document.get("base")
    if base is not None and not isinstance(base, dict):
        return "'base' must be an object"
    if base and any(field in base for field in ("to", "cc", "bcc")):
        return "'base' cannot carry recipients; put to, cc and bcc in each request"
    return ""
