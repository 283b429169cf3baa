"""The strict-rendering shim against the installed Django: which lookups it notes as missing.

``stored_templates/strict.py`` recognises Django's own resolution frames; these
tests pin its behaviour down, so a Django release that changes those internals
fails here, by name, rather than letting strict templates render blanks.
"""

from __future__ import annotations

import pytest
from django.template import Engine

from django_txmail.stored_templates import strict


def missing_in(source: str, variables: dict, *, html: bool = False) -> set[str]:
    missing = strict.Missing()
    strict.render(Engine().from_string(source), variables, missing, html)
    return missing.names


def test_an_output_variable_that_is_not_supplied_is_missing():
    assert missing_in("Hi {{ name }}", {}) == {"name"}


def test_a_supplied_variable_is_not_missing_even_when_empty():
    assert missing_in("Hi {{ name }}", {"name": None}) == set()


@pytest.mark.parametrize(
    "source",
    [
        '{{ name|default:"friend" }}',
        "{% if name %}{{ name }}{% endif %}",
        "{% firstof name nickname 'friend' %}",
    ],
)
def test_optional_lookups_are_not_missing(source):
    assert missing_in(source, {}) == set()


def test_nested_lookups_name_their_whole_path():
    assert missing_in("{{ order.total }} {{ items.2 }}", {"order": {}, "items": [1]}) == {
        "order.total",
        "items.2",
    }


def test_a_dict_method_name_is_not_a_missing_key():
    assert missing_in("{% for k, v in d.items %}{{ k }}{% endfor %}", {"d": {"a": 1}}) == set()


def test_a_for_loop_over_an_unknown_sequence_is_missing():
    assert missing_in("{% for x in rows %}{{ x }}{% endfor %}", {}) == {"rows"}


def test_the_html_part_is_autoescaped_and_the_text_part_is_not():
    compiled = Engine().from_string("{{ x }}")
    assert strict.render(compiled, {"x": "<b>"}, strict.Missing(), True) == "&lt;b&gt;"
    assert strict.render(compiled, {"x": "<b>"}, strict.Missing(), False) == "<b>"


def test_the_shim_found_the_django_code_it_depends_on():
    # Looked up at import: a rename in Django fails the import, not a render.
    from django.template.base import FilterExpression, Variable

    assert strict._RESOLVE_CODE is FilterExpression.resolve.__code__
    assert strict._LOOKUP_CODE is Variable._resolve_lookup.__code__
