"""MailerLogic send bodies: validation and attachments (PROVIDERS.md → MailerLogic).

``POST /api/v1/send`` takes a JSON object with addresses as strings
(``ann@example.com`` or ``"Ann" <ann@example.com>``):

``domain`` (optional: the first verified domain), ``from`` (optional:
``noreply@<domain>``), ``to`` (required, **one** recipient), ``reply_to``
(one), ``cc`` and ``bcc`` (arrays), ``subject`` (required), ``html``,
``text``, ``track_opens``, ``track_clicks`` (booleans), ``headers``
(string values), ``tag``, ``stream_type`` (``transactional`` | ``broadcast``
| ``shared``), ``metadata`` (an object), ``attachments`` (``{filename,
content, contentType, encoding}``; base64, at most 10 MB a file and 25 MB in
all) and ``icalEvent`` (RFC 5545 text). Unknown fields are ignored.

The first problem found is reported, as MailerLogic's error body holds one:
:class:`InvalidRequest` carries the message and the field (its ``reason``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .addresses import mailbox
from .state import ReceivedAttachment

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS_BYTES = 25 * 1024 * 1024
#: Base64 of 25 MB of files plus the rest of the message.
MAX_BODY_BYTES = 40 * 1024 * 1024
STREAM_TYPES = ("transactional", "broadcast", "shared")


class InvalidRequest(ValueError):
    """A 400 ``validation_error``; ``field`` names what is wrong."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def validate(message: Any) -> None:
    """Raise :class:`InvalidRequest` for the first problem in ``message``."""
    if not isinstance(message, dict):
        raise InvalidRequest("The request body must be a JSON object.", "body")
    for field in ("domain", "subject", "html", "text", "tag", "icalEvent"):
        _optional(message, field, str, "a string")
    for field in ("track_opens", "track_clicks"):
        _optional(message, field, bool, "true or false")
    _optional(message, "metadata", dict, "an object")
    if not message.get("subject"):
        raise InvalidRequest("subject is required.", "subject")
    to = message.get("to")
    if isinstance(to, list):
        raise InvalidRequest("to is one recipient as a string, not an array.", "to")
    if to is None:
        raise InvalidRequest("to is required: one recipient.", "to")
    _address(to, "to")
    for field in ("from", "reply_to"):
        if message.get(field) is not None:
            _address(message[field], field)
    for field in ("cc", "bcc"):
        values = message.get(field)
        if values is None:
            continue
        if not isinstance(values, list):
            raise InvalidRequest(f"{field} must be an array of addresses.", field)
        for index, value in enumerate(values):
            _address(value, f"{field}[{index}]")
    headers = message.get("headers")
    if headers is not None and (
        not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values())
    ):
        raise InvalidRequest("headers must be an object of string values.", "headers")
    stream_type = message.get("stream_type")
    if stream_type is not None and stream_type not in STREAM_TYPES:
        raise InvalidRequest(
            f"stream_type must be one of {', '.join(STREAM_TYPES)}.", "stream_type"
        )
    ical = message.get("icalEvent")
    if ical is not None and "BEGIN:VCALENDAR" not in ical:
        raise InvalidRequest(
            "icalEvent must be an RFC 5545 calendar (BEGIN:VCALENDAR).", "icalEvent"
        )


def attachments(message: dict[str, Any]) -> list[ReceivedAttachment]:
    """The message's attachments, decoded and within MailerLogic's limits."""
    entries = message.get("attachments") or []
    if not isinstance(entries, list):
        raise InvalidRequest("attachments must be an array.", "attachments")
    files, total = [], 0
    for index, entry in enumerate(entries):
        field = f"attachments[{index}]"
        if not isinstance(entry, dict):
            raise InvalidRequest(f"{field} must be an object.", field)
        for name in ("filename", "content"):
            if not isinstance(entry.get(name), str) or not entry[name]:
                raise InvalidRequest(f"{field}.{name} is required.", f"{field}.{name}")
        _optional(entry, "contentType", str, "a string", prefix=f"{field}.")
        if entry.get("encoding", "base64") != "base64":
            raise InvalidRequest(f"{field}.encoding must be 'base64'.", f"{field}.encoding")
        try:
            content = base64.b64decode(entry["content"], validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest(f"{field}.content is not base64.", f"{field}.content") from None
        if len(content) > MAX_ATTACHMENT_BYTES:
            raise InvalidRequest(f"{field} is over 10 MB.", f"{field}.content")
        total += len(content)
        files.append(
            ReceivedAttachment(
                filename=entry["filename"],
                content_type=entry.get("contentType") or "application/octet-stream",
                content_id=None,
                content_disposition="attachment",
                content=content,
            )
        )
    if total > MAX_ATTACHMENTS_BYTES:
        raise InvalidRequest("Attachments are over 25 MB in all.", "attachments")
    return files


def _optional(obj: dict[str, Any], name: str, kind: type, described: str, prefix: str = "") -> None:
    value = obj.get(name)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"{prefix}{name} must be {described}.", f"{prefix}{name}")


def _address(value: Any, field: str) -> tuple[str, str]:
    found = mailbox(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidRequest(
            f"{field} must be one address such as 'ann@example.com' or "
            "'\"Ann\" <ann@example.com>'.",
            field,
        )
    return found
