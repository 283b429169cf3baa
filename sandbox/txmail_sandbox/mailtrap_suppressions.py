"""Mailtrap's suppression list, emulated (PROVIDERS.md, "Mailtrap streams and suppressions").

``GET /api/accounts/{account_id}/suppressions`` (optional ``?email=``)
answers a JSON array of at most 1,000 entries, newest first, no paging;
``DELETE /api/accounts/{account_id}/suppressions/{id}`` removes one and
answers it (404 for an unknown id). Same token as sending.

Like Mailtrap, the sandbox suppresses an address itself: after its mailbox
simulator hard-bounces a recipient (``bounce@…``, "hard bounce") or the
recipient complains (``complaint@…``, "spam complaint"), whatever the cause
would be at a real server. Tests add entries of any type and stream with
:meth:`SuppressionList.add` (``SandboxServer.add_mailtrap_suppression``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .addresses import domain_of
from .httpd import Request, Response
from .mailbox_simulator import BOUNCE_DIAGNOSTIC, outcome
from .mailtrap_account import account_api
from .mailtrap_account import error as _error
from .routing import Route
from .state import ReceivedMessage

#: Mailtrap answers at most this many entries, without paging.
MAX_LISTED = 1000
TYPES = ("hard bounce", "spam complaint", "unsubscription", "manual import")
STREAMS = ("transactional", "bulk")


class SuppressionList:
    """The account's suppressions, thread-safe, emptied with the sandbox's reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}

    def add(
        self,
        email: str,
        type: str = "manual import",
        sending_stream: str = "transactional",
        **message_fields: Any,
    ) -> dict[str, Any]:
        """Add an entry (one per address and stream, as at Mailtrap); returns it."""
        if type not in TYPES or sending_stream not in STREAMS:
            raise ValueError(f"type is one of {TYPES}, sending_stream one of {STREAMS}")
        with self._lock:
            for entry in self._entries.values():
                if entry["email"] == email.lower() and entry["sending_stream"] == sending_stream:
                    return dict(entry)
            entry = {
                "id": str(uuid.uuid4()),
                "type": type,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "email": email.lower(),
                "sending_stream": sending_stream,
                "domain_name": message_fields.pop("domain_name", None),
                "message_bounce_category": None,
                "message_category": None,
                "message_client_ip": None,
                "message_created_at": None,
                "message_esp_response": None,
                "message_esp_server_type": None,
                "message_outgoing_ip": None,
                "message_recipient_mx_name": None,
                "message_sender_email": None,
                "message_subject": None,
                **message_fields,
            }
            self._entries[entry["id"]] = entry
            return dict(entry)

    def listed(self, email: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            entries = [dict(e) for e in self._entries.values()]
        if email is not None:
            entries = [e for e in entries if e["email"] == email.lower()]
        entries.sort(key=lambda e: e["created_at"], reverse=True)
        return entries[:MAX_LISTED]

    def remove(self, entry_id: str) -> dict[str, Any] | None:
        with self._lock:
            return self._entries.pop(entry_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def after_send(self, message: ReceivedMessage) -> None:
        """What Mailtrap adds after a live send: the simulator's bounces and complaints."""
        if message.provider != "mailtrap" or message.inbox_id is not None:
            return
        payload = message.payload
        for field in ("to", "cc", "bcc"):
            for recipient in payload.get(field) or []:
                fate = outcome(recipient["email"])
                if fate not in ("bounced", "complained"):
                    continue
                self.add(
                    recipient["email"],
                    "hard bounce" if fate == "bounced" else "spam complaint",
                    domain_name=domain_of(payload["from"]["email"]),
                    message_sender_email=payload["from"]["email"],
                    message_subject=payload.get("subject"),
                    message_esp_response=BOUNCE_DIAGNOSTIC if fate == "bounced" else None,
                    message_bounce_category="invalid_recipient" if fate == "bounced" else None,
                )


class MailtrapSuppressionsAPI:
    def __init__(self, entries: SuppressionList, authorized: Callable[[Request], bool]) -> None:
        self.entries = entries
        self._authorized = authorized

    def routes(self) -> list[Route]:
        many = "/api/accounts/{account_id}/suppressions"
        return [
            Route("GET", many, self._auth(self.list_entries)),
            Route("DELETE", many + "/{suppression_id}", self._auth(self.delete)),
        ]

    def _auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        return account_api(self._authorized, handler)

    def list_entries(self, request: Request) -> Response:
        return Response.json(200, self.entries.listed(request.query.get("email")))

    def delete(self, request: Request, suppression_id: str) -> Response:
        removed = self.entries.remove(suppression_id)
        if removed is None:
            return _error(404, ["Not found"])
        return Response.json(200, removed)
