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

Templates are compiled by a restricted copy of the project's template
engine (``syntax.py``): ``{% extends %}``/``{% include %}`` reach only the
layouts in ``TXMAIL["TEMPLATE_LAYOUTS"]``, ``{% load %}`` only the libraries
in ``TXMAIL["TEMPLATE_LIBRARIES"]``, and ``{% debug %}`` is not there. Each
render (subject, HTML and text together) has a budget of CPU time and of
output size (``limits.py``); running out of either is a ``TemplateError``
naming the limit, in the admin preview, the test send and real sends alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import css_inline
import html2text
from django.conf import settings
from django.template import TemplateSyntaxError
from django.template.base import VariableDoesNotExist
from django.utils import translation
from django.utils.functional import Promise

from django_txmail.conf import get_settings
from django_txmail.exceptions import TemplateError
from django_txmail.models import Template, TemplateVariant, admin_path, normalize_language
from django_txmail.stored_templates.limits import budget
from django_txmail.stored_templates.strict import Missing
from django_txmail.stored_templates.strict import render as render_strictly
from django_txmail.stored_templates.syntax import compile_source


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
            f"No template with the slug {slug!r}; add it in the admin ({admin_path(Template)}) "
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
    missing = Missing()
    config = get_settings()
    try:
        with (
            translation.override(used_language),
            budget(config.template_time_limit, config.template_max_size),
        ):
            out = {
                name: render_strictly(compiled[name], variables, missing, html=name == "html")
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
    except TemplateError as exc:  # a budget ran out
        raise TemplateError(f"Template {template.slug!r}: {exc}") from None
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
    from django_txmail.message import TxMessage

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
