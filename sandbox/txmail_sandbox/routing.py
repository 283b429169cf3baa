"""A small path router for the emulators' endpoints.

Providers' paths carry identifiers (``/v3/grants/{grant_id}/...``); a route
is written as that template and the router answers "no such path" and "not
this method" differently, so the server can send 404 or 405 with ``Allow``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from .httpd import Response

Handler = Callable[..., Response]


class Route:
    """``POST /v3/grants/{grant_id}/messages/send`` → a handler.

    Path parameters match one percent-decoded path segment and are passed to
    the handler as keyword arguments after the request.
    """

    def __init__(self, method: str, template: str, handler: Handler) -> None:
        self.method = method
        self.template = template
        self.handler = handler
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self._regex = re.compile(pattern + r"\Z")

    def match(self, path: str) -> dict[str, str] | None:
        found = self._regex.match(path)
        if found is None:
            return None
        return {name: unquote(value) for name, value in found.groupdict().items()}


class NoRoute(Exception):
    """No route for the path (``allowed`` empty) or none for the method."""

    def __init__(self, allowed: tuple[str, ...]) -> None:
        super().__init__(allowed)
        self.allowed = allowed


class Router:
    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes = list(routes)

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        allowed: list[str] = []
        for route in self._routes:
            params = route.match(path)
            if params is None:
                continue
            if route.method == method:
                return route.handler, params
            allowed.append(route.method)
        raise NoRoute(tuple(dict.fromkeys(allowed)))
