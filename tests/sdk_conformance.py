"""Our requests compared with the providers' official SDKs': the shared parts.

The providers' official SDKs (``nylas``, ``mailtrap``; test-only
dependencies, never runtime ones) and our adapters send the same
:class:`Logical` message to a loopback :class:`CaptureServer`; the tests
compare what arrived, field by field, after :func:`wire_form` has removed
what may legitimately differ (boundaries, user agents, key order, the
encoding of a JSON document) and the provider's test has applied the
differences its docs page lists (``docs/providers/*.md``).

The server answers every request at once with the provider's success body,
so each SDK's own response parsing runs too; it listens on 127.0.0.1 only
and every test bounds its requests with a timeout.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from django_txmail.outbound_email import Address, Attachment, OutboundEmail

#: Seconds any request to the capture server may take.
TIMEOUT = 10
#: Over 3 MiB, so both the SDK's switch (raw bytes) and ours (the JSON) pick multipart.
LARGE = 3_300_000


@dataclass(frozen=True)
class File:
    filename: str
    mimetype: str
    content: bytes
    content_id: str = ""
    inline: bool = False


@dataclass
class Logical:
    """One message as a sender means it, before any provider's wire format.

    Addresses are ``(email, name)`` pairs; ``name`` "" means none.
    """

    sender: tuple[str, str]
    to: list[tuple[str, str]]
    cc: list[tuple[str, str]] = field(default_factory=list)
    bcc: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[tuple[str, str]] = field(default_factory=list)
    subject: str = ""
    html: str | None = None
    text: str | None = None
    files: list[File] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    track_opens: bool | None = None
    track_clicks: bool | None = None
    send_at: int | None = None
    template_id: str = ""
    template_vars: dict[str, Any] = field(default_factory=dict)
    reply_to_message_id: str = ""
    idempotency_key: str = ""

    def outbound(self) -> OutboundEmail:
        """The message as compose hands it to our adapters."""

        def addresses(pairs: list[tuple[str, str]]) -> list[Address]:
            return [Address(*pair) for pair in pairs]

        return OutboundEmail(
            from_email=Address(*self.sender),
            to=addresses(self.to),
            cc=addresses(self.cc),
            bcc=addresses(self.bcc),
            reply_to=addresses(self.reply_to),
            subject=self.subject,
            html=self.html,
            text=self.text,
            attachments=[
                Attachment.from_bytes(
                    f.content,
                    filename=f.filename,
                    mimetype=f.mimetype,
                    content_id=f.content_id,
                    inline=f.inline,
                )
                for f in self.files
            ],
            metadata=dict(self.metadata),
            headers=dict(self.headers),
            tags=list(self.tags),
            track_opens=self.track_opens,
            track_clicks=self.track_clicks,
            send_at=datetime.fromtimestamp(self.send_at, UTC) if self.send_at else None,
            template_id=self.template_id,
            template_vars=dict(self.template_vars),
            reply_to_message_id=self.reply_to_message_id,
            idempotency_key=self.idempotency_key,
        )


PDF = File("Q3 report.pdf", "application/pdf", b"%PDF-1.4 report")
LOGO = File("logo.png", "image/png", b"\x89PNG logo", content_id="logo@shop.example", inline=True)
PHOTO = File(
    "photo.png", "image/png", bytes(range(256)) * (LARGE // 256), "photo@shop.example", True
)


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), "")

    @property
    def media_type(self) -> str:
        return self.header("Content-Type").partition(";")[0].strip().lower()


def _answer(path: str, body: bytes) -> dict[str, Any]:
    """The provider's success answer for a request to ``path``."""
    if path.startswith("/v3/"):  # Nylas
        data = {"id": "msg-1", "grant_id": "grant-1", "object": "message"}
        return {"request_id": "req-1", "data": data}
    if path.startswith("/api/batch"):  # Mailtrap batch: one result per request, in order
        count = len(json.loads(body).get("requests", []))
        return {"success": True, "responses": [{"success": True, "message_ids": ["m"]}] * count}
    return {"success": True, "message_ids": ["m"]}  # Mailtrap send


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.captured: list[Captured] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def take(self) -> Captured:
        """The one request received since the last ``take``."""
        with self._lock:
            requests, self.captured = self.captured, []
        assert len(requests) == 1, f"expected one request, got {len(requests)}"
        return requests[0]


class _Handler(BaseHTTPRequestHandler):
    server: CaptureServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        captured = Captured("POST", self.path, dict(self.headers.items()), body)
        with self.server._lock:
            self.server.captured.append(captured)
        answer = json.dumps(_answer(self.path, body)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(name="capture")
def capture_server() -> Iterator[CaptureServer]:
    """A running :class:`CaptureServer` (import this into a test module to use it)."""
    server = CaptureServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


def wire_form(request: Captured, normalise: Callable[[Any], Any]) -> dict[str, Any]:
    """What a request says, with what may legitimately differ taken out.

    JSON bodies are compared parsed (key order, spacing and ``\\u`` escapes
    do not matter); a multipart body becomes its ``message`` JSON plus, for
    each file part, its name, filename, content type and a digest of its
    bytes (the boundary does not matter). ``normalise`` then applies the
    provider's documented differences to each JSON document.
    """
    form: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "media_type": request.media_type,
    }
    if request.media_type == "multipart/form-data":
        parts = _parts(request)
        messages = [p for p in parts if p["name"] == "message"]
        assert len(messages) == 1, "a multipart send has exactly one message part"
        form["message"] = normalise(json.loads(messages[0]["content"]))
        form["files"] = [
            {k: v for k, v in p.items() if k != "content"} for p in parts if p["name"] != "message"
        ]
    else:
        form["json"] = normalise(json.loads(request.body))
    return form


def _parts(request: Captured) -> list[dict[str, Any]]:
    head = f"Content-Type: {request.header('Content-Type')}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + request.body)
    parts = []
    for part in parsed.iter_parts():
        content = part.get_payload(decode=True)
        parts.append(
            {
                "name": part.get_param("name", header="content-disposition"),
                "filename": part.get_filename() or None,
                "content_type": part.get_content_type(),
                "sha256": hashlib.sha256(content).hexdigest(),
                "content": content,
            }
        )
    return parts
