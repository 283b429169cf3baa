"""The tags and filters stored templates have without ``{% load %}``.

Django's built-ins (``defaulttags``, ``defaultfilters``, ``loader_tags``),
except

* ``{% debug %}``, which prints every variable and the loaded modules;
* ``{% lorem %}``, placeholder text of any length;

and with the filters that make text longer than their input checking the
render's size budget (``limits.py``) *before* they run, so that
``"x"|rjust:1000000000`` is refused instead of allocating a gigabyte.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from django.template import Library, defaultfilters, defaulttags, loader_tags

from django_txmail.stored_templates import limits

register = Library()
register.tags = {
    **{k: v for k, v in defaulttags.register.tags.items() if k not in ("debug", "lorem")},
    **loader_tags.register.tags,
}
register.filters = dict(defaultfilters.register.filters)


def _number(text: Any) -> int:
    """The largest number written in a filter argument (a width, a precision), or 0."""
    return max((int(digits) for digits in re.findall(r"\d+", str(text))), default=0)


def _sized(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return len(str(value))


#: filter name → the size its result may reach, from its value and argument.
_GROWTH: dict[str, Callable[[Any, Any], int]] = {
    "ljust": lambda value, arg: _number(arg),
    "rjust": lambda value, arg: _number(arg),
    "center": lambda value, arg: _number(arg),
    "stringformat": lambda value, arg: _number(arg),
    "floatformat": lambda value, arg: _number(arg),
    "add": lambda value, arg: _sized(value) + _sized(arg),
    "join": lambda value, arg: _sized(value) * (len(str(arg)) + 1),
}


def _bounded(name: str, function: Callable) -> Callable:
    @functools.wraps(function)  # keeps Django's flags (is_safe, needs_autoescape, ...)
    def bounded(value, *args, **kwargs):
        arg = args[0] if args else ""
        limits.reserve(_GROWTH[name](value, arg), f"|{name}:{str(arg)[:20]}")
        return function(value, *args, **kwargs)

    return bounded


for _name in _GROWTH:
    register.filters[_name] = _bounded(_name, register.filters[_name])
