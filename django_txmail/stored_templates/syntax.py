"""Compiling stored template source with the project's template engine.

Kept apart from rendering (which reads ``Template`` rows) so that the models
can validate template source without importing the code that uses them.
"""

from __future__ import annotations

import functools

from django.core.exceptions import ImproperlyConfigured
from django.template import Engine, TemplateSyntaxError
from django.template.backends.django import get_installed_libraries
from django.template.base import Template as CompiledTemplate


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
