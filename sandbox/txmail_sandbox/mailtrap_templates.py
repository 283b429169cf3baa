"""Mailtrap email templates, emulated: what a ``template_uuid`` send is rendered from.

Mailtrap keeps templates in its account API
(``/api/accounts/{account_id}/email_templates``): ``POST`` with
``{"email_template": {name, subject, category, body_html, body_text}}``
answers 201 with the template and its ``uuid``; ``GET`` lists them; ``GET``,
``PATCH`` and ``DELETE`` on ``…/{id}`` work on one (``id`` is the numeric
id). The sandbox serves them on the same host as sending, with the same
token. Templates are Handlebars; a send with ``template_uuid`` renders
subject, HTML and text with ``template_variables``, and a variable it lacks
renders empty (Handlebars is not strict), as at Mailtrap.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .httpd import Request, Response
from .mailtrap_account import account_api
from .mailtrap_account import error as _error
from .provider_templates import RenderFailed, TemplateNotFound, check_syntax, render_parts
from .routing import Route
from .state import SandboxState

_FIELDS = ("name", "subject", "category", "body_html", "body_text")
_MAX_BODY = 1024 * 1024
_ids = itertools.count(1)


class MailtrapTemplates:
    def __init__(self, state: SandboxState, authorized: Callable[[Request], bool]) -> None:
        self.state = state
        self._authorized = authorized

    def routes(self) -> list[Route]:
        many = "/api/accounts/{account_id}/email_templates"
        one = many + "/{template_id}"
        return [
            Route("GET", many, self._auth(self.list_templates)),
            Route("POST", many, self._auth(self.create)),
            Route("GET", one, self._auth(self.get)),
            Route("PATCH", one, self._auth(self.update)),
            Route("DELETE", one, self._auth(self.delete)),
        ]

    def _auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        return account_api(self._authorized, handler)

    def list_templates(self, request: Request) -> Response:
        return Response.json(200, self.state.templates.list("mailtrap"))

    def create(self, request: Request) -> Response:
        fields, problem = _fields(request, {})
        if problem:
            return _error(422, [problem])
        if not fields.get("name") or not fields.get("subject"):
            return _error(422, ["name and subject are required"])
        template = new_template(str(uuid.uuid4()), **fields)
        self.state.templates.put("mailtrap", template["uuid"], template)
        return Response.json(201, template)

    def get(self, request: Request, template_id: str) -> Response:
        template = self._find(template_id)
        return template if isinstance(template, Response) else Response.json(200, template)

    def update(self, request: Request, template_id: str) -> Response:
        template = self._find(template_id)
        if isinstance(template, Response):
            return template
        fields, problem = _fields(request, template)
        if problem:
            return _error(422, [problem])
        template |= fields | {"updated_at": datetime.now(UTC).isoformat()}
        self.state.templates.put("mailtrap", template["uuid"], template)
        return Response.json(200, template)

    def delete(self, request: Request, template_id: str) -> Response:
        template = self._find(template_id)
        if isinstance(template, Response):
            return template
        self.state.templates.delete("mailtrap", template["uuid"])
        return Response(204, content_type=None)

    def _find(self, template_id: str) -> dict[str, Any] | Response:
        for template in self.state.templates.list("mailtrap"):
            if str(template["id"]) == template_id:
                return template
        return _error(404, ["Not Found"])


def new_template(template_uuid: str, **fields: str) -> dict[str, Any]:
    """A template as Mailtrap stores and returns it (``fields`` from _FIELDS)."""
    now = datetime.now(UTC).isoformat()
    return {
        "id": next(_ids),
        "uuid": template_uuid,
        **{name: fields.get(name) or "" for name in _FIELDS},
        "created_at": now,
        "updated_at": now,
    }


def render_for_send(state: SandboxState, message: dict[str, Any]) -> dict[str, str] | list[str]:
    """The rendered subject/html/text of a ``template_uuid`` send, or its errors."""
    try:
        template = state.templates.get("mailtrap", str(message["template_uuid"]))
    except TemplateNotFound:
        return [f"template_uuid {message['template_uuid']!r}: no such template"]
    parts = {"subject": template["subject"]}
    parts |= {"html": template["body_html"], "text": template["body_text"]}
    try:
        variables = message.get("template_variables") or {}
        rendered = render_parts(parts, variables, strict=False, engine="handlebars")
    except RenderFailed as exc:
        return [str(exc)]
    return {name: value for name, value in rendered.items() if value}


def _fields(request: Request, current: dict[str, Any]) -> tuple[dict[str, Any], str]:
    try:
        document = json.loads(request.read_body(_MAX_BODY) or b"{}")
    except ValueError as exc:
        return {}, f"invalid JSON: {exc}"
    fields = document.get("email_template") if isinstance(document, dict) else None
    if not isinstance(fields, dict):
        return {}, 'body must be {"email_template": {name, subject, body_html, ...}}'
    fields = {name: fields[name] for name in _FIELDS if name in fields}
    if any(not isinstance(value, str) for value in fields.values()):
        return {}, "template fields must be strings"
    merged = current | fields
    sources = (merged.get(f) or "" for f in ("subject", "body_html", "body_text"))
    syntax = check_syntax(*sources, engine="handlebars")
    return fields, f"template does not parse: {syntax}" if syntax else ""
