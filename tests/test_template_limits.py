"""Stored templates render in a restricted engine, within a time and an output-size budget."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from django_txmail.exceptions import TemplateError
from django_txmail.message import TxMessage
from django_txmail.models import Message, Template
from django_txmail.stored_templates.render import render_template

pytestmark = pytest.mark.django_db

#: Two nested loops of 3,000: about 3 s of CPU unchecked.
SLOW = '{% for a in "x"|rjust:3000 %}{% for b in "x"|rjust:3000 %}{% endfor %}{% endfor %}'
#: 200 values of 10,000 characters: 2,000,000 characters, over the default 1,000,000.
LARGE = '{% for a in "x"|rjust:200 %}{{ "y"|rjust:10000 }}{% endfor %}'


@pytest.fixture
def short_time(settings):
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_TIME_LIMIT": 0.2}


def stored(html: str, **fields) -> Template:
    return Template.objects.create(slug="t", name="T", subject="Hi", html=html, **fields)


def test_a_slow_template_is_refused_at_the_time_limit(short_time):
    stored(SLOW)
    with pytest.raises(TemplateError, match=r"Template 't':.*0\.2 s of CPU.*TEMPLATE_TIME_LIMIT"):
        render_template("t")


def test_a_template_producing_too_much_is_refused_at_the_size_limit():
    stored(LARGE)
    with pytest.raises(TemplateError, match=r"longer than 1000000 characters.*TEMPLATE_MAX_SIZE"):
        render_template("t")


@pytest.mark.parametrize(
    "expression",
    [
        '"y"|rjust:2000000',
        '"y"|ljust:2000000',
        '"y"|center:2000000',
        '1|stringformat:"02000000d"',
        "1.5|floatformat:2000000",
        'list|join:"2000000"|rjust:10',
    ],
)
def test_one_filter_call_cannot_make_more_than_the_budget(expression, settings):
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_MAX_SIZE": 1_000_000}
    wide = "x" * 1_000
    template = stored("{{ " + expression.replace('"2000000"', '"' + wide + '"') + " }}")
    with pytest.raises(TemplateError, match="TEMPLATE_MAX_SIZE"):
        render_template(template, {"list": list(range(2_000))})


def test_doubling_a_value_with_add_is_refused_before_it_grows():
    html = "{% with a=s|add:s %}{% with b=a|add:a %}{% with c=b|add:b %}{% with d=c|add:c %}"
    html += "{{ d|length }}{% endwith %}{% endwith %}{% endwith %}{% endwith %}"
    stored(html)
    assert render_template("t", {"s": "x" * 1_000}).html == "16000"
    with pytest.raises(TemplateError, match="add"):
        render_template("t", {"s": "x" * 100_000})


def test_nested_tags_count_their_output_once():
    stored(
        "{% for a in items %}{% if a %}{% with b=a %}{{ big }}{% endwith %}{% endif %}{% endfor %}"
    )
    out = render_template("t", {"items": [1] * 6, "big": "z" * 100_000})
    assert len(out.html) == 600_000


def test_debug_and_lorem_are_unavailable():
    for tag in ("{% debug %}", "{% lorem 1000000 w %}"):
        with pytest.raises(ValidationError, match="Invalid block tag"):
            Template(slug="d", name="D", subject="s", html=tag).full_clean()


def test_load_is_limited_to_the_configured_libraries(settings):
    with pytest.raises(ValidationError, match="'static' is not a registered tag library"):
        Template(slug="l", name="L", subject="s", html="{% load static %}").full_clean()
    Template(slug="l", name="L", subject="s", html="{% load i18n l10n tz %}").full_clean()
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_LIBRARIES": ["static"]}
    Template(slug="l", name="L", subject="s", html="{% load static %}").full_clean()


def test_include_and_extends_reach_only_the_configured_layouts(settings):
    stored('{% include "emails/layout.html" %}')
    with pytest.raises(TemplateError, match="not a layout.*TEMPLATE_LAYOUTS"):
        render_template("t", {"shop": "Tea"})
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_LAYOUTS": ["emails/layout.html"]}
    assert "Tea" in render_template("t", {"shop": "Tea"}).html


def test_a_budget_covers_the_layout_a_template_extends(settings):
    settings.TXMAIL = settings.TXMAIL | {
        "TEMPLATE_LAYOUTS": ["emails/layout.html"],
        "TEMPLATE_MAX_SIZE": 50_000,
    }
    stored('{% extends "emails/layout.html" %}{% block content %}ok{% endblock %}')
    assert "ok" in render_template("t", {"shop": "Tea"}).html
    with pytest.raises(TemplateError, match="TEMPLATE_MAX_SIZE"):
        render_template("t", {"shop": "s" * 60_000})


def test_the_preview_shows_the_limit(admin_client, short_time):
    template = stored(SLOW)
    page = admin_client.get(reverse("admin:django_txmail_template_preview", args=[template.pk]))
    assert page.status_code == 200 and "TEMPLATE_TIME_LIMIT" in page.text


def test_a_real_send_is_refused_and_records_nothing(sandbox, domain, short_time):
    stored(SLOW)
    message = TxMessage(from_email="shop@example.com", to=["ann@x.example"], template="t")
    with pytest.raises(TemplateError, match="TEMPLATE_TIME_LIMIT"):
        message.send()
    assert not Message.objects.exists() and sandbox.requests == []


def test_the_admin_test_send_shows_the_limit(admin_client, sandbox, domain):
    template = stored(LARGE)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    data = {"to": "qa@x.example", "from_email": "shop@example.com", "language": "en-us"}
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "TEMPLATE_MAX_SIZE" in response.text
    assert not Message.objects.exists() and sandbox.requests == []
