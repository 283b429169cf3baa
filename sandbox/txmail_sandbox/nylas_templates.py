"""Nylas application-level templates, emulated (PROVIDERS.md, "Domains … and templates").

``GET|POST /v3/templates``, ``GET|PUT|DELETE /v3/templates/{template_id}``,
``POST /v3/templates/{template_id}/render {variables, strict}`` and
``POST /v3/templates/render {body, engine, variables, strict}``. A template
is ``{id, object: "template", name, subject, body, engine, created_at,
updated_at}``; ``engine`` is ``mustache`` (the default) or ``handlebars``
(Nylas's nunjucks and twig are refused with a 400 saying so). ``strict``
defaults to true: a variable the template uses and the request does not
give is a 400 naming every one. A send with ``template: {id, variables,
strict}`` is rendered the same way (``nylas.py``); its own ``subject`` or
``body`` take precedence over the template's.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from .httpd import Request, Response
from .nylas_responses import error_response, request_id
from .provider_templates import ENGINES, RenderFailed, TemplateNotFound, check_syntax, render_parts
from .routing import Route
from .state import SandboxState

_UNAUTHORIZED = "Unauthorized: send 'Authorization: Bearer <API key>' with a valid key."
_MAX_BODY = 1024 * 1024


class NylasTemplates:
    def __init__(self, state: SandboxState, authorized: Callable[[Request], bool]) -> None:
        self.state = state
        self._authorized = authorized

    def routes(self) -> list[Route]:
        one = "/v3/templates/{template_id}"
        return [
            Route("GET", "/v3/templates", self._auth(self.list_templates)),
            Route("POST", "/v3/templates", self._auth(self.create)),
            Route("POST", "/v3/templates/render", self._auth(self.render_body)),
            Route("GET", one, self._auth(self.get)),
            Route("PUT", one, self._auth(self.update)),
            Route("DELETE", one, self._auth(self.delete)),
            Route("POST", one + "/render", self._auth(self.render)),
        ]

    def _auth(self, handler: Callable[..., Response]) -> Callable[..., Response]:
        def checked(request: Request, **params: str) -> Response:
            if not self._authorized(request):
                return error_response(401, _UNAUTHORIZED)
            return handler(request, **params)

        return checked

    def list_templates(self, request: Request) -> Response:
        data = self.state.templates.list("nylas")
        return Response.json(200, {"request_id": request_id(), "data": data})

    def create(self, request: Request) -> Response:
        body, problem = _fields(request, required=("name", "body"))
        if problem:
            return error_response(400, problem)
        template = new_template(
            str(uuid.uuid4()),
            name=body["name"],
            subject=body.get("subject") or "",
            body=body["body"],
            engine=body.get("engine") or "mustache",
        )
        self.state.templates.put("nylas", template["id"], template)
        return Response.json(200, {"request_id": request_id(), "data": template})

    def get(self, request: Request, template_id: str) -> Response:
        try:
            template = self.state.templates.get("nylas", template_id)
        except TemplateNotFound:
            return _not_found(template_id)
        return Response.json(200, {"request_id": request_id(), "data": template})

    def update(self, request: Request, template_id: str) -> Response:
        try:
            template = self.state.templates.get("nylas", template_id)
        except TemplateNotFound:
            return _not_found(template_id)
        body, problem = _fields(request, required=(), current=template)
        if problem:
            return error_response(400, problem)
        template |= {k: body[k] for k in ("name", "subject", "body", "engine") if k in body}
        template["updated_at"] = int(time.time())
        self.state.templates.put("nylas", template_id, template)
        return Response.json(200, {"request_id": request_id(), "data": template})

    def delete(self, request: Request, template_id: str) -> Response:
        try:
            self.state.templates.delete("nylas", template_id)
        except TemplateNotFound:
            return _not_found(template_id)
        return Response.json(200, {"request_id": request_id()})

    def render(self, request: Request, template_id: str) -> Response:
        body, problem = _json_object(request)
        if problem:
            return error_response(400, problem)
        answer = render_template(self.state, body | {"id": template_id})
        if isinstance(answer, Response):
            return answer
        return Response.json(200, {"request_id": request_id(), "data": answer})

    def render_body(self, request: Request) -> Response:
        body, problem = _fields(request, required=("body", "engine"))
        if problem:
            return error_response(400, problem)
        try:
            rendered = render_parts(
                {"body": body["body"]},
                _variables(body),
                strict=body.get("strict", True) is not False,
                engine=body["engine"],
            )
        except (RenderFailed, TypeError) as exc:
            return error_response(400, f"Template render failed: {exc}")
        return Response.json(200, {"request_id": request_id(), "data": rendered})


def new_template(
    template_id: str, *, subject: str, body: str, engine: str = "mustache", name: str = ""
) -> dict[str, Any]:
    """A template as Nylas stores and returns it."""
    now = int(time.time())
    return {
        "id": template_id,
        "object": "template",
        "name": name or template_id,
        "subject": subject,
        "body": body,
        "engine": engine,
        "created_at": now,
        "updated_at": now,
    }


def render_template(state: SandboxState, reference: dict[str, Any]) -> dict[str, str] | Response:
    """``{subject, body}`` for ``{id, variables, strict}``, or the error answer."""
    try:
        template = state.templates.get("nylas", str(reference.get("id")))
    except TemplateNotFound:
        return _not_found(str(reference.get("id")))
    if not isinstance(reference.get("variables", {}), dict):
        return error_response(400, "template.variables must be an object.")
    try:
        return render_parts(
            {"subject": template["subject"], "body": template["body"]},
            _variables(reference),
            strict=reference.get("strict", True) is not False,
            engine=template["engine"],
        )
    except RenderFailed as exc:
        return error_response(400, f"Template render failed: {exc}")


def _variables(body: dict[str, Any]) -> dict[str, Any]:
    variables = body.get("variables")
    return variables if isinstance(variables, dict) else {}


def _not_found(template_id: str) -> Response:
    return error_response(404, f"Template {template_id!r} not found.")


def _json_object(request: Request) -> tuple[dict[str, Any], str]:
    try:
        body = json.loads(request.read_body(_MAX_BODY) or b"{}")
    except ValueError as exc:
        return {}, f"Request body is not valid JSON: {exc}"
    if not isinstance(body, dict):
        return {}, "Request body must be a JSON object."
    return body, ""


def _fields(
    request: Request, required: tuple[str, ...], current: dict[str, Any] | None = None
) -> tuple[dict[str, Any], str]:
    body, problem = _json_object(request)
    if problem:
        return body, problem
    missing = [name for name in required if not isinstance(body.get(name), str)]
    if missing:
        return body, f"{', '.join(missing)} is required (a string)."
    engine = body.get("engine", (current or {}).get("engine", "mustache"))
    if engine not in ENGINES:
        return body, (
            f"engine {engine!r}: the sandbox renders {' and '.join(ENGINES)} templates only."
        )
    merged = (current or {}) | body
    syntax = check_syntax(merged.get("subject") or "", merged.get("body") or "", engine=engine)
    return body, f"Template does not parse: {syntax}" if syntax else ""
