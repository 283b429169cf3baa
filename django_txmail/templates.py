"""Stored templates: find the right language, render it strictly, derive the text part.

A :class:`~django_txmail.models.Template` is written in the Django template
language by people who are not developers, so rendering is careful:

* the HTML body is autoescaped; the subject and the text part are not (they
  are not HTML);
* *strict* templates refuse to render when they use a variable the caller
  did not supply, naming every one of them (``{{ name|default:"friend" }}``
  marks ``name`` optional);
* variables must be JSON values (what a JSON API, a task queue or the admin's
  sample variables can carry), so a message renders the same wherever it is
  built;
* without a written text part, one is derived from the HTML with html2text;
* ``inline_css`` moves ``<style>`` rules into ``style`` attributes with
  css-inline.

Templates can ``{% extends %}`` or ``{% include %}`` files from the project's
template directories and ``{% load %}`` its tag libraries.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import css_inline
import html2text
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.template import Context, Engine, TemplateSyntaxError
from django.template.backends.django import get_installed_libraries
from django.template.base import Template as CompiledTemplate
from django.template.base import VariableNode
from django.utils import translation
from django.utils.functional import Promise

from .exceptions import TemplateError
from .models import Template, TemplateVariant

#: Filters that say "this variable may be missing".
_OPTIONAL_FILTERS = {"default", "default_if_none"}


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


@functools.cache
def engine() -> Engine:
    """The engine templates are compiled with: the project's dirs and libraries, autoescaping."""
    try:
        default = Engine.get_default()
    except ImproperlyConfigured:
        return Engine(app_dirs=True, libraries=get_installed_libraries(), autoescape=True)
    return Engine(
        dirs=default.dirs,
        app_dirs=default.app_dirs,
        libraries=default.libraries,
        builtins=[b for b in default.builtins if b not in Engine.default_builtins],
        autoescape=True,
    )


@functools.lru_cache(maxsize=512)
def compile_source(source: str) -> CompiledTemplate:
    """Compile template source (cached by its text); TemplateSyntaxError if it is not valid."""
    return engine().from_string(source)


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


class _Tracked(dict):
    """A dict of template variables that notes the keys a template looked for in vain."""

    def __init__(self, data: dict, path: str, missing: set[str]) -> None:
        super().__init__(data)
        self.path = path
        self.missing = missing

    def __getitem__(self, key: Any) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            # {{ d.items }} tries d["items"] before the method; that is not missing.
            if not (isinstance(key, str) and hasattr(dict, key)):
                self.missing.add(f"{self.path}.{key}" if self.path else str(key))
            raise


def _tracked(value: Any, path: str, missing: set[str]) -> Any:
    if isinstance(value, dict):
        return _Tracked(
            {k: _tracked(v, f"{path}.{k}" if path else k, missing) for k, v in value.items()},
            path,
            missing,
        )
    if isinstance(value, list):
        return [_tracked(item, f"{path}.{i}", missing) for i, item in enumerate(value)]
    return value


class _RecordingContext(Context):
    """A Context that notes the top-level names a template looked for in vain."""

    def __init__(self, data: _Tracked, autoescape: bool) -> None:
        super().__init__(data, autoescape=autoescape)
        self.missing = data.missing

    def __getitem__(self, key: str) -> Any:
        try:
            return super().__getitem__(key)
        except KeyError:
            self.missing.add(key)
            raise


def _optional_names(templates: Iterable[CompiledTemplate]) -> set[str]:
    """Variables only ever shown through |default or |default_if_none."""
    names = set()
    for compiled in templates:
        for node in compiled.nodelist.get_nodes_by_type(VariableNode):
            expression = node.filter_expression
            if any(func.__name__ in _OPTIONAL_FILTERS for func, _ in expression.filters):
                names.add(str(expression.var))
    return names


def _is_optional(missing: str, optional: set[str]) -> bool:
    leaf = missing.rsplit(".", 1)[-1]
    return any(
        missing == name or ("." in name and name.rsplit(".", 1)[-1] == leaf) for name in optional
    )


def _render(compiled: CompiledTemplate, variables: dict, missing: set[str], html: bool) -> str:
    context = _RecordingContext(_Tracked(_tracked(variables, "", missing), "", missing), html)
    return compiled.render(context)


def derive_text(html: str) -> str:
    """A plain-text version of an HTML body: paragraphs, lists and links kept readable."""
    converter = html2text.HTML2Text()
    converter.body_width = 0  # never break long URLs across lines
    converter.ignore_images = True
    converter.ignore_emphasis = True
    converter.unicode_snob = True
    converter.inline_links = False  # links as numbered references below the text
    return converter.handle(html).strip() + "\n"


def inline_css(html: str) -> str:
    """Move <style> rules into style attributes; remote stylesheets are never fetched."""
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False)
    try:
        return inliner.inline(html)
    except ValueError as exc:
        raise TemplateError(f"The CSS could not be inlined: {exc}") from None


def _content(template: Template, language: str) -> tuple[str, Template | TemplateVariant]:
    """(language used, object holding subject/html/text) with fallback to the default."""
    wanted = (language or "").strip().lower().replace("_", "-")
    candidates = [wanted, wanted.split("-")[0]] if wanted else []
    variants = {v.language: v for v in template.variants.all()}
    for candidate in candidates:
        if candidate in variants:
            return candidate, variants[candidate]
    return settings.LANGUAGE_CODE.lower(), template


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
    missing: set[str] = set()
    try:
        with translation.override(used_language):
            out = {
                name: _render(compiled[name], variables, missing, html=name == "html")
                for name in compiled
            }
    except Exception as exc:  # a filter or an include failing at render time
        raise TemplateError(
            f"Template {template.slug!r} failed to render: {type(exc).__name__}: {exc}"
        ) from exc
    optional = _optional_names(compiled.values())
    missing = {name for name in missing if not _is_optional(name, optional)}
    if missing and (template.strict if strict is None else strict):
        raise TemplateError(
            f"Template {template.slug!r} uses variables the call did not supply: "
            f"{', '.join(sorted(missing))}. Pass them in template_vars (None for an empty "
            "value), or untick 'strict' on the template to render them empty."
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
        missing=tuple(sorted(missing)),
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
