"""A test double for the provider APIs, as Django's locmem backend is for SMTP.

Inside ``with provider_requests() as outbox:`` no request reaches the
network and no socket is opened: every request an adapter builds (a send, a
batch, a cancel, ...) is recorded on ``outbox`` and answered in-process, so
a project's tests can assert on exactly what would go to Nylas, Mailtrap or
MailerLogic::

    from django.core.mail import send_mail
    from django_txmail.testing import provider_requests

    with provider_requests() as outbox:
        send_mail("Receipt", "Thanks", "shop@example.com", ["ann@example.net"])
    [request] = outbox.requests
    assert request.url.endswith("/v3/domains/example.com/messages/send")
    assert request.json["subject"] == "Receipt"

Each request is answered by the first of:

1. the next answer queued with ``outbox.respond(...)`` (first in, first out);
2. ``answer(request)`` for the callable given to ``outbox.respond_with()``,
   unless it returns None; raising ``requests.ConnectionError`` or
   ``requests.Timeout`` there stands for a network failure;
3. :func:`success_response`: what the provider answers when it accepts the
   request, so the backend records the message ``sent`` with a provider
   message id.

A recorded request never holds a credential: the headers that carry one
(``Authorization``, ``Api-Token``, ``X-API-Key`` and any other whose value
holds a secret of a configured account) read ``"[redacted]"``, and so does
a secret in the URL.

The double replaces the one function that answers provider requests
(``sending.transport.install_exchange``) for the whole process, worker
threads included; on leaving the block, error or not, the previous one is
back (the network, or an enclosing ``provider_requests()``).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message as EmailHeaders
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from functools import cached_property
from json import dumps, loads
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

from django_txmail.conf import get_settings
from django_txmail.providers.base import REDACTED, ProviderRequest, ProviderResponse
from django_txmail.sending import transport

__all__ = [
    "Part",
    "ProviderOutbox",
    "RecordedRequest",
    "provider_requests",
    "provider_response",
    "success_response",
]

#: Headers that carry credentials: the built-in providers' and the usual ones.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-token", "x-api-key", "api-key", "cookie"}
)


@dataclass(frozen=True)
class Part:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    content_type: str
    content: bytes = field(repr=False)

    @cached_property
    def json(self) -> Any:
        """The content decoded, for an ``application/json`` part; else None."""
        return loads(self.content) if self.content_type == "application/json" else None


@dataclass(frozen=True)
class RecordedRequest:
    """A provider request as it would have gone on the wire, credentials redacted."""

    method: str
    url: str
    #: Case-insensitive: ``headers["authorization"]`` is ``headers["Authorization"]``.
    headers: Mapping[str, str]
    body: bytes = field(repr=False)

    @cached_property
    def json(self) -> Any:
        """The body parsed, for an ``application/json`` request; else None."""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return loads(self.body)
        return None

    @cached_property
    def parts(self) -> list[Part]:
        """The parts of a ``multipart/form-data`` body, in order; else []."""
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            return []
        return form_parts(self.body, content_type)

    def part(self, name: str) -> Part:
        """The multipart part called ``name``."""
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(f"No part {name!r}; the parts are {[p.name for p in self.parts]}.")


def _header_block(raw: bytes) -> EmailHeaders:
    return BytesHeaderParser().parsebytes(raw + b"\r\n\r\n")


def form_parts(body: bytes, content_type: str) -> list[Part]:
    """Split a ``multipart/form-data`` body into its parts, contents byte for byte."""
    boundary = _header_block(f"Content-Type: {content_type}".encode()).get_param("boundary")
    delimiter = b"\r\n--" + collapse_rfc2231_value(boundary).encode()
    # The CRLF before each delimiter belongs to it; the last piece is the closing "--".
    pieces = (b"\r\n" + body).split(delimiter)[1:-1]
    parts = []
    for piece in pieces:
        head, _, content = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = _header_block(head)
        name = headers.get_param("name", header="content-disposition")
        parts.append(
            Part(
                name=collapse_rfc2231_value(name) if name else "",
                filename=headers.get_filename(),
                content_type=headers.get_content_type(),
                content=content,
            )
        )
    return parts


def provider_response(
    status: int = 200,
    *,
    json: Any = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> ProviderResponse:
    """An answer to give a request: ``json`` (encoded, with its Content-Type) or raw ``body``."""
    answer_headers = dict(headers or {})
    if json is not None:
        body = dumps(json).encode()
        answer_headers.setdefault("Content-Type", "application/json")
    return ProviderResponse(status, answer_headers, body)


#: Answers a request with a response, or None for the default answer.
Answer = Callable[[RecordedRequest], ProviderResponse | None]


class ProviderOutbox:
    """The requests made inside ``provider_requests()``, and how they are answered.

    Safe to use from several threads: a worker's threads send at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._queued: deque[ProviderResponse] = deque()
        self._answer: Answer | None = None

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request made so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def respond(
        self,
        status: int = 200,
        *,
        json: Any = None,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` requests so, after any answers queued before."""
        answer = provider_response(status, json=json, body=body, headers=headers)
        with self._lock:
            self._queued.extend([answer] * times)

    def respond_with(self, answer: Answer | None) -> None:
        """Answer requests with ``answer(request)`` once the queued answers are used.

        It returns a ``ProviderResponse`` (see :func:`provider_response`), or
        None for the default success answer; it may raise ``requests.Timeout``
        or ``requests.ConnectionError`` as the network would. None removes it.
        """
        with self._lock:
            self._answer = answer

    def clear(self) -> None:
        """Forget the requests recorded so far; queued answers stay."""
        with self._lock:
            self._requests.clear()

    def exchange(
        self, session: requests.Session, request: ProviderRequest, timeout: float
    ) -> ProviderResponse:
        """Record ``request`` and answer it (``transport.Exchange``); nothing is sent."""
        recorded = record(request)
        with self._lock:
            self._requests.append(recorded)
            queued = self._queued.popleft() if self._queued else None
            answer = self._answer
        if queued is None and answer is not None:
            queued = answer(recorded)
        return success_response(recorded) if queued is None else queued


@contextmanager
def provider_requests() -> Iterator[ProviderOutbox]:
    """Record and answer every provider request made inside the block; see the module doc."""
    outbox = ProviderOutbox()
    previous = transport.install_exchange(outbox.exchange)
    try:
        yield outbox
    finally:
        transport.install_exchange(previous)


def record(request: ProviderRequest) -> RecordedRequest:
    """What ``request`` would send, credentials redacted; a body stream is read and closed."""
    try:
        body = request.body if isinstance(request.body, bytes) else request.body.read()
    finally:
        request.close()  # as the network transport does, sent or not
    secrets = [s for account in get_settings().providers.values() for s in account.secrets]

    def redact(name: str, value: str) -> str:
        hidden = name.lower() in SECRET_HEADERS or any(s in value for s in secrets)
        return REDACTED if hidden else value

    url = request.url
    for secret in secrets:
        url = url.replace(secret, REDACTED)
    headers = CaseInsensitiveDict({k: redact(k, v) for k, v in request.headers.items()})
    return RecordedRequest(request.method, url, headers, body)


# -- what each provider answers when it accepts a request (PROVIDERS.md) --------


def success_response(request: RecordedRequest) -> ProviderResponse:
    """The provider's answer accepting ``request``, known by its URL path.

    A Nylas send, a Mailtrap send or batch and a MailerLogic send get their
    provider's success body, with new message ids; any other request gets
    200 ``{}``: queue the answer a test needs with ``outbox.respond()``.
    """
    path = urlsplit(request.url).path
    for pattern, build in _SUCCESS:
        found = pattern.search(path)
        if found:
            return provider_response(200, json=build(request, found))
    return provider_response(200, json={})


def _nylas_sent(request: RecordedRequest, path: re.Match[str]) -> dict[str, Any]:
    message = request.json if request.json is not None else request.part("message").json
    data: dict[str, Any] = {"id": uuid.uuid4().hex, "object": "message"}
    for key in ("from", "to", "cc", "bcc", "reply_to"):
        participants = message.get(key) or []
        data[key] = participants if isinstance(participants, list) else [participants]
    data["subject"] = message.get("subject", "")
    answer = {"request_id": str(uuid.uuid4()), "data": data}
    if path["route"] == "grants":
        answer["grant_id"] = data["grant_id"] = unquote(path["id"])
        if "send_at" in message:  # the grant route holds scheduled mail at Nylas
            data["schedule_id"] = uuid.uuid4().hex
            data["send_at"] = message["send_at"]
    return answer


def _mailtrap_accepted(message: dict[str, Any], inbox: str | None) -> dict[str, Any]:
    # One id per recipient (To, Cc, Bcc); a test inbox gives one for the message.
    count = 1 if inbox else sum(len(message.get(key) or []) for key in ("to", "cc", "bcc"))
    return {"success": True, "message_ids": [str(uuid.uuid4()) for _ in range(count)]}


def _mailtrap_sent(request: RecordedRequest, path: re.Match[str]) -> dict[str, Any]:
    return _mailtrap_accepted(request.json, path["inbox"])


def _mailtrap_batch(request: RecordedRequest, path: re.Match[str]) -> dict[str, Any]:
    items = request.json["requests"]
    return {"success": True, "responses": [_mailtrap_accepted(m, path["inbox"]) for m in items]}


def _mailerlogic_sent(request: RecordedRequest, path: re.Match[str]) -> dict[str, Any]:
    return {
        "to": request.json.get("to"),
        "submitted_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "message_id": str(uuid.uuid4()),
        "email_id": f"em_{uuid.uuid4().hex}",
        "status": "queued",
        "message": "Email queued for delivery.",
    }


_SUCCESS: list[tuple[re.Pattern[str], Callable[[RecordedRequest, re.Match[str]], Any]]] = [
    (re.compile(r"/v3/(?P<route>domains|grants)/(?P<id>[^/]+)/messages/send$"), _nylas_sent),
    (re.compile(r"/api/send(?:/(?P<inbox>\d+))?$"), _mailtrap_sent),
    (re.compile(r"/api/batch(?:/(?P<inbox>\d+))?$"), _mailtrap_batch),
    (re.compile(r"/api/v1/send$"), _mailerlogic_sent),
]
