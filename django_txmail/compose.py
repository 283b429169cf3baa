"""Turn a ``django.core.mail.EmailMessage`` into a validated OutboundEmail.

Everything Django's own SMTP backend would put in the MIME message is mapped
here: addresses with display names (non-ASCII names, IDN domains), subject,
bodies, alternatives, attachments (tuples, ``EmailAttachment``, MIME parts),
inline images, extra headers with Django's override rules, and lazy strings.
So are the message extras (``metadata``, ``tags``, ``send_at``...).

Anything wrong raises an ``InvalidMessage`` subclass *before* anything is
recorded or sent.
"""

from __future__ import annotations

import functools
import json
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from email.headerregistry import HeaderRegistry
from email.message import Message as MIMEMessage
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.encoding import force_str, punycode
from django.utils.functional import Promise

from django_txmail.conf import DEFAULT_STREAM, get_settings
from django_txmail.exceptions import HeaderInjection, InvalidMessage
from django_txmail.flow import DEFAULT_PRIORITY, priority_rank
from django_txmail.outbound_email import MAX_IDEMPOTENCY_KEY, Address, Attachment, OutboundEmail
from django_txmail.stored_templates.render import RenderedTemplate, json_variables, render_template

_header_registry = HeaderRegistry()
# RFC 5322 field names: printable US-ASCII except colon.
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
# Headers the provider builds from the message itself; setting them would
# corrupt it (or, for Resent-Bcc, reveal hidden recipients).
_RESERVED_HEADERS = {
    "subject",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "resent-bcc",
}
_MIMETYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")


def _checked_mimetype(filename: str, mimetype: str) -> str:
    _no_line_breaks(f"The content type of attachment {filename!r}", mimetype)
    if len(mimetype) > 255 or not _MIMETYPE.match(mimetype):
        raise InvalidMessage(
            f"Attachment {filename!r} has the content type {mimetype[:60]!r}; "
            "use a MIME type such as 'application/pdf'."
        )
    return mimetype


def _valid_unicode(what: str, text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidMessage(f"{what} is not valid Unicode (a lone surrogate).") from None
    return text


def _attachment_filename(filename: str) -> str:
    """A filename goes into a MIME header: one line of valid Unicode."""
    return _valid_unicode(
        f"The attachment filename {filename[:60]!r}",
        _no_line_breaks("An attachment filename", filename),
    )


def _no_line_breaks(what: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\0" in value:
        raise HeaderInjection(
            f"{what} contains a line break ({value[:60]!r}); header values must be one line."
        )
    return value


def parse_addresses(what: str, value: Any) -> list[Address]:
    """Parse one Django address entry ("Name <a@b>", possibly several, comma-separated)."""
    return list(_parsed(what, _no_line_breaks(what, force_str(value).strip())))


#: An ASCII address with nothing a header parser would have to read (no quotes,
#: comments, groups or dots in the name), bare or after a name of plain words:
#: taken apart directly instead of parsed as a header.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_BARE_ADDRESS = re.compile(
    rf"(?:(?P<name>{_ATEXT}+(?: {_ATEXT}+)*) <)?"
    rf"(?P<username>[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+)@(?P<domain>[A-Za-z0-9.-]+)"
    r"(?(name)>)"
)


@functools.lru_cache(maxsize=4096)
def _parsed(what: str, text: str) -> tuple[Address, ...]:
    """The parse of one entry; cached, as the same From address comes on every message."""
    if not text:
        raise InvalidMessage(f"{what} has an empty address.")
    plain = _BARE_ADDRESS.fullmatch(text)
    if plain:
        username, domain, name = plain.group("username", "domain", "name")
        return (_address(what, text, username, domain, name or ""),)
    try:
        header = _header_registry("To", text)
        groups = header.groups
    except (IndexError, ValueError, TypeError):  # the stdlib parser's ways of giving up
        groups, header = (), None
    addresses = [a for group in groups for a in group.addresses]
    if header is None or header.defects or not addresses or any(g.display_name for g in groups):
        raise InvalidMessage(
            f"{what} {text!r} is not a valid address; write it as 'user@example.com' or "
            "'Display Name <user@example.com>' (quote names containing commas)."
        )
    return tuple(
        _address(what, text, addr.username, addr.domain, addr.display_name or "")
        for addr in addresses
    )


def _address(what: str, text: str, username: str, domain: str, name: str) -> Address:
    """One parsed mailbox, its domain IDNA-encoded, refused unless deliverable."""
    if not username or not domain:
        raise InvalidMessage(f"{what} {text!r} is missing the part before or after '@'.")
    try:
        domain = punycode(domain.lower())
    except UnicodeError:
        raise InvalidMessage(f"{what} {text!r} has an invalid domain.") from None
    spec = f"{username}@{domain}"
    if "." not in domain and not domain.startswith("["):
        raise InvalidMessage(
            f"{what} {text!r} has no dot in its domain; providers only deliver to "
            "Internet domains (not e.g. 'localhost')."
        )
    try:
        validate_email(spec)
    except ValidationError:
        raise InvalidMessage(f"{what} {text!r} is not a valid email address.") from None
    return Address(email=spec, name=name)


def _address_list(what: str, values: Any) -> list[Address]:
    return [a for value in values or () for a in parse_addresses(what, value)]


def _one_address(what: str, value: Any) -> Address:
    addresses = parse_addresses(what, value)
    if len(addresses) != 1:
        raise InvalidMessage(f"{what} must be exactly one address, got {len(addresses)}.")
    return addresses[0]


def _attachment_from_tuple(filename: Any, content: Any, mimetype: Any) -> Attachment:
    filename = _attachment_filename(force_str(filename) if filename else "")
    if not mimetype:
        mimetype = (filename and mimetypes.guess_type(filename)[0]) or "application/octet-stream"
    mimetype = force_str(mimetype)
    if isinstance(content, str) and mimetype.startswith("text/") and "charset" not in mimetype:
        mimetype = f"{mimetype}; charset=utf-8"
    if isinstance(content, EmailMessage):
        content = content.message().as_bytes()
    elif isinstance(content, MIMEMessage):
        content = content.as_bytes()
    elif isinstance(content, str):
        content = content.encode("utf-8")
    elif isinstance(content, bytearray | memoryview):
        content = bytes(content)
    if not isinstance(content, bytes):
        raise InvalidMessage(
            f"Attachment {filename!r} has content of type {type(content).__name__}; "
            "use bytes or str."
        )
    return Attachment.from_bytes(
        content, filename=filename, mimetype=_checked_mimetype(filename, mimetype)
    )


def _attachment_from_mime(part: MIMEMessage) -> Attachment:
    """A MIME part attached directly (inline images by Content-ID, 6.x MIMEPart)."""
    if part.is_multipart():
        raise InvalidMessage(
            "A multipart MIME part cannot be attached; attach its files one by one."
        )
    content = part.get_payload(decode=True)
    if not isinstance(content, bytes):
        raise InvalidMessage("A MIME part attachment has no decodable content.")
    content_id = _no_line_breaks("Content-ID", str(part.get("Content-ID", ""))).strip()
    content_id = content_id.removeprefix("<").removesuffix(">")
    disposition = part.get_content_disposition()
    inline = bool(content_id) and disposition != "attachment"
    filename = _attachment_filename(part.get_filename() or "")
    if not filename and content_id:
        ext = mimetypes.guess_extension(part.get_content_type()) or ""
        filename = f"{content_id.split('@')[0]}{ext}"
    mimetype = part.get_content_type()
    if charset := part.get_content_charset():
        mimetype = f"{mimetype}; charset={charset}"
    return Attachment.from_bytes(
        content,
        filename=filename,
        mimetype=mimetype,
        content_id=content_id,
        inline=inline,
    )


def _attachments(msg: EmailMessage) -> list[Attachment]:
    result = []
    for item in msg.attachments:
        if isinstance(item, MIMEMessage):
            result.append(_attachment_from_mime(item))
        elif isinstance(item, tuple | list) and len(item) == 3:
            result.append(_attachment_from_tuple(*item))
        else:
            raise InvalidMessage(
                f"An attachment is {type(item).__name__} {str(item)[:40]!r}; attach a "
                "(filename, content, mimetype) tuple or a MIME part (msg.attach())."
            )
    return result


def _bodies(msg: EmailMessage) -> tuple[str | None, str | None, list[tuple[str, str]]]:
    text: str | None = None
    html: str | None = None
    body = force_str(msg.body) if msg.body else ""
    if getattr(msg, "content_subtype", "plain") == "html":
        html = body or None
    else:
        text = body or None
    others: list[tuple[str, str]] = []
    for content, mimetype in getattr(msg, "alternatives", None) or ():
        mimetype = force_str(mimetype)
        if isinstance(content, bytes):
            content = content.decode("utf-8")
        content = force_str(content)
        if mimetype == "text/html":
            if html is not None:
                raise InvalidMessage(
                    "The message has more than one HTML body; send one text/html alternative."
                )
            html = content
        elif mimetype == "text/plain" and text is None:
            text = content
        else:
            others.append((content, mimetype))
    return text, html, others


def _plain(value: Any) -> Any:
    """Lazy translation strings inside containers, evaluated to str."""
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_value(what: str, value: Any) -> Any:
    value = _plain(value)
    try:
        json.dumps(value, allow_nan=False)  # NaN and Infinity are not JSON
    except (TypeError, ValueError) as exc:
        raise InvalidMessage(f"{what} must be JSON-serialisable: {exc}.") from None
    return value


def _extra(msg: EmailMessage, name: str) -> Any:
    """An extra attribute, or None when unset.

    django-anymail's ``AnymailMessage`` marks unset attributes with its
    ``UNSET`` sentinel class; it counts as unset here too.
    """
    value = getattr(msg, name, None)
    if isinstance(value, type) and value.__name__ == "UNSET":
        return None
    return value


def _dict_extra(msg: EmailMessage, name: str) -> dict[str, Any]:
    value = _extra(msg, name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidMessage(f"msg.{name} must be a dict, not {type(value).__name__}.")
    if any(not isinstance(k, str | Promise) for k in value):
        raise InvalidMessage(f"msg.{name} keys must be strings.")
    return _json_value(f"msg.{name}", dict(value))


def _str_extra(msg: EmailMessage, name: str) -> str:
    value = _extra(msg, name)
    return "" if value is None else _no_line_breaks(f"msg.{name}", force_str(value))


def _bool_extra(msg: EmailMessage, name: str) -> bool | None:
    value = _extra(msg, name)
    if value is not None and not isinstance(value, bool):
        raise InvalidMessage(f"msg.{name} must be True, False or None.")
    return value


def normalize_send_at(value: Any) -> datetime | None:
    """``send_at`` as an aware UTC datetime (naive values are in the current time zone)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | date):
        raise InvalidMessage("msg.send_at must be a datetime, a date or a Unix timestamp.")
    try:
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if not isinstance(value, datetime):
            value = datetime.combine(value, time.min)
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value.astimezone(UTC)
    except (OverflowError, ValueError, OSError):  # NaN, or beyond the years datetime has
        raise InvalidMessage(
            f"msg.send_at {value!r} is not a time; give a datetime, a date or a Unix timestamp "
            "between the years 1 and 9999."
        ) from None


def _tags(msg: EmailMessage) -> list[str]:
    tags = _extra(msg, "tags") or []
    if not isinstance(tags, list | tuple) or not all(isinstance(t, str | Promise) for t in tags):
        raise InvalidMessage("msg.tags must be a list of strings.")
    return [_no_line_breaks("A tag", str(t)) for t in tags]


def _idempotency_key(msg: EmailMessage) -> str:
    key = _str_extra(msg, "idempotency_key")
    if len(key) > MAX_IDEMPOTENCY_KEY or not key.isascii() or not key.isprintable():
        raise InvalidMessage(
            f"msg.idempotency_key must be printable ASCII of at most {MAX_IDEMPOTENCY_KEY} "
            "characters."
        )
    return key


@dataclass
class _Headers:
    """Extra headers split into plain ones and Django's address overrides."""

    plain: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, list[Address]] = field(default_factory=dict)
    from_email: Address | None = None
    reply_to: list[Address] | None = None
    shown: dict[str, list[Address]] = field(default_factory=dict)  # "to"/"cc" display names


def _headers(msg: EmailMessage, to: list[Address], cc: list[Address]) -> _Headers:
    """Split extra headers as Django does.

    A ``From`` header replaces the From address shown, a ``Reply-To`` header
    replaces ``reply_to``, and ``To``/``Cc`` headers change what recipients
    see without changing who receives the message: when they name the same
    mailboxes their display names are used, otherwise they are an override
    the provider must be able to carry. ``Bcc`` is never a header: it would
    reveal the hidden recipients.
    """
    result = _Headers()
    seen: set[str] = set()
    for raw_name, raw_value in (msg.extra_headers or {}).items():
        name = force_str(raw_name).strip()
        if not _HEADER_NAME.match(name):
            raise InvalidMessage(f"{name!r} is not a valid header name.")
        lower = name.lower()
        if lower in seen:
            raise InvalidMessage(f"The header {name!r} is given twice (header names ignore case).")
        seen.add(lower)
        value = _no_line_breaks(f"Header {name}", force_str(raw_value))
        if lower == "bcc":
            raise InvalidMessage(
                "Bcc is not a valid header: it would show the hidden recipients to everyone. "
                "Pass them as bcc=[...] instead."
            )
        if lower in _RESERVED_HEADERS:
            raise InvalidMessage(
                f"The {name} header is set from the message itself and cannot be given in "
                "headers; use the message's subject, body and attachments instead."
            )
        if lower == "from":
            result.from_email = _one_address("The From header", value)
        elif lower == "reply-to":
            result.reply_to = parse_addresses("The Reply-To header", value)
        elif lower in ("to", "cc"):
            shown = parse_addresses(f"The {name} header", value)
            actual = to if lower == "to" else cc
            if {a.email.lower() for a in shown} == {a.email.lower() for a in actual}:
                result.shown[lower] = shown
            else:
                result.overrides[name.title()] = shown
        else:
            result.plain[name] = value
    return result


def _storable(email: OutboundEmail) -> OutboundEmail:
    """Refuse text no database or provider takes: NUL characters, invalid Unicode."""
    texts = {
        "The subject": email.subject,
        "A header": "".join(f"{name}{value}" for name, value in email.headers.items()),
        "An attachment's filename": "".join(a.filename + a.content_id for a in email.attachments),
        "The text body": email.text or "",
        "The HTML body": email.html or "",
        "An alternative part": "".join(content for content, _ in email.alternatives),
        "The message extras": json.dumps(
            [email.metadata, email.tags, email.template_vars, email.esp_extra, email.merge_data],
            ensure_ascii=False,
        ),
    }
    for what, text in texts.items():
        if "\x00" in text or "\\u0000" in text:
            raise InvalidMessage(f"{what} contains a NUL character; remove it.")
        _valid_unicode(what, text)
    return email


def _template_vars(msg: EmailMessage) -> dict[str, Any]:
    """merge_global_data (anymail's name) and template_vars, as JSON values."""
    merged: dict[str, Any] = {}
    for name in ("merge_global_data", "template_vars"):
        merged |= json_variables(_extra(msg, name), what=f"msg.{name}")
    return merged


def _stored_template(
    msg: EmailMessage,
    variables: dict[str, Any],
    subject: str,
    text: str | None,
    html: str | None,
    alternatives: list[tuple[str, str]],
) -> RenderedTemplate | None:
    """Render msg.template, refusing a message that also brings content of its own."""
    slug = _str_extra(msg, "template")
    if not slug:
        return None
    if _str_extra(msg, "template_id"):
        raise InvalidMessage(
            "Set msg.template (a stored template) or msg.template_id (a provider-hosted "
            "template), not both."
        )
    if subject or text or html or alternatives:
        raise InvalidMessage(
            f"The stored template {slug!r} brings its own subject and body; leave the message's "
            "subject, body and alternatives empty."
        )
    return render_template(slug, variables, language=_str_extra(msg, "language") or None)


def _stream(msg: EmailMessage) -> str:
    """msg.stream, one of ``TXMAIL["STREAMS"]`` (default "transactional")."""
    name = _str_extra(msg, "stream") or DEFAULT_STREAM
    streams = get_settings().streams
    if name not in streams:
        raise InvalidMessage(
            f"msg.stream is {name!r}, which is not in TXMAIL['STREAMS'] "
            f"({', '.join(sorted(streams))})."
        )
    return name


def _priority(msg: EmailMessage) -> str:
    """msg.priority: "high", "normal" (default) or "low"."""
    value = _extra(msg, "priority")
    try:
        priority_rank(value)
    except ValueError as exc:
        raise InvalidMessage(str(exc)) from None
    return value or DEFAULT_PRIORITY


def compose(msg: EmailMessage) -> OutboundEmail:
    """Map a Django message onto an OutboundEmail, or raise InvalidMessage."""
    from_email = _one_address("From", msg.from_email)
    to = _address_list("To", msg.to)
    cc = _address_list("Cc", msg.cc)
    bcc = _address_list("Bcc", msg.bcc)
    reply_to = _address_list("Reply-To", msg.reply_to)
    if not (to or cc or bcc):
        raise InvalidMessage("The message has no recipients; give it at least one To address.")
    headers = _headers(msg, to, cc)
    text, html, alternatives = _bodies(msg)
    subject = _no_line_breaks("The subject", force_str(msg.subject or ""))
    template_vars = _template_vars(msg)
    rendered = _stored_template(msg, template_vars, subject, text, html, alternatives)
    if rendered is not None:
        subject, text, html, template_vars = rendered.subject, rendered.text, rendered.html, {}
    elif template_vars and not _str_extra(msg, "template_id"):
        raise InvalidMessage(
            "msg.merge_global_data / msg.template_vars fill a template; set msg.template "
            "(a stored template's slug) or msg.template_id (a provider-hosted template)."
        )
    return _storable(
        OutboundEmail(
            from_email=headers.from_email or from_email,
            to=headers.shown.get("to", to),
            cc=headers.shown.get("cc", cc),
            bcc=bcc,
            reply_to=reply_to if headers.reply_to is None else headers.reply_to,
            subject=subject,
            text=text,
            html=html,
            headers=headers.plain,
            header_overrides=headers.overrides,
            alternatives=alternatives,
            attachments=_attachments(msg),
            metadata=_dict_extra(msg, "metadata"),
            tags=_tags(msg),
            send_at=normalize_send_at(_extra(msg, "send_at")),
            template_id=_str_extra(msg, "template_id"),
            template_vars=template_vars,
            template=rendered.slug if rendered else "",
            template_version=rendered.version if rendered else None,
            template_language=rendered.language if rendered else "",
            track_opens=_bool_extra(msg, "track_opens"),
            track_clicks=_bool_extra(msg, "track_clicks"),
            reply_to_message_id=_str_extra(msg, "reply_to_message_id"),
            esp_extra=_dict_extra(msg, "esp_extra"),
            ical_event=force_str(_extra(msg, "ical_event") or ""),
            stream_type=_str_extra(msg, "stream_type"),
            merge_data=_dict_extra(msg, "merge_data"),
            merge_metadata=_dict_extra(msg, "merge_metadata"),
            merge_headers=_dict_extra(msg, "merge_headers"),
            envelope_sender=_str_extra(msg, "envelope_sender"),
            stream=_stream(msg),
            priority=_priority(msg),
            grant_id=_str_extra(msg, "grant_id"),
            provider=_str_extra(msg, "provider"),
            idempotency_key=_idempotency_key(msg),
        )
    )
