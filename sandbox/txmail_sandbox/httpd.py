"""HTTP plumbing for the sandbox: a threaded HTTP/1.1 server and the request
and response values the emulators work with (paths are routed in
``routing.py``).

Emulated providers never touch sockets. They receive a :class:`Request`,
read its body through :meth:`Request.read_body` with an explicit size limit,
and return a :class:`Response`. Everything about the wire lives here:

* keep-alive (``protocol_version = "HTTP/1.1"``) with TCP_NODELAY, because
  without it every keep-alive request waits ~40 ms for a delayed ACK, which
  would make the sandbox useless for benchmarks;
* body framing, both ``Content-Length`` and ``Transfer-Encoding: chunked``
  (a client that streams a multipart upload from a generator sends chunks);
* refusing an oversize body from its declared length without buffering it,
  then draining it so the client reads the refusal instead of a connection
  reset (bodies too large to drain cheaply get the answer and a close);
* the head and body of a response written in one ``send``;
* timing each request and handing it to the application for its log
  before the answer is written;
* not answering, when a response says so (:attr:`Response.drop`): closing
  the connection, or resetting it with a TCP RST (``SO_LINGER`` zero, then
  close), which is how a client sees a provider's load balancer fail.

The module imports nothing from Django.
"""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger("txmail_sandbox")

#: Unread request bodies up to this size are read and discarded so the
#: connection can be reused; anything larger gets its answer and a close.
DRAIN_LIMIT = 64 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_MAX_CHUNK_LINE = 1024


class BodyTooLarge(Exception):
    """The request body is over the limit its handler allows.

    ``length`` is the declared size, or None for a chunked body (whose size
    is only known once it has been read, which is what the limit avoids).
    """

    def __init__(self, limit: int, length: int | None) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit
        self.length = length


class MalformedRequest(Exception):
    """The request cannot be framed (bad Content-Length or chunk syntax).

    The server answers 400 and closes the connection: after a framing error
    it cannot know where the next request starts.
    """


class Request:
    """One HTTP request, with its body still on the socket until read."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: Message,
        rfile: BufferedIOBase,
    ) -> None:
        self.method = method
        parts = urlsplit(target)
        self.path = parts.path
        #: Query parameters (the last value of a repeated one).
        self.query = dict(parse_qsl(parts.query))
        self.headers = headers
        #: "json" or "multipart" once an emulator has classified the body;
        #: shown in the request log.
        self.transport: str | None = None
        #: The fault an emulator applied to this request, for the log.
        self.fault: str | None = None
        self.must_close = False
        self._rfile = rfile
        self._body: bytes | None = None
        self._chunked = "chunked" in headers.get("Transfer-Encoding", "").lower()
        self._unread = 0 if self._chunked else _content_length(headers)

    @property
    def content_type(self) -> str:
        """The media type, lower-cased and without parameters."""
        return self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()

    def read_body(self, limit: int) -> bytes:
        """Return the whole body, or raise :class:`BodyTooLarge`.

        A declared length over ``limit`` is refused before anything is read;
        the plumbing drains or closes afterwards.
        """
        if self._body is not None:
            return self._body
        if self._chunked:
            self._body = self._read_chunked(limit)
        else:
            if self._unread > limit:
                raise BodyTooLarge(limit, self._unread)
            self._body = self._read_exact(self._unread)
            self._unread = 0
        return self._body

    def discard_rest(self) -> None:
        """Consume whatever body the handler left unread, or mark for close."""
        if self._body is not None:
            return
        if self._chunked:
            self._drain(self._chunks())
        elif self._unread > DRAIN_LIMIT:
            self.must_close = True
        else:
            while self._unread:
                self._unread -= len(self._read_exact(min(self._unread, _READ_CHUNK)))
        self._body = b""

    def _read_exact(self, size: int) -> bytes:
        data = self._rfile.read(size) if size else b""
        if len(data) < size:
            raise ConnectionError("client closed the connection mid-body")
        return data

    def _read_chunked(self, limit: int) -> bytes:
        pieces: list[bytes] = []
        total = 0
        chunks = self._chunks()
        for piece in chunks:
            total += len(piece)
            if total > limit:
                self._drain(chunks)
                self._body = b""
                raise BodyTooLarge(limit, None)
            pieces.append(piece)
        return b"".join(pieces)

    def _drain(self, chunks: Iterator[bytes]) -> None:
        drained = 0
        for piece in chunks:
            drained += len(piece)
            if drained > DRAIN_LIMIT:
                self.must_close = True
                return

    def _chunks(self) -> Iterator[bytes]:
        """Yield the decoded data of a chunked body, at most 1 MiB at a time."""
        while True:
            line = self._rfile.readline(_MAX_CHUNK_LINE)
            if not line.endswith(b"\n"):
                raise MalformedRequest("bad chunk size line")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise MalformedRequest("bad chunk size line") from None
            if size == 0:
                break
            while size:
                piece = self._read_exact(min(size, _READ_CHUNK))
                size -= len(piece)
                yield piece
            if self._rfile.readline(_MAX_CHUNK_LINE).strip():
                raise MalformedRequest("chunk not followed by CRLF")
        while self._rfile.readline(_MAX_CHUNK_LINE).strip():
            pass  # trailer fields carry nothing the sandbox needs


def _content_length(headers: Message) -> int:
    value = headers.get("Content-Length")
    if value is None:
        return 0
    if not value.strip().isdigit():
        raise MalformedRequest(f"bad Content-Length {value!r}")
    return int(value)


#: :attr:`Response.drop` values.
DROP_CLOSE = "close"
DROP_RESET = "reset"


@dataclass
class Response:
    """What a handler answers; the plumbing adds Date, Content-Length, etc.

    ``drop`` set means the answer is not written: the connection is closed
    (:data:`DROP_CLOSE`) or reset (:data:`DROP_RESET`) instead. ``then`` is
    called once the answer is written, and the connection is closed after it
    (the port that served it is closing).
    """

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json"
    drop: str | None = None
    then: Callable[[], None] | None = None

    @classmethod
    def json(cls, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, list(headers))

    @classmethod
    def reset(cls) -> Response:
        """No answer: the connection is reset."""
        return cls(0, content_type=None, drop=DROP_RESET)

    def with_headers(self, *headers: tuple[str, str]) -> Response:
        """A copy with extra headers (used for replays and ``Allow``)."""
        return replace(self, headers=[*self.headers, *headers])

    def withheld(self) -> Response:
        """This answer, not written: the connection is closed instead."""
        return replace(self, drop=DROP_CLOSE)


class Application(Protocol):
    """What the HTTP server serves: the sandbox composes one of these."""

    def handle(self, request: Request) -> Response: ...

    def finished(self, request: Request, response: Response, duration: float) -> None: ...


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threaded server that remembers its open connections.

    ``shutdown()`` only stops accepting; idle keep-alive connections would
    keep their threads blocked on a read forever. :meth:`close_connections`
    shuts those sockets so every handler thread ends with the server.
    """

    daemon_threads = True
    #: The listen backlog. Python's default of 5 overflows when a worker opens
    #: 16 connections at once, and the kernel makes the rest retry a second later.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: Application) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also resolves the host's FQDN, a DNS lookup
        # that can take seconds on a badly configured machine; nothing here
        # uses the name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "txmail-sandbox"
    sys_version = ""
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self._reset = False
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
            if self._reset:
                # Closed here, before the server's shutdown_request() would
                # send a FIN first: with SO_LINGER (1, 0) this sends a RST.
                self.connection.close()
        finally:
            self.server.untrack(self.connection)

    def _serve(self) -> None:
        started = time.perf_counter()
        try:
            request = Request(self.command, self.path, self.headers, self.rfile)
        except MalformedRequest as exc:
            self.close_connection = True
            self._write(_plain_error(400, str(exc)))
            return
        try:
            response = self._respond(request)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        if request.must_close:
            self.close_connection = True
        # Logged before the write, so a client that has its answer also
        # finds its request in the log.
        try:
            self.server.app.finished(request, response, time.perf_counter() - started)
        except Exception:
            logger.exception("sandbox request log failed on %s %s", request.method, request.path)
        if response.drop is None:
            if response.then is not None:
                self.close_connection = True
            self._write(response)
            if response.then is not None:
                response.then()
            return
        self.close_connection = True
        if response.drop == DROP_RESET:
            try:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self._reset = True
            except OSError:
                pass  # the peer is gone already; a plain close will do

    def _respond(self, request: Request) -> Response:
        try:
            response = self.server.app.handle(request)
            request.discard_rest()
        except MalformedRequest as exc:
            request.must_close = True
            return _plain_error(400, str(exc))
        except (ConnectionError, TimeoutError):
            raise
        except Exception:
            logger.exception("sandbox failed on %s %s", request.method, request.path)
            request.must_close = True
            return _plain_error(500, "the sandbox failed; see its log")
        return response

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def _write(self, response: Response) -> None:
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Server: {self.server_version}",
            f"Date: {self.date_time_string()}",
        ]
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        if response.status != 204:
            lines.append(f"Content-Length: {len(response.body)}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            self.wfile.write(head + response.body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - " + format, self.address_string(), *args)


def _plain_error(status: int, message: str) -> Response:
    return Response.json(status, {"error": {"type": "sandbox_error", "message": message}})
