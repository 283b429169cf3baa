"""Nylas v3 answers: the error envelope and the sent-message body.

Shared by the send endpoints (``nylas.py``) and the schedules endpoints
(``nylas_schedules.py``), so that every answer the sandbox gives in Nylas's
name has Nylas's shape (PROVIDERS.md, "Nylas API v3").
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import uuid
from collections.abc import Iterable
from typing import Any

from .httpd import Response
from .state import ReceivedAttachment, ReceivedMessage

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


def error_response(
    status: int,
    message: str,
    error_type: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """The Nylas error envelope ``{request_id, error: {type, message}}``."""
    if error_type is None:
        error_type = _ERROR_TYPES.get(status, "internal_error")
    envelope = {"request_id": request_id(), "error": {"type": error_type, "message": message}}
    return Response.json(status, envelope, headers)


def sent_message(message: ReceivedMessage) -> dict[str, Any]:
    """The 200 body of a send: ``{request_id, data}`` (plus ``grant_id`` on
    the grant route, and ``schedule_id`` for a scheduled grant send)."""
    payload = message.payload
    if message.route == "domain":
        sender = [payload["from"]]
    else:
        sender = payload.get("from") or [{"email": f"{message.grant_id}@grants.sandbox.invalid"}]
    rendered = message.rendered or {}
    body = rendered.get("html") or payload.get("body") or ""
    data: dict[str, Any] = {
        "id": message.id,
        "object": "message",
        "from": [_pair(p) for p in sender],
        "to": [_pair(p) for p in payload["to"]],
        "cc": [_pair(p) for p in payload.get("cc") or []],
        "bcc": [_pair(p) for p in payload.get("bcc") or []],
        "reply_to": [_pair(p) for p in payload.get("reply_to") or []],
        "subject": rendered.get("subject") or payload.get("subject") or "",
        "body": body,
        "snippet": _snippet(body, bool(payload.get("is_plaintext"))),
        "attachments": [_attachment_summary(a) for a in message.attachments],
        "tracking_options": _tracking_options(payload.get("tracking_options")),
    }
    if message.route == "domain":
        return {"request_id": request_id(), "data": data}
    data["grant_id"] = message.grant_id
    if message.schedule_id is not None:
        data["schedule_id"] = message.schedule_id
        data["send_at"] = payload["send_at"]
    return {"request_id": request_id(), "grant_id": message.grant_id, "data": data}


def new_id() -> str:
    """A random, URL-safe id in the style of Nylas message ids."""
    return base64.b32encode(secrets.token_bytes(15)).decode().lower()


def request_id() -> str:
    return str(uuid.uuid4())


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
