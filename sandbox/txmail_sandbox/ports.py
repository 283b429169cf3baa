"""The extra ports of ``SandboxServer.listen()``: each can stop listening for a while
(connections refused) and listen again on the same port number."""

from __future__ import annotations

import socket
from collections.abc import Callable

from .httpd import Application, Request, Response, SandboxHTTPServer


class PortServer(SandboxHTTPServer):
    """The server of a ``listen()`` port: it shares the port with the socket that holds
    it (``Port.hold``)."""

    allow_reuse_port = hasattr(socket, "SO_REUSEPORT")


class Port:
    """A port of ``SandboxServer.listen()``: the server's application, each answer passed
    through ``closing`` (the fault plan may close the port after it).

    While its listener is closed the port stays bound by a socket that never
    listens: connecting is refused, and no outgoing connection of this
    machine can take the port as its own, so listening again always works.
    """

    def __init__(
        self,
        app: Application,
        index: int,
        closing: Callable[[Port, Response], Response],
    ) -> None:
        self.app, self.index, self.url = app, index, ""
        self._closing = closing
        self._holder: socket.socket | None = None

    def hold(self, host: str, number: int) -> None:
        """Keep port ``number`` bound (where the system can share a port: SO_REUSEPORT)."""
        if not PortServer.allow_reuse_port:
            return
        holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, number))
        self._holder = holder

    def release(self) -> None:
        if self._holder is not None:
            self._holder.close()
            self._holder = None

    def handle(self, request: Request) -> Response:
        return self._closing(self, self.app.handle(request))

    def finished(self, request: Request, response: Response, duration: float) -> None:
        self.app.finished(request, response, duration)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])
