"""Nylas v3 send bodies: decoding, validation and attachments.

Turns the body of ``POST /v3/{domains|grants}/{...}/messages/send`` into a
:class:`Submission` (the message JSON plus its attachments as bytes) and
checks it the way Nylas does (PROVIDERS.md, "Nylas API v3"), so an adapter
that passes here sends requests the real service accepts. Every error names
the offending field, because the sandbox is where adapter bugs are found.

Two wire forms carry the same message:

``application/json``
    The whole message; attachments inline with base64 ``content``.
``multipart/form-data``
    Part ``message`` holds the JSON without attachment contents; each file
    is a further part named by its ``content_id`` or ``file{index}``.

How a multipart request's files become attachments, as Nylas reads them
(its SDKs send the ``message`` part without ``attachments`` and name each
file part by its ``content_id``, else ``file{index}``):

1. Each file part is one attachment, with the part's filename and
   Content-Type. Its name is its Content-ID, unless the name is ``file{N}``:
   such a part is a plain attachment with no Content-ID. A part with a
   Content-ID is inline. So an inline image sent as ``file0`` arrives as a
   plain attachment, and its ``cid:`` link in the HTML is broken.
2. ``message.attachments`` entries do not describe parts: an entry with
   base64 ``content`` is that attachment, in either form; an entry without
   content is refused (the file belongs in a part of its own). Nylas does not
   publish whether it refuses such an entry or ignores it; refusing is the
   stricter reading, so a client that passes here sends what the SDKs send.

Attachments come out in ``message.attachments`` order, then the file parts
in the order they were sent.

Unknown fields are ignored, as Nylas does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from .addresses import EMAIL as _EMAIL
from .multipart import FormPart, MultipartError, parse_form_data
from .state import ReceivedAttachment

MAX_JSON_BYTES = 3 * 1024 * 1024
MAX_MULTIPART_BYTES = 25 * 1024 * 1024
MAX_METADATA_KEYS = 50
MAX_METADATA_VALUE = 500
MAX_TRACKING_LABEL = 2048
MIN_SCHEDULE_AHEAD = 60
MAX_SCHEDULE_AHEAD = 30 * 24 * 3600
_FILE_PART = re.compile(r"file(\d+)\Z")
_DISPOSITIONS = ("inline", "attachment")
#: An attachment entry's required fields, and what the error adds.
_REQUIRED = {
    "content": (
        ": base64 in the entry, or, in multipart/form-data, the file as a part of its "
        "own, named by its content_id or file{N}."
    ),
    "content_type": ".",
    "filename": ".",
}


class InvalidRequest(ValueError):
    """A 400 ``invalid_request_error``; the message names the field."""


@dataclass(frozen=True)
class Submission:
    """A decoded body. ``error`` is set when it could not be decoded; the
    fingerprint then covers the raw bytes, so the error can still be cached
    under an Idempotency-Key and replayed."""

    transport: str
    fingerprint: str
    payload: Any = None
    parts: tuple[FormPart, ...] = ()
    error: str | None = None


def body_limit(transport: str) -> int:
    return MAX_MULTIPART_BYTES if transport == "multipart" else MAX_JSON_BYTES


def oversize_message(transport: str, length: int | None) -> str:
    size = f"{length} bytes" if length is not None else "too large"
    if transport == "multipart":
        return (
            f"Request body is {size}; multipart/form-data requests are limited to "
            f"25 MB ({MAX_MULTIPART_BYTES} bytes)."
        )
    return (
        f"Request body is {size}; JSON requests are limited to 3 MB ({MAX_JSON_BYTES} "
        "bytes). Send large attachments as multipart/form-data."
    )


def decode(body: bytes, transport: str, content_type_header: str, media_type: str) -> Submission:
    """Parse the body; never raises for bad input (see ``Submission.error``)."""

    def refused(error: str) -> Submission:
        return Submission(transport, _digest(b"raw", media_type.encode(), body), error=error)

    if transport == "multipart":
        try:
            parts = parse_form_data(body, content_type_header)
        except MultipartError as exc:
            return refused(str(exc))
        messages = [part for part in parts if part.name == "message"]
        if len(messages) != 1:
            return refused("multipart body needs exactly one 'message' part")
        files = tuple(part for part in parts if part.name != "message")
        try:
            payload = json.loads(messages[0].content)
        except ValueError as exc:
            return refused(f"message part: invalid JSON: {exc}")
        file_digests = (
            _digest(
                part.name.encode(),
                (part.filename or "").encode(),
                (part.content_type or "").encode(),
                hashlib.sha256(part.content).digest(),
            ).encode()
            for part in files
        )
        fingerprint = _digest(b"multipart", _canonical(payload), *file_digests)
        return Submission(transport, fingerprint, payload, files)
    if media_type != "application/json":
        return refused(
            "Content-Type must be application/json or multipart/form-data, not "
            f"{media_type or 'missing'!r}"
        )
    try:
        payload = json.loads(body)
    except ValueError as exc:
        return refused(f"invalid JSON: {exc}")
    return Submission(transport, _digest(b"json", _canonical(payload)), payload)


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _digest(*pieces: bytes) -> str:
    hasher = hashlib.sha256()
    for piece in pieces:
        hasher.update(len(piece).to_bytes(8, "big"))
        hasher.update(piece)
    return hasher.hexdigest()


def validate(payload: Any, route: str, now: float) -> None:
    """Raise :class:`InvalidRequest` for the first problem found."""
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    sender = payload.get("from")
    if route == "domain":
        if sender is None:
            raise InvalidRequest("from is required on the domain route: one object {email, name}.")
        if isinstance(sender, list):
            raise InvalidRequest(
                "from must be one object {email, name} on the domain route, not an array."
            )
        _participant(sender, "from")
    elif sender is not None:
        if not isinstance(sender, list) or len(sender) != 1:
            raise InvalidRequest(
                "from must be an array with exactly one {email, name} object on the grant route."
            )
        _participant(sender[0], "from[0]")
    if payload.get("to") is None:
        raise InvalidRequest("to is required: a non-empty array of {email, name} objects.")
    _participants(payload["to"], "to")
    if not payload["to"]:
        raise InvalidRequest("to must not be empty.")
    for name in ("cc", "bcc", "reply_to"):
        if payload.get(name) is not None:
            _participants(payload[name], name)
    for name in ("subject", "body", "reply_to_message_id"):
        _optional(payload, name, str, "a string")
    _optional(payload, "is_plaintext", bool, "true or false")
    if route == "grant":
        _optional(payload, "signature_id", str, "a string")
        _optional(payload, "use_draft", bool, "true or false")
    _metadata(payload.get("metadata"))
    _custom_headers(payload.get("custom_headers"))
    _send_at(payload.get("send_at"), now)
    _tracking_options(payload.get("tracking_options"))
    _template(payload.get("template"))


def _participants(value: Any, field: str) -> None:
    if not isinstance(value, list):
        raise InvalidRequest(f"{field} must be an array of {{email, name}} objects.")
    for index, item in enumerate(value):
        _participant(item, f"{field}[{index}]")


def _participant(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{field} must be an object {{email, name}}.")
    email = value.get("email")
    if not isinstance(email, str) or not email:
        raise InvalidRequest(f"{field}.email is required.")
    if not _EMAIL.match(email):
        raise InvalidRequest(f"{field}.email {email!r} is not a valid email address.")
    _optional(value, "name", str, "a string", prefix=f"{field}.")


def _optional(obj: dict, name: str, kind: type, described: str, prefix: str = "") -> None:
    value = obj.get(name)
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"{prefix}{name} must be {described}.")


def _metadata(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidRequest("metadata must be an object of string values.")
    if len(value) > MAX_METADATA_KEYS:
        raise InvalidRequest(f"metadata has {len(value)} keys; at most {MAX_METADATA_KEYS}.")
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidRequest(f"metadata.{key} must be a string.")
        if len(item) > MAX_METADATA_VALUE:
            raise InvalidRequest(
                f"metadata.{key} is {len(item)} characters; at most {MAX_METADATA_VALUE}."
            )


def _custom_headers(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise InvalidRequest("custom_headers must be an array of {name, value} objects.")
    for index, header in enumerate(value):
        field = f"custom_headers[{index}]"
        if not isinstance(header, dict):
            raise InvalidRequest(f"{field} must be an object {{name, value}}.")
        for key in ("name", "value"):
            if not isinstance(header.get(key), str):
                raise InvalidRequest(f"{field}.{key} must be a string.")
        if not header["name"]:
            raise InvalidRequest(f"{field}.name must not be empty.")


def _send_at(value: Any, now: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("send_at must be a Unix timestamp in whole seconds.")
    ahead = value - int(now)
    if ahead < MIN_SCHEDULE_AHEAD:
        raise InvalidRequest("send_at must be at least 1 minute in the future.")
    if ahead > MAX_SCHEDULE_AHEAD:
        raise InvalidRequest("send_at must be at most 30 days in the future.")


def _tracking_options(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidRequest("tracking_options must be an object {opens, links, label}.")
    for name in ("opens", "links"):
        _optional(value, name, bool, "true or false", prefix="tracking_options.")
    _optional(value, "label", str, "a string", prefix="tracking_options.")
    if len(value.get("label") or "") > MAX_TRACKING_LABEL:
        raise InvalidRequest(
            f"tracking_options.label is longer than {MAX_TRACKING_LABEL} characters."
        )


def _template(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        raise InvalidRequest("template must be an object {id, strict, variables}.")
    if not isinstance(value.get("id"), str) or not value["id"]:
        raise InvalidRequest("template.id is required.")
    _optional(value, "strict", bool, "true or false", prefix="template.")
    _optional(value, "variables", dict, "an object", prefix="template.")


def attachments(submission: Submission) -> list[ReceivedAttachment]:
    """The submission's attachments, validated, in the order described in
    the module docstring."""
    entries = submission.payload.get("attachments")
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise InvalidRequest("attachments must be an array of objects.")
    for index, entry in enumerate(entries):
        _attachment_entry(entry, index)
    result = [
        _from_entry(entry, _base64(entry["content"], index)) for index, entry in enumerate(entries)
    ]
    result.extend(_from_part(part) for part in submission.parts)
    return result


def _attachment_entry(entry: Any, index: int) -> None:
    field = f"attachments[{index}]"
    if not isinstance(entry, dict):
        raise InvalidRequest(f"{field} must be an object.")
    for name in ("content", "content_type", "filename", "content_id", "content_disposition"):
        value = entry.get(name)
        if value is None and name in _REQUIRED:
            raise InvalidRequest(f"{field}.{name} is required{_REQUIRED[name]}")
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{field}.{name} must be a string.")
    if entry.get("content_disposition") not in (None, *_DISPOSITIONS):
        raise InvalidRequest(f"{field}.content_disposition must be 'inline' or 'attachment'.")
    if entry["filename"] == "":
        raise InvalidRequest(f"{field}.filename must not be empty.")


def _from_entry(entry: dict, content: bytes) -> ReceivedAttachment:
    content_id = entry.get("content_id")
    return ReceivedAttachment(
        filename=entry["filename"],
        content_type=entry["content_type"],
        content_id=content_id,
        content_disposition=entry.get("content_disposition")
        or ("inline" if content_id else "attachment"),
        content=content,
    )


def _from_part(part: FormPart) -> ReceivedAttachment:
    """A file part: its name is its Content-ID, unless it is ``file{N}``."""
    if not part.filename:
        raise InvalidRequest(f"file part {part.name!r} has no filename.")
    content_id = None if _FILE_PART.match(part.name) else part.name
    return ReceivedAttachment(
        filename=part.filename,
        content_type=part.content_type or "application/octet-stream",
        content_id=content_id,
        content_disposition="inline" if content_id else "attachment",
        content=part.content,
    )


def _base64(value: str, index: int) -> bytes:
    # Nylas, like Go's base64 decoder, skips line breaks inside the text.
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"attachments[{index}].content is not valid base64.") from None
