"""Mustache, with Handlebars' block helpers, for provider-hosted templates in the sandbox.

Nylas renders its templates with mustache by default (or Handlebars) and
Mailtrap with Handlebars. The sandbox renders them too, so a test of a
``template_id`` send sees the subject and body the recipient would get.

Supported: ``{{name}}`` and dotted names (HTML-escaped), ``{{{name}}}`` and
``{{& name}}`` (not escaped), ``{{! comments }}``, sections
``{{#name}}…{{/name}}`` (lists repeat, objects push a context, other truthy
values render once) and inverted sections ``{{^name}}…{{/name}}``, ``{{.}}``;
Handlebars' ``{{#if}}``/``{{#unless}}`` (with ``{{else}}``), ``{{#each}}``
and ``{{#with}}``, and ``this``. Partials, lambdas and set-delimiter tags
are not: they raise :class:`TemplateSyntax`.

With ``strict``, every name that resolves to nothing is collected and
:class:`MissingVariables` raised, as Nylas does with ``strict: true``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

_TAG = re.compile(r"\{\{(\{)?\s*([#^/!&>=]?)\s*(.*?)\s*\}?\}\}", re.DOTALL)
_HELPERS = {"if", "unless", "each", "with"}
_MISSING = object()


class TemplateSyntax(ValueError):
    """The template cannot be parsed."""


class MissingVariables(ValueError):
    """Strict rendering met names with no value."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


@dataclass
class _Section:
    kind: str  # "#" or "^"
    name: str
    helper: str = ""
    children: list = field(default_factory=list)
    inverse: list = field(default_factory=list)


def _parse(source: str) -> list:
    root: list = []
    stack: list[tuple[_Section, list]] = []
    current = root
    position = 0
    for match in _TAG.finditer(source):
        current.append(source[position : match.start()])
        position = match.end()
        triple, sigil, content = match.group(1), match.group(2), match.group(3)
        if triple:
            current.append(("raw", content))
        elif sigil == "!":
            continue
        elif sigil in (">", "="):
            raise TemplateSyntax(f"{{{{{sigil}…}}}} (partials, delimiters) is not supported")
        elif sigil == "&":
            current.append(("raw", content))
        elif sigil in ("#", "^"):
            helper, _, argument = content.partition(" ")
            if sigil == "#" and helper in _HELPERS:
                section = _Section(sigil, argument.strip() or "this", helper=helper)
            else:
                section = _Section(sigil, content)
            stack.append((section, current))
            current.append(section)
            current = section.children
        elif sigil == "/":
            if not stack:
                raise TemplateSyntax(f"{{{{/{content}}}}} closes nothing")
            section, parent = stack.pop()
            if content not in (section.name, section.helper):
                raise TemplateSyntax(f"{{{{/{content}}}}} closes {{{{#{section.name}}}}}")
            current = parent
        elif content == "else" and stack:
            current = stack[-1][0].inverse
        else:
            current.append(("var", content))
    if stack:
        raise TemplateSyntax(f"{{{{#{stack[-1][0].name}}}}} is never closed")
    current.append(source[position:])
    return root


def _lookup(name: str, contexts: list[Any]) -> Any:
    if name in (".", "this"):
        return contexts[-1]
    parts = name.removeprefix("this.").split(".")
    scopes = [contexts[-1]] if name.startswith("this.") else reversed(contexts)
    for scope in scopes:
        if isinstance(scope, dict) and parts[0] in scope:
            value = scope[parts[0]]
            for part in parts[1:]:
                if not isinstance(value, dict) or part not in value:
                    return _MISSING
                value = value[part]
            return value
    return _MISSING


def _text(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _render(nodes: list, contexts: list[Any], missing: list[str]) -> str:
    out: list[str] = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, tuple):
            kind, name = node
            value = _lookup(name, contexts)
            if value is _MISSING:
                missing.append(name)
            out.append(_text(value) if kind == "raw" else html.escape(_text(value)))
        else:
            out.append(_section(node, contexts, missing))
    return "".join(out)


def _section(node: _Section, contexts: list[Any], missing: list[str]) -> str:
    value = _lookup(node.name, contexts)
    if value is _MISSING:
        missing.append(node.name)
        value = None
    # JavaScript's idea of false, as in the providers' renderers: {} is true.
    truthy = value is not None and value is not False and value not in (0, "") and value != []
    if node.helper == "unless" or node.kind == "^":
        truthy = not truthy
    if not truthy:
        return _render(node.inverse, contexts, missing) if node.kind == "#" else ""
    if node.kind == "^" or node.helper in ("if", "unless"):
        return _render(node.children, contexts, missing)
    if isinstance(value, list):
        return "".join(_render(node.children, [*contexts, item], missing) for item in value)
    if isinstance(value, dict) or node.helper in ("each", "with"):
        return _render(node.children, [*contexts, value], missing)
    return _render(node.children, contexts, missing)


def render(source: str, variables: dict[str, Any], *, strict: bool = False) -> str:
    """``source`` rendered with ``variables``; MissingVariables if strict and some lack one."""
    missing: list[str] = []
    result = _render(_parse(source), [variables], missing)
    if strict and missing:
        raise MissingVariables(sorted(set(missing)))
    return result
