"""Compiling stored template source with the restricted engine stored templates use.

Kept apart from rendering (which reads ``Template`` rows) so that the models
can validate template source without importing the code that uses them.

Stored templates are written by people who are not developers, so their
engine is the project's (its template directories, loaders and
``string_if_invalid``) with less in it:

* ``{% extends %}`` and ``{% include %}`` reach only the templates named in
  ``TXMAIL["TEMPLATE_LAYOUTS"]`` (a shared email layout, say);
* ``{% load %}`` loads only the libraries named in
  ``TXMAIL["TEMPLATE_LIBRARIES"]`` (default: ``i18n``, ``l10n``, ``tz``);
* the built-in tags and filters are Django's without ``{% debug %}`` and
  ``{% lorem %}``, with the size-checked filters of ``builtins.py``;
* every compiled template renders within the budgets of ``limits.py``.
"""

from __future__ import annotations

import functools

from django.core.exceptions import ImproperlyConfigured
from django.template import Engine, TemplateDoesNotExist, TemplateSyntaxError
from django.template.backends.django import get_installed_libraries
from django.template.base import Template as CompiledTemplate

from django_txmail.conf import get_settings
from django_txmail.stored_templates.limits import instrument


class StoredTemplateEngine(Engine):
    """The project's engine, reduced to what a stored template may use."""

    default_builtins = ["django_txmail.stored_templates.builtins"]

    def __init__(self, *, layouts: frozenset[str], **options) -> None:
        super().__init__(**options)
        self.layouts = layouts

    def find_template(self, name, dirs=None, skip=None):
        if name not in self.layouts:
            allowed = ", ".join(sorted(self.layouts)) or "none"
            raise TemplateDoesNotExist(
                f"{name!r} is not a layout stored templates may extend or include "
                f"(TXMAIL['TEMPLATE_LAYOUTS']: {allowed})."
            )
        template, origin = super().find_template(name, dirs, skip)
        return instrument(template), origin

    def from_string(self, template_code):
        return instrument(super().from_string(template_code))


def engine() -> StoredTemplateEngine:
    """The engine stored templates compile with (see the module docstring)."""
    try:
        project = Engine.get_default()
    except ImproperlyConfigured:
        project = _fallback_engine()
    config = get_settings()
    return _restricted(project, config.template_layouts, config.template_libraries)


@functools.cache
def _fallback_engine() -> Engine:
    return Engine(app_dirs=True, libraries=get_installed_libraries())


@functools.lru_cache(maxsize=8)
def _restricted(
    project: Engine, layouts: tuple[str, ...], libraries: tuple[str, ...]
) -> StoredTemplateEngine:
    return StoredTemplateEngine(
        layouts=frozenset(layouts),
        dirs=project.dirs,
        loaders=project.loaders,
        string_if_invalid=project.string_if_invalid,
        file_charset=project.file_charset,
        libraries={
            name: project.libraries[name] for name in libraries if name in project.libraries
        },
    )


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
