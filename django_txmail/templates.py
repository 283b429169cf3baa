"""Stored templates: find the right language, render it strictly, derive the text part.

A :class:`~django_txmail.models.Template` is written in the Django template
language by people who are not developers, so rendering is careful:

* the HTML body is autoescaped; the subject and the text part are not (they
  are not HTML);
* *strict* templates refuse to render when they use a variable the caller
  did not supply, naming every one of them (``|default``, ``{% if %}``
  tests and ``{% firstof %}`` candidates are optional);
* variables must be JSON values (what a JSON API, a task queue or the admin's
  sample variables can carry), so a message renders the same wherever it is
  built;
* without a written text part, one is derived from the HTML with html2text;
* ``inline_css`` moves ``<style>`` rules into ``style`` attributes with
  css-inline.

Templates are compiled by the project's template engine, so they can
``{% extends %}`` or ``{% include %}`` its files and ``{% load %}`` its tag
libraries.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import css_inline
import html2text
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Engine, TemplateSyntaxError
from django.template.backends.django import get_installed_libraries
from django.template.base import FilterExpression, Variable, VariableDoesNotExist
from django.template.base import Template as CompiledTemplate
from django.template.defaulttags import FirstOfNode, TemplateLiteral
from django.utils import translation
from django.utils.functional import Promise

from .exceptions import TemplateError
from .models import Template, TemplateVariant, normalize_language

_RESOLVE_CODE = FilterExpression.resolve.__code__
_LOOKUP_CODE = Variable._resolve_lookup.__code__
_OPTIONAL_CALLERS = {TemplateLiteral.eval.__code__, FirstOfNode.render.__code__}


@dataclass(frozen=True)
class RenderedTemplate:
    """A template's output, and which template, version and language produced it."""

    slug: str
    version: int
    language: str
    subject: str
    html: str
    text: str
    #: Variables it used that were not supplied (rendered empty; only when not strict).
    missing: tuple[str, ...] = ()


def engine() -> Engine:
    """The project's template engine (its loaders, directories and libraries).

    Autoescaping does not depend on its settings: the HTML body is always
    rendered with an autoescaping Context, the subject and text never.
    """
    try:
        return Engine.get_default()
    except ImproperlyConfigured:
        return _fallback_engine()


@functools.cache
def _fallback_engine() -> Engine:
    return Engine(app_dirs=True, libraries=get_installed_libraries())


def compile_source(source: str) -> CompiledTemplate:
    """Compile template source; TemplateSyntaxError if it is not valid."""
    return _compile(engine(), source)


@functools.lru_cache(maxsize=512)
def _compile(engine: Engine, source: str) -> CompiledTemplate:
    try:
        return engine.from_string(source)
    except TemplateSyntaxError:
        raise
    except Exception as exc:  # some tags fail with other errors on bad arguments
        raise TemplateSyntaxError(f"{type(exc).__name__}: {exc}") from exc


def syntax_error(source: str) -> str | None:
    """Why ``source`` does not compile, or None when it does."""
    try:
        compile_source(source)
    except TemplateSyntaxError as exc:
        return str(exc)
    return None


def json_variables(variables: Mapping[str, Any] | None, *, what: str = "template_vars") -> dict:
    """``variables`` as plain JSON values (lazy strings made text), or TemplateError."""
    if variables is None:
        return {}
    if not isinstance(variables, Mapping):
        raise TemplateError(
            f"{what} must be a dict of variable names to values, not {type(variables).__name__}."
        )
    return _json_value(variables, what)


def _json_value(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateError(f"Template variable {path} is {value}, which JSON cannot carry.")
        return value
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TemplateError(
                    f"Template variable {path} has the key {key!r}; keys must be strings."
                )
            result[key] = _json_value(item, _join(path, key))
        return result
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{path}.{index}") for index, item in enumerate(value)]
    raise TemplateError(
        f"Template variable {path} is a {type(value).__name__}, which is not JSON-serialisable. "
        "Pass text or numbers: format dates and amounts before sending "
        "(e.g. value.isoformat() or django.utils.formats.date_format(value))."
    )


def _join(path: str, key: str) -> str:
    return key if path == "template_vars" else f"{path}.{key}"


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


class _Missing:
    """Where one render notes the variables it looked for in vain."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def note(self, name: str) -> None:
        if not _optional_lookup():
            self.names.add(name)


class _TrackedDict(dict):
    def __init__(self, data: dict, path: str, missing: _Missing) -> None:
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
    def __init__(self, data: list, path: str, missing: _Missing) -> None:
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


def _tracked(value: Any, path: str, missing: _Missing) -> Any:
    """The variables as dicts and lists that note failed lookups by their path."""
    if isinstance(value, dict):
        items = {k: _tracked(v, f"{path}.{k}" if path else k, missing) for k, v in value.items()}
        return _TrackedDict(items, path, missing) if path else items
    if isinstance(value, list):
        items = [_tracked(item, f"{path}.{i}", missing) for i, item in enumerate(value)]
        return _TrackedList(items, path, missing)
    return value


class _RecordingContext(Context):
    """A Context that notes the top-level names a template looked for in vain."""

    def __init__(self, data: dict, autoescape: bool, missing: _Missing) -> None:
        super().__init__(data, autoescape=autoescape)
        self.missing = missing

    def __getitem__(self, key: str) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            if _from_variable_lookup():
                self.missing.note(key)
            raise


def _render(compiled: CompiledTemplate, variables: dict, missing: _Missing, html: bool) -> str:
    context = _RecordingContext(_tracked(variables, "", missing), html, missing)
    return compiled.render(context)


def derive_text(html: str) -> str:
    """A plain-text version of an HTML body: paragraphs, lists and links kept readable."""
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never break long URLs across lines
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.unicode_snob = True
    converter.inline_links = False  # links as numbered references below the text
    return converter.handle(html).strip("\n").rstrip() + "\n"


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes; remote stylesheets are never fetched."""
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False)
    try:
        return inliner.inline(html)
    except ValueError as exc:
        raise TemplateError(f"The CSS could not be inlined: {exc}") from None


def _content(template: Template, language: str) -> tuple[str, Template | TemplateVariant]:
    """(language used, object holding subject/html/text) with fallback to the default.

    The exact language first (a variant, or the template itself when it is
    LANGUAGE_CODE), then the base language's variant, then the template.
    """
    default = normalize_language(settings.LANGUAGE_CODE)
    wanted = normalize_language(language or "")
    variants = {v.language: v for v in template.variants.all()}
    if wanted in variants:
        return wanted, variants[wanted]
    base = wanted.split("-")[0]
    if wanted and wanted != default and base in variants:
        return base, variants[base]
    return default, template


def get_template(slug: str) -> Template:
    """The stored template called ``slug``, or TemplateError saying where to add it."""
    try:
        return Template.objects.prefetch_related("variants").get(slug=slug)
    except Template.DoesNotExist:
        raise TemplateError(
            f"No template with the slug {slug!r}; add it in the admin (Django txmail › Templates) "
            "or check the spelling."
        ) from None


def render_template(
    template: Template | str,
    variables: Mapping[str, Any] | None = None,
    *,
    language: str | None = None,
    strict: bool | None = None,
) -> RenderedTemplate:
    """Render a stored template (object or slug) in ``language`` (default: the active one).

    ``strict`` overrides the template's own setting (the admin preview uses
    False to show what it can).
    """
    if isinstance(template, str):
        template = get_template(template)
    variables = json_variables(variables)
    used_language, source = _content(
        template, language or translation.get_language() or settings.LANGUAGE_CODE
    )
    parts = {"subject": source.subject, "html": source.html, "text": source.text}
    try:
        compiled = {name: compile_source(text) for name, text in parts.items() if text}
    except TemplateSyntaxError as exc:
        raise TemplateError(f"Template {template.slug!r} does not compile: {exc}") from None
    missing = _Missing()
    try:
        with translation.override(used_language):
            out = {
                name: _render(compiled[name], variables, missing, html=name == "html")
                for name in compiled
            }
    except VariableDoesNotExist:
        # A filter argument with no value: Django cannot render past it, strict or not.
        # (Its message would dump every variable, secrets included: never shown.)
        raise TemplateError(
            f"Template {template.slug!r} uses variables the call did not supply as filter "
            f"arguments: {', '.join(sorted(missing.names)) or 'unknown'}. Pass them in "
            "template_vars."
        ) from None
    except Exception as exc:  # a filter or an include failing at render time
        raise TemplateError(
            f"Template {template.slug!r} failed to render: {type(exc).__name__}: {exc}"
        ) from exc
    if missing.names and (template.strict if strict is None else strict):
        raise TemplateError(
            f"Template {template.slug!r} uses variables the call did not supply: "
            f"{', '.join(sorted(missing.names))}. Pass them in template_vars (None for an "
            "empty value), or untick 'strict' on the template to render them empty."
        )
    html = out.get("html", "")
    if html and template.inline_css:
        html = inline_css(html)
    return RenderedTemplate(
        slug=template.slug,
        version=template.version,
        language=used_language,
        subject=" ".join(out.get("subject", "").split()),
        html=html,
        text=out.get("text") or (derive_text(html) if html else ""),
        missing=tuple(sorted(missing.names)),
    )


def send_template(
    slug: str,
    to: str | Sequence[str],
    variables: Mapping[str, Any] | None = None,
    *,
    from_email: str | None = None,
    language: str | None = None,
    fail_silently: bool = False,
    connection: Any = None,
    **kwargs: Any,
):
    """Send the stored template ``slug`` to ``to``; return the message's TxMailResult.

    Other keyword arguments go to :class:`~django_txmail.message.TxMessage`
    (``cc``, ``bcc``, ``reply_to``, ``attachments``, ``headers``, and extras
    such as ``metadata``, ``tags`` or ``idempotency_key``).
    """
    from .message import TxMessage

    message = TxMessage(
        to=[to] if isinstance(to, str) else list(to),
        from_email=from_email,
        template=slug,
        template_vars=dict(variables or {}),
        language=language,
        connection=connection,
        **kwargs,
    )
    message.send(fail_silently=fail_silently)
    return message.txmail
