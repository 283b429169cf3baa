"""MailerLogic's send endpoint, emulated (PROVIDERS.md, "MailerLogic").

``POST /api/v1/send`` with ``X-API-Key``; the body is checked as in
``mailerlogic_payload.py``. Answers:

* 200 ``{to, submitted_at, message_id, email_id, status: "queued", message}``;
* errors ``{error, message[, reason]}`` with the statuses MailerLogic
  documents: 400 ``validation_error`` (``reason`` names the field), 403
  ``invalid_api_key`` for a missing or unknown key and ``sender_not_allowed``
  for a ``from`` outside the sending domain, 404 ``domain_not_found`` for a
  domain that is not one of the server's ``verified_domains`` (when it is
  given any), 500 ``internal_error``.

Where MailerLogic documents no behaviour the sandbox chooses, and says so:
without ``domain`` the first verified domain is used, else the domain of
``from``; ``from`` must be at the sending domain or one of its subdomains.

Faults act as on every emulated send (``send_steps.py``): filters name the
provider ``"mailerlogic"`` and the route ``"domain"``. MailerLogic has no
idempotency keys: every request is processed anew.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from . import mailerlogic_payload as wire
from .addresses import domain_of, mailbox
from .fault_plan import REFUSALS
from .httpd import BodyTooLarge, Request, Response
from .routing import Route
from .send_steps import delay_or_withhold, injected_refusal, planned_refusal
from .state import ReceivedMessage, SandboxState

_ERRORS = {
    400: "validation_error",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    429: "rate_limited",
}


def error_response(
    status: int,
    message: str,
    error: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    reason: str | None = None,
) -> Response:
    """MailerLogic's error body ``{error, message[, reason]}``."""
    body = {"error": error or _ERRORS.get(status, "internal_error"), "message": message}
    if reason is not None:
        body["reason"] = reason
    return Response.json(status, body, headers)


class MailerLogicEmulator:
    name = "mailerlogic"
    path_prefix = "/api/v1/"

    def __init__(
        self,
        state: SandboxState,
        api_keys: Iterable[str],
        verified_domains: Iterable[str] | None = None,
    ) -> None:
        self.state = state
        self._keys = tuple(api_keys)
        self._verified = None if verified_domains is None else [d.lower() for d in verified_domains]

    def routes(self) -> list[Route]:
        return [Route("POST", "/api/v1/send", self.send)]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    def authorized(self, request: Request) -> bool:
        offered = request.headers.get("X-API-Key", "").strip().encode()
        if not offered:
            return False
        # Check every key so the time taken does not say which one was close.
        return any([hmac.compare_digest(offered, key.encode()) for key in self._keys])

    def send(self, request: Request) -> Response:
        request.transport = "json"
        refusal = injected_refusal(self.state, self.name, "domain", request, error_response)
        if refusal is not None:
            return refusal
        if not self.authorized(request):
            return error_response(
                403, "Send a valid API key in the X-API-Key header.", "invalid_api_key"
            )
        try:
            body = request.read_body(wire.MAX_BODY_BYTES)
        except BodyTooLarge:
            return error_response(
                400, "The request is too large: attachments are limited to 25 MB in all."
            )
        identity = hashlib.sha256(body).hexdigest()
        drawn = self.state.planned_faults.draw(f"body\0mailerlogic:{identity}")
        if drawn is not None and drawn[0] in REFUSALS:
            return planned_refusal(self.state, request, *drawn, error_response)
        self.state.pause(self.state.latency)
        response = self._process(request, body)
        if response.status != 200:
            return response
        return delay_or_withhold(self.state, self.name, "domain", request, response, drawn)

    def _process(self, request: Request, body: bytes) -> Response:
        if request.content_type != "application/json":
            return error_response(400, "Content-Type must be application/json.", reason="body")
        try:
            message = json.loads(body)
        except ValueError as exc:
            return error_response(400, f"Invalid JSON: {exc}", reason="body")
        try:
            wire.validate(message)
            files = wire.attachments(message)
        except wire.InvalidRequest as exc:
            return error_response(400, str(exc), reason=exc.field)
        domain, problem = self._domain(message)
        if problem is not None:
            return problem
        message_id, email_id = str(uuid.uuid4()), f"em_{uuid.uuid4().hex}"
        self.state.add_message(
            ReceivedMessage(
                id=message_id,
                provider=self.name,
                route="domain",
                payload=message,
                attachments=files,
                transport="json",
                received_at=datetime.now(UTC),
                domain=domain,
                message_ids=(message_id,),
            )
        )
        answer = {
            "to": message["to"],
            "submitted_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message_id": message_id,
            "email_id": email_id,
            "status": "queued",
            "message": "Email queued for delivery.",
        }
        return Response.json(200, answer)

    def _domain(self, message: dict[str, Any]) -> tuple[str, Response | None]:
        """The sending domain, or the error that refuses the message."""
        sender = mailbox(message["from"])[1] if message.get("from") else ""
        domain = (message.get("domain") or "").lower()
        if not domain:
            domain = self._verified[0] if self._verified else domain_of(sender)
        if not domain:
            return "", error_response(
                400, "domain is required: the account has no verified domain.", reason="domain"
            )
        if self._verified is not None and domain not in self._verified:
            return domain, error_response(
                404, f"Domain {domain} is not verified for this account.", "domain_not_found"
            )
        sender_domain = domain_of(sender) if sender else domain
        if sender_domain != domain and not sender_domain.endswith(f".{domain}"):
            return domain, error_response(
                403, f"from must be an address at {domain}.", "sender_not_allowed"
            )
        return domain, None
