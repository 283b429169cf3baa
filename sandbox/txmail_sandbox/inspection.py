"""The sandbox's own endpoints, for tools in another process (the demo).

``GET /_sandbox/health``
    ``{"ok": true}`` once the server answers.
``GET /_sandbox/messages``
    The accepted messages, oldest first, as JSON. Attachments are described
    (filename, content type, content id, disposition, size, sha256) rather
    than included, and base64 ``content`` is left out of the payload for the
    same reason. A cancelled scheduled send has ``cancelled: true`` and its
    ``cancelled_at``.
``GET /_sandbox/stats``
    ``{"messages": n, "requests": n, "faults": {kind: n, ...}}``: accepted
    messages (cancelled ones included), requests answered so far (this one
    excluded), and planned faults given per kind. Cheap to poll, for
    benchmarks and fault-storm tests running the sandbox in another process.
``DELETE /_sandbox/messages``
    Forget everything, like :meth:`SandboxServer.reset`; answers 204.

These endpoints have no authentication: the sandbox is a development tool
meant to listen on loopback only. They answer only requests whose ``Host``
is a loopback name (``localhost``, ``127.0.0.1`` or ``[::1]``, with or
without a port) and refuse any other with 400: a web page on another site
that rebinds its own name to 127.0.0.1 (DNS rebinding) still sends its own
name as ``Host``, so it cannot read the mail sent in development.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .httpd import Request, Response
from .routing import Route
from .state import ReceivedMessage, SandboxState

_ERROR_TYPES = {400: "invalid_host", 404: "not_found_error", 405: "method_not_allowed"}

#: Where the sandbox's own endpoints live (this API's and the webhook log's).
PREFIX = "/_sandbox/"
_LOOPBACK_HOST = re.compile(r"(?:localhost|127\.0\.0\.1|\[::1\])(?::\d{1,5})?", re.IGNORECASE)


def foreign_host(request: Request) -> str | None:
    """Why a request for the sandbox's own endpoints is refused (its Host), or None."""
    if not request.path.startswith(PREFIX):
        return None
    host = request.headers.get("Host", "")
    if _LOOPBACK_HOST.fullmatch(host):
        return None
    return (
        f"Host {host!r} is not a loopback name: the sandbox's own endpoints answer "
        "localhost, 127.0.0.1 and [::1] only."
    )


class InspectionAPI:
    name = "sandbox"
    path_prefix = PREFIX

    def __init__(self, state: SandboxState, reset: Callable[[], None]) -> None:
        self.state = state
        self._reset = reset

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/_sandbox/health", self.health),
            Route("GET", "/_sandbox/messages", self.list_messages),
            Route("DELETE", "/_sandbox/messages", self.delete_messages),
            Route("GET", "/_sandbox/stats", self.stats),
        ]

    def error_response(self, status: int, message: str) -> Response:
        error_type = _ERROR_TYPES.get(status, "sandbox_error")
        return Response.json(status, {"error": {"type": error_type, "message": message}})

    def health(self, request: Request) -> Response:
        return Response.json(200, {"ok": True})

    def list_messages(self, request: Request) -> Response:
        return Response.json(200, [describe(message) for message in self.state.messages])

    def delete_messages(self, request: Request) -> Response:
        self._reset()
        return Response(204, content_type=None)

    def stats(self, request: Request) -> Response:
        return Response.json(200, self.state.stats())


def describe(message: ReceivedMessage) -> dict[str, Any]:
    payload = dict(message.payload)
    if isinstance(payload.get("attachments"), list):
        payload["attachments"] = [
            {key: value for key, value in entry.items() if key != "content"}
            if isinstance(entry, dict)
            else entry
            for entry in payload["attachments"]
        ]
    return {
        "id": message.id,
        "provider": message.provider,
        "route": message.route,
        "domain": message.domain,
        "grant_id": message.grant_id,
        "schedule_id": message.schedule_id,
        "cancelled": message.cancelled,
        "cancelled_at": message.cancelled_at.isoformat() if message.cancelled_at else None,
        "idempotency_key": message.idempotency_key,
        "message_ids": list(message.message_ids) or [message.id],
        "inbox_id": message.inbox_id,
        "batch_index": message.batch_index,
        "transport": message.transport,
        "received_at": message.received_at.isoformat(),
        "payload": payload,
        "rendered": message.rendered,
        "attachments": [attachment.describe() for attachment in message.attachments],
    }
