"""Mailtrap send bodies: validation and attachments (PROVIDERS.md → Mailtrap).

A message is checked the way Mailtrap's sending API checks it, and every
problem is reported at once, as Mailtrap's ``errors`` array does, in
Mailtrap's own words where its docs give them ("'from' is required",
"must specify either text or html body").

A message is one of two forms:

* content: ``subject`` and ``text`` and/or ``html`` (non-empty), optional
  ``category``;
* template: ``template_uuid`` (a UUID) and optional ``template_variables``,
  with none of subject, text, html or category.

Both take ``from`` (one ``{email, name}``), ``to``/``cc``/``bcc`` (arrays of
up to 1000 each, at least one recipient in all), ``reply_to`` (one object),
``headers`` and ``custom_variables`` (string values; numbers and booleans
are let through, as Mailtrap's own SDKs send them), and ``attachments``
``[{content (base64), filename, type, disposition, content_id}]``. Unknown
fields are ignored.

A batch item is its ``base`` overlaid with the item's own fields (an item's
field replaces the base's whole), then checked as a message.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from .addresses import is_email
from .state import ReceivedAttachment

#: /api/send: Mailtrap takes emails up to 10 MB; the JSON request is about as large.
MAX_SEND_BYTES = 10_000_000
#: /api/batch: at most 50 MB and 500 messages a call.
MAX_BATCH_BYTES = 50_000_000
MAX_BATCH_REQUESTS = 500
MAX_RECIPIENTS = 1000
MAX_CATEGORY = 255
_DISPOSITIONS = ("attachment", "inline")
_CONTENT_FIELDS = ("subject", "text", "html", "category")


def check(message: Any) -> tuple[list[str], list[ReceivedAttachment]]:
    """The errors in ``message`` (empty when Mailtrap would accept it) and,
    when there are none, its attachments decoded."""
    if not isinstance(message, dict):
        return ["request body must be a JSON object"], []
    errors: list[str] = []
    sender = message.get("from")
    if sender is None:
        errors.append("'from' is required")
    elif not _address_ok(sender):
        errors.append("'from' address is invalid")
    recipients = 0
    for field in ("to", "cc", "bcc"):
        value = message.get(field)
        if value is None:
            continue
        if not isinstance(value, list):
            errors.append(f"'{field}' must be an array of address objects")
            continue
        recipients += len(value)
        if len(value) > MAX_RECIPIENTS:
            errors.append(f"'{field}' has {len(value)} addresses; at most {MAX_RECIPIENTS}")
        errors.extend(
            f"'{field}' address is invalid (item {i})"
            for i, item in enumerate(value)
            if not _address_ok(item)
        )
    if not recipients:
        errors.append("'to', 'cc' or 'bcc' address is required")
    reply_to = message.get("reply_to")
    if reply_to is not None and not _address_ok(reply_to):
        errors.append("'reply_to' must be one address object {email, name}")
    if message.get("template_uuid") is not None:
        errors.extend(_template_errors(message))
    else:
        errors.extend(_content_errors(message))
    errors.extend(_string_map(message, "headers", allow_scalars=False))
    errors.extend(_string_map(message, "custom_variables", allow_scalars=True))
    files, attachment_errors = _attachments(message.get("attachments"))
    errors.extend(attachment_errors)
    return errors, files if not errors else []


def overlay(base: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """A batch item's message: the base's fields, each replaced by the item's."""
    return {**base, **item}


def _address_ok(value: Any) -> bool:
    if not isinstance(value, dict) or not is_email(value.get("email")):
        return False
    return value.get("name") is None or isinstance(value["name"], str)


def _template_errors(message: dict[str, Any]) -> list[str]:
    errors = []
    try:
        uuid.UUID(str(message["template_uuid"]))
    except ValueError:
        errors.append("'template_uuid' must be a template's UUID")
    errors.extend(
        f"'{field}' is not allowed with 'template_uuid'"
        for field in _CONTENT_FIELDS
        if message.get(field) is not None
    )
    variables = message.get("template_variables")
    if variables is not None and not isinstance(variables, dict):
        errors.append("'template_variables' must be an object")
    return errors


def _content_errors(message: dict[str, Any]) -> list[str]:
    errors = []
    subject = message.get("subject")
    if not isinstance(subject, str) or not subject:
        errors.append("'subject' is required")
    bodies = [message.get("text"), message.get("html")]
    if any(body is not None and not isinstance(body, str) for body in bodies):
        errors.append("'text' and 'html' must be strings")
    elif not any(bodies):
        errors.append("must specify either text or html body")
    category = message.get("category")
    if category is not None and (not isinstance(category, str) or len(category) > MAX_CATEGORY):
        errors.append(f"'category' must be a string of at most {MAX_CATEGORY} characters")
    return errors


def _string_map(message: dict[str, Any], field: str, *, allow_scalars: bool) -> list[str]:
    value = message.get(field)
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"'{field}' must be an object"]
    kinds = (str, int, float, bool) if allow_scalars else (str,)
    bad = sorted(key for key, item in value.items() if not isinstance(item, kinds))
    return [f"'{field}' value of '{key}' must be a string" for key in bad]


def _attachments(entries: Any) -> tuple[list[ReceivedAttachment], list[str]]:
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        return [], ["'attachments' must be an array"]
    files, errors = [], []
    for index, entry in enumerate(entries):
        where = f"'attachments[{index}]'"
        if not isinstance(entry, dict):
            errors.append(f"{where} must be an object")
            continue
        if not isinstance(entry.get("filename"), str) or not entry["filename"]:
            errors.append(f"{where} 'filename' is required")
        for name in ("type", "content_id"):
            if entry.get(name) is not None and not isinstance(entry[name], str):
                errors.append(f"{where} '{name}' must be a string")
        disposition = entry.get("disposition", "attachment")
        if disposition not in _DISPOSITIONS:
            errors.append(f"{where} 'disposition' must be 'attachment' or 'inline'")
        content = _base64(entry.get("content"))
        if content is None:
            errors.append(f"{where} 'content' must be base64")
            continue
        if not errors:
            files.append(
                ReceivedAttachment(
                    filename=entry["filename"],
                    content_type=entry.get("type") or "application/octet-stream",
                    content_id=entry.get("content_id"),
                    content_disposition=disposition,
                    content=content,
                )
            )
    return files, errors


def _base64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
