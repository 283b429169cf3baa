"""Provider-hosted templates kept by the sandbox, and their rendering.

Nylas (``/v3/templates``, ``nylas_templates.py``) and Mailtrap
(``/api/accounts/{account_id}/email_templates``, ``mailtrap_templates.py``)
let an application store templates and send with ``template: {id}`` or
``template_uuid``. The sandbox stores them here per provider and renders
them with ``mustache.py`` when a send names one, so what a test inspects is
what a recipient would read.
"""

from __future__ import annotations

import threading
from typing import Any

from . import mustache

#: Engines the sandbox renders (Nylas also offers nunjucks and twig).
ENGINES = ("mustache", "handlebars")


class TemplateNotFound(LookupError):
    pass


class RenderFailed(ValueError):
    """The template does not parse, or strict rendering lacked variables."""


class TemplateStore:
    """Templates by (provider, id); thread-safe, emptied with the sandbox's reset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._templates: dict[tuple[str, str], dict[str, Any]] = {}

    def put(self, provider: str, template_id: str, template: dict[str, Any]) -> None:
        with self._lock:
            self._templates[provider, template_id] = template

    def get(self, provider: str, template_id: str) -> dict[str, Any]:
        with self._lock:
            try:
                return dict(self._templates[provider, template_id])
            except KeyError:
                raise TemplateNotFound(template_id) from None

    def delete(self, provider: str, template_id: str) -> None:
        with self._lock:
            if self._templates.pop((provider, template_id), None) is None:
                raise TemplateNotFound(template_id)

    def list(self, provider: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for (p, _), t in self._templates.items() if p == provider]

    def clear(self) -> None:
        with self._lock:
            self._templates.clear()


def check_syntax(*sources: str, engine: str) -> str:
    """Why one of ``sources`` does not parse with ``engine``, or "" when they all do."""
    for source in sources:
        try:
            mustache.render(source or "", {}, engine=engine)
        except mustache.TemplateSyntax as exc:
            return str(exc)
    return ""


def render_parts(
    parts: dict[str, str], variables: dict[str, Any], *, strict: bool, engine: str
) -> dict[str, str]:
    """Each part rendered; RenderFailed naming every missing variable when strict."""
    rendered: dict[str, str] = {}
    missing: set[str] = set()
    for name, source in parts.items():
        try:
            rendered[name] = mustache.render(source or "", variables, strict=strict, engine=engine)
        except mustache.MissingVariables as exc:
            missing.update(exc.names)
        except mustache.TemplateSyntax as exc:
            raise RenderFailed(f"the template's {name} does not parse: {exc}") from None
    if missing:
        raise RenderFailed(f"variables missing for a strict render: {', '.join(sorted(missing))}")
    return rendered
