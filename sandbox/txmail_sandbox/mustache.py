"""Mustache and Handlebars, enough of them for provider-hosted templates in the sandbox.

Nylas renders its templates with mustache by default (or Handlebars) and
Mailtrap with Handlebars. The sandbox renders them too, so a test of a
``template_id`` send sees the subject and body the recipient would get.

Both engines: ``{{name}}`` and dotted names (HTML-escaped), ``{{{name}}}``
and ``{{& name}}`` (not escaped), ``{{! comments }}``.

* **mustache**: sections ``{{#name}}…{{/name}}`` (a list repeats, any other
  truthy value is pushed as the context, so ``{{.}}`` is the value) and
  inverted sections ``{{^name}}…{{/name}}``; a name not found in the
  current context is looked up in the enclosing ones.
* **handlebars**: the block helpers ``{{#if}}`` / ``{{#unless}}`` (with
  ``{{else}}``), ``{{#each}}`` (lists and objects, with ``@index``,
  ``@key``, ``@first``, ``@last``) and ``{{#with}}``, plus ``this``,
  ``../name`` and ``@root.name``; a name is looked up in the current context
  only, as Handlebars does.

Partials, lambdas, set-delimiter tags, ``{{else if}}`` chains and custom
helpers are not emulated: they raise :class:`TemplateSyntax` rather than
render something the provider would not.

With ``strict``, every name that resolves to nothing is collected and
:class:`MissingVariables` raised, as Nylas does with ``strict: true``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

_TAG = re.compile(r"\{\{\{\s*(.*?)\s*\}\}\}|\{\{\s*([#^/!&>=]?)\s*(.*?)\s*\}\}", re.DOTALL)
_HELPERS = {"if", "unless", "each", "with"}
_MISSING = object()


class TemplateSyntax(ValueError):
    """The template cannot be parsed (or uses what the sandbox does not emulate)."""


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


@dataclass
class _Frame:
    value: Any
    data: dict[str, Any] = field(default_factory=dict)  # @index, @key, ...


def _parse(source: str, handlebars: bool) -> list:
    root: list = []
    stack: list[tuple[_Section, list]] = []
    current = root
    position = 0
    for match in _TAG.finditer(source):
        current.append(source[position : match.start()])
        position = match.end()
        if match.group(1) is not None:
            current.append(("raw", match.group(1)))
            continue
        sigil, content = match.group(2), match.group(3)
        if sigil == "!":
            continue
        if sigil in (">", "="):
            raise TemplateSyntax(f"{{{{{sigil}…}}}} (partials, delimiters) is not emulated")
        if sigil == "&":
            current.append(("raw", content))
        elif sigil in ("#", "^"):
            helper, _, argument = content.partition(" ")
            if handlebars and sigil == "#" and helper in _HELPERS:
                section = _Section(sigil, argument.strip() or "this", helper=helper)
            elif handlebars and " " in content:
                raise TemplateSyntax(f"the helper {{{{#{helper}}}}} is not emulated")
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
        elif handlebars and content.startswith("else") and stack:
            if content != "else":
                raise TemplateSyntax(f"{{{{{content}}}}} chains are not emulated")
            current = stack[-1][0].inverse
        else:
            current.append(("var", content))
    if stack:
        raise TemplateSyntax(f"{{{{#{stack[-1][0].name}}}}} is never closed")
    current.append(source[position:])
    return root


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def _lookup(name: str, frames: list[_Frame], handlebars: bool) -> Any:
    if name in (".", "this"):
        return frames[-1].value
    if handlebars:
        if name.startswith("@root."):
            return _walk(frames[0].value, name[6:].split("."))
        if name.startswith("@"):
            return frames[-1].data.get(name, _MISSING)
        depth = 1
        while name.startswith("../"):
            name, depth = name[3:], depth + 1
        if depth > len(frames):
            return _MISSING
        return _walk(frames[-depth].value, name.removeprefix("this.").split("."))
    parts = name.split(".")
    for frame in reversed(frames):
        if isinstance(frame.value, dict) and parts[0] in frame.value:
            return _walk(frame.value[parts[0]], parts[1:])
    return _MISSING


def _text(value: Any) -> str:
    if value is None or value is _MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Renderer:
    def __init__(self, handlebars: bool) -> None:
        self.handlebars = handlebars
        self.missing: list[str] = []

    def nodes(self, nodes: list, frames: list[_Frame]) -> str:
        out: list[str] = []
        for node in nodes:
            if isinstance(node, str):
                out.append(node)
            elif isinstance(node, tuple):
                kind, name = node
                value = self.lookup(name, frames)
                out.append(_text(value) if kind == "raw" else html.escape(_text(value)))
            else:
                out.append(self.section(node, frames))
        return "".join(out)

    def lookup(self, name: str, frames: list[_Frame]) -> Any:
        value = _lookup(name, frames, self.handlebars)
        if value is _MISSING:
            self.missing.append(name)
        return value

    def section(self, node: _Section, frames: list[_Frame]) -> str:
        value = self.lookup(node.name, frames)
        value = None if value is _MISSING else value
        # JavaScript's idea of false, as in the providers' renderers: {} is true.
        truthy = value is not None and value is not False and value not in (0, "") and value != []
        if node.helper == "unless" or node.kind == "^":
            truthy = not truthy
        if not truthy:
            return self.nodes(node.inverse, frames) if node.kind == "#" else ""
        if node.kind == "^" or node.helper in ("if", "unless"):
            return self.nodes(node.children, frames)
        if node.helper == "with":
            return self.nodes(node.children, [*frames, _Frame(value)])
        if node.helper == "each" or isinstance(value, list):
            return self.each(node, value, frames)
        return self.nodes(node.children, [*frames, _Frame(value)])

    def each(self, node: _Section, value: Any, frames: list[_Frame]) -> str:
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        out = []
        for position, (key, item) in enumerate(items):
            data = {
                "@index": position,
                "@first": position == 0,
                "@last": position == len(items) - 1,
            }
            if isinstance(value, dict):
                data["@key"] = key
            out.append(self.nodes(node.children, [*frames, _Frame(item, data)]))
        return "".join(out)


def render(
    source: str, variables: dict[str, Any], *, strict: bool = False, engine: str = "mustache"
) -> str:
    """``source`` rendered with ``variables`` by ``engine`` (mustache or handlebars).

    Raises TemplateSyntax, or MissingVariables when strict and a name has no value.
    """
    handlebars = engine == "handlebars"
    renderer = _Renderer(handlebars)
    result = renderer.nodes(_parse(source, handlebars), [_Frame(variables)])
    if strict and renderer.missing:
        raise MissingVariables(sorted(set(renderer.missing)))
    return result
