"""``GET /_sandbox/webhooks``: what the sandbox posted, for tools in another process.

Answers ``{"pending": n, "deliveries": [...]}``: how many posts are still to
be made (retries included), and every post made so far, oldest first, each
with the notification's provider, ``id`` and ``type``, the URL, the attempt
number, whether it was a seeded duplicate, the app's status and answer (or
the network error) and the body as posted (``payload``). A demo or a
benchmark polls it to learn when the app has been told everything.

Part of the sandbox's own endpoints (see ``inspection.py``): no
authentication, loopback only.
"""

from __future__ import annotations

from .httpd import Request, Response
from .routing import Route
from .webhook_emitter import WebhookEmitter


class WebhookInspectionAPI:
    name = "sandbox"
    path_prefix = "/_sandbox/webhooks"

    def __init__(self, emitter: WebhookEmitter) -> None:
        self._emitter = emitter

    def routes(self) -> list[Route]:
        return [Route("GET", "/_sandbox/webhooks", self.list_deliveries)]

    def error_response(self, status: int, message: str) -> Response:
        error_type = "not_found_error" if status == 404 else "method_not_allowed"
        return Response.json(status, {"error": {"type": error_type, "message": message}})

    def list_deliveries(self, request: Request) -> Response:
        deliveries = [delivery.describe() for delivery in self._emitter.log]
        return Response.json(200, {"pending": self._emitter.pending, "deliveries": deliveries})
