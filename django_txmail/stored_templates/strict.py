"""Strict rendering: which variables a render looked for and did not find.

Django's template engine swallows a missing variable (it renders as empty),
and whether a lookup was *allowed* to miss — ``{{ x|default:"" }}``, an
``{% if x %}`` test, a ``{% firstof %}`` candidate — is only known inside
Django's own resolution code. This module is the one place that depends on
that code: it recognises Django's frames (``FilterExpression.resolve``,
``Variable._resolve_lookup``, ``TemplateLiteral.eval``,
``FirstOfNode.render``) by their code objects, looked up at import, so a
Django release that renames them fails here at import, loudly, and
``tests/test_strict_rendering.py`` pins the behaviour down against the
installed Django.

Use: ``missing = Missing()``, then ``render(compiled, variables, missing,
html=...)`` for each part; ``missing.names`` holds the dotted paths of
required variables that were not supplied.
"""

from __future__ import annotations

import sys
from typing import Any

from django.template import Context
from django.template.base import FilterExpression, Variable
from django.template.base import Template as CompiledTemplate
from django.template.defaulttags import FirstOfNode, TemplateLiteral

from django_txmail.stored_templates.limits import tick

_RESOLVE_CODE = FilterExpression.resolve.__code__
_LOOKUP_CODE = Variable._resolve_lookup.__code__
_OPTIONAL_CALLERS = {TemplateLiteral.eval.__code__, FirstOfNode.render.__code__}


def _optional_lookup() -> bool:
    """Whether the lookup that just failed belongs to an expression that may be missing.

    Optional: an expression with ``|default``, an ``{% if %}`` test and a
    ``{% firstof %}`` candidate. Everything else (output, ``{% for %}``
    sequences, ``{% with %}`` values, filter arguments) is required. Found
    from the frames of Django's own resolution, so it holds in any tag and in
    extended or included files.
    """
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code is _RESOLVE_CODE:
            expression = frame.f_locals["self"]
            if any(getattr(f, "__name__", "") == "default" for f, _ in expression.filters):
                return True
            caller = frame.f_back
            return bool(frame.f_locals.get("ignore_failures")) and (
                caller is not None and caller.f_code in _OPTIONAL_CALLERS
            )
        frame = frame.f_back
    return False


def _from_variable_lookup() -> bool:
    """Whether the failing ``[]`` comes from Django resolving ``a.b.c`` (not from a filter)."""
    return sys._getframe(2).f_code is _LOOKUP_CODE


class Missing:
    """Where one render notes the variables it looked for in vain."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def note(self, name: str) -> None:
        if not _optional_lookup():
            self.names.add(name)


class _TrackedDict(dict):
    def __init__(self, data: dict, path: str, missing: Missing) -> None:
        super().__init__(data)
        self.path = path
        self.missing = missing

    def __getitem__(self, key: Any) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            # {{ d.items }} tries d["items"] before the method; that is not missing.
            if _from_variable_lookup() and not (isinstance(key, str) and hasattr(dict, key)):
                self.missing.note(f"{self.path}.{key}")
            raise


class _TrackedList(list):
    def __init__(self, data: list, path: str, missing: Missing) -> None:
        super().__init__(data)
        self.path = path
        self.missing = missing

    def __getitem__(self, index: Any) -> Any:
        try:
            return super().__getitem__(index)
        except IndexError:
            if _from_variable_lookup():
                self.missing.note(f"{self.path}.{index}")
            raise


def _tracked(value: Any, path: str, missing: Missing) -> Any:
    """The variables as dicts and lists that note failed lookups by their path."""
    if isinstance(value, dict):
        items = {k: _tracked(v, f"{path}.{k}" if path else k, missing) for k, v in value.items()}
        return _TrackedDict(items, path, missing) if path else items
    if isinstance(value, list):
        items = [_tracked(item, f"{path}.{i}", missing) for i, item in enumerate(value)]
        return _TrackedList(items, path, missing)
    return value


class _RecordingContext(Context):
    """A Context that notes the top-level names a template looked for in vain.

    It also checks the render's time budget on each loop iteration (``{% for %}``
    sets its variables here), which a loop with an empty body would otherwise skip.
    """

    def __init__(self, data: dict, autoescape: bool, missing: Missing) -> None:
        super().__init__(data, autoescape=autoescape)
        self.missing = missing

    def __getitem__(self, key: str) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            if _from_variable_lookup():
                self.missing.note(key)
            raise

    def __setitem__(self, key: str, value: Any) -> None:
        tick()
        super().__setitem__(key, value)

    def update(self, other_dict):
        tick()
        return super().update(other_dict)


def render(compiled: CompiledTemplate, variables: dict, missing: Missing, html: bool) -> str:
    context = _RecordingContext(_tracked(variables, "", missing), html, missing)
    return compiled.render(context)
