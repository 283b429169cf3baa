"""Stored templates: rendering, strictness, languages, text derivation, versions, sending."""

from __future__ import annotations

import datetime

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext_lazy

from django_txmail.exceptions import InvalidMessage, TemplateError
from django_txmail.message import TxMessage
from django_txmail.models import Message, Template, TemplateVariant
from django_txmail.stored_templates.render import derive_text, render_template, send_template

pytestmark = pytest.mark.django_db


def make_template(**fields) -> Template:
    values = {
        "slug": "welcome",
        "name": "Welcome",
        "subject": "Welcome, {{ name }}",
        "html": "<p>Hello {{ name }}, your code is <b>{{ code }}</b>.</p>",
    } | fields
    return Template.objects.create(**values)


def test_renders_subject_html_and_a_derived_text_part():
    make_template()
    out = render_template("welcome", {"name": "Ann", "code": "X1"})
    assert out.subject == "Welcome, Ann"
    assert out.html == "<p>Hello Ann, your code is <b>X1</b>.</p>"
    assert out.text == "Hello Ann, your code is X1.\n"
    assert (out.slug, out.version) == ("welcome", 1)


def test_html_is_autoescaped_but_subject_and_text_are_not():
    make_template(subject="Hi {{ name }}", text="Dear {{ name }}")
    out = render_template("welcome", {"name": "<Ann & Bob>", "code": "1"})
    assert "&lt;Ann &amp; Bob&gt;" in out.html and "<Ann" not in out.html
    assert out.subject == "Hi <Ann & Bob>"
    assert out.text == "Dear <Ann & Bob>"


def test_a_written_text_part_is_used_instead_of_deriving_one():
    make_template(text="Code: {{ code }}")
    assert render_template("welcome", {"name": "A", "code": "9"}).text == "Code: 9"


def test_derived_text_keeps_links_and_lists_readable():
    text = derive_text(
        '<h1>Receipt</h1><ul><li>Tea</li><li>Cake</li></ul><p><a href="https://shop.example/o/1">'
        'Your order</a></p><img src="https://shop.example/logo.png" alt="logo">'
    )
    assert "# Receipt" in text
    assert "  * Tea\n  * Cake" in text
    assert "[Your order][1]" in text and "[1]: https://shop.example/o/1" in text
    assert "logo.png" not in text


def test_a_multi_line_subject_becomes_one_line():
    make_template(subject="Welcome,\n  {{ name }}\n")
    assert render_template("welcome", {"name": "Ann", "code": ""}).subject == "Welcome, Ann"


def test_strict_template_names_every_missing_variable():
    make_template(
        html="{{ name }} {{ code }} {% for line in lines %}{% endfor %} {{ order.total }} "
        "{% with n=nick %}{{ n }}{% endwith %}"
    )
    with pytest.raises(TemplateError) as info:
        render_template("welcome", {"name": "Ann", "order": {"id": 1}})
    message = str(info.value)
    assert "did not supply: code, lines, nick, order.total." in message
    assert "template_vars" in message and "strict" in message


def test_if_tests_firstof_and_default_mark_variables_optional():
    make_template(
        subject="x",
        html="{% if coupon %}{{ coupon }}{% endif %}{% firstof nickname name 'friend' %}"
        "{{ user.profile.nickname|default:'-' }}{% with n=alias|default:'a' %}{{ n }}{% endwith %}"
        "{% if vip|default:'' %}!{% endif %}",
    )
    assert render_template("welcome", {"user": {}}).html == "friend-a"


def test_a_default_somewhere_does_not_make_other_variables_optional():
    make_template(
        subject="Hi {{ name|default:'friend' }}",
        html='{{ shipping.name|default:"" }} Dear {{ customer.name }}, {{ name }}',
    )
    with pytest.raises(TemplateError, match=r"did not supply: customer\.name, name\."):
        render_template("welcome", {"shipping": {}, "customer": {}})


def test_a_missing_filter_argument_is_named_without_showing_the_variables():
    make_template(subject="x", html="{{ greeting|add:suffix }}")
    with pytest.raises(TemplateError) as info:
        render_template("welcome", {"greeting": "hi", "reset_token": "SECRET123"}, strict=False)
    assert "filter arguments: suffix" in str(info.value)
    assert "SECRET123" not in str(info.value)


def test_an_index_past_the_end_of_a_list_is_missing_but_first_of_an_empty_list_is_not():
    make_template(subject="x", html="{{ items.0.name }} {{ items.1.name }} {{ empty|first }}")
    with pytest.raises(TemplateError, match=r"did not supply: items\.1\."):
        render_template("welcome", {"items": [{"name": "a"}], "empty": []})


def test_missing_variables_inside_loops_are_named_by_their_path():
    make_template(
        subject="Order",
        html="{% for item in items %}{{ item.name }} {{ item.price }}{% endfor %}",
    )
    with pytest.raises(TemplateError, match=r"items\.1\.price"):
        render_template("welcome", {"items": [{"name": "a", "price": 1}, {"name": "b"}]})


def test_variables_given_as_none_count_as_supplied():
    make_template(html="{{ name }}{% if coupon %}!{% endif %}", subject="x")
    assert render_template("welcome", {"name": "Ann", "coupon": None}).html == "Ann"


def test_a_default_filter_marks_a_variable_optional():
    make_template(subject="Hi {{ name|default:'friend' }}", html="<p>{{ code }}</p>")
    assert render_template("welcome", {"code": "1"}).subject == "Hi friend"


def test_dict_methods_in_templates_are_not_reported_missing():
    make_template(subject="x", html="{% for k, v in data.items %}{{ k }}={{ v }};{% endfor %}")
    assert render_template("welcome", {"data": {"a": 1}}).html == "a=1;"


def test_a_template_can_opt_out_of_strictness():
    make_template(strict=False)
    out = render_template("welcome", {"name": "Ann"})
    assert out.html == "<p>Hello Ann, your code is <b></b>.</p>"


def test_unknown_slug_is_a_template_error_saying_where_to_add_it():
    with pytest.raises(TemplateError, match="No template with the slug 'nope'.*admin"):
        render_template("nope", {})


def test_variables_that_are_not_json_are_refused_with_their_path():
    make_template()
    with pytest.raises(TemplateError, match=r"order\.placed is a datetime.*isoformat"):
        render_template(
            "welcome", {"name": "A", "code": "1", "order": {"placed": datetime.datetime.now()}}
        )
    with pytest.raises(TemplateError, match="nan"):
        render_template("welcome", {"name": float("nan"), "code": "1"})
    with pytest.raises(TemplateError, match="must be a dict"):
        render_template("welcome", ["name"])


def test_lazy_translation_strings_are_accepted_as_text():
    make_template()
    out = render_template("welcome", {"name": gettext_lazy("Ann"), "code": "1"})
    assert out.subject == "Welcome, Ann"


def test_language_variant_is_chosen_by_argument():
    template = make_template()
    TemplateVariant.objects.create(
        template=template,
        language="de",
        subject="Willkommen, {{ name }}",
        html="<p>Hallo {{ name }}</p>",
    )
    out = render_template("welcome", {"name": "Ann", "code": "1"}, language="de")
    assert (out.subject, out.language) == ("Willkommen, Ann", "de")


def test_regional_language_falls_back_to_its_base_language_then_the_default():
    template = make_template()
    TemplateVariant.objects.create(
        template=template, language="pt", subject="Olá {{ name }}", html="x"
    )
    assert (
        render_template("welcome", {"name": "A", "code": "1"}, language="pt-BR").subject == "Olá A"
    )
    fallback = render_template("welcome", {"name": "A", "code": "1"}, language="fr")
    assert (fallback.subject, fallback.language) == ("Welcome, A", "en-us")


def test_the_active_translation_picks_the_variant():
    template = make_template()
    TemplateVariant.objects.create(template=template, language="de", subject="Hallo", html="x")
    with translation.override("de"):
        assert render_template("welcome", {"name": "A", "code": "1"}).subject == "Hallo"


def test_rendering_happens_in_the_chosen_language():
    template = make_template(subject="x", html="{{ when|date:'F' }}")
    TemplateVariant.objects.create(
        template=template, language="de", subject="x", html="{{ n|yesno }}"
    )
    assert render_template("welcome", {"n": True}, language="de").html == "Ja"


def test_css_is_inlined_when_asked():
    make_template(
        html="<html><head><style>p { color: red }</style></head>"
        "<body><p>Hi {{ name }}</p></body></html>",
        inline_css=True,
    )
    html = render_template("welcome", {"name": "Ann"}).html
    assert '<p style="color: red;">Hi Ann</p>' in html and "<style>" not in html


def test_the_template_own_language_wins_over_a_base_language_variant(settings):
    settings.LANGUAGE_CODE = "en-us"
    template = make_template()
    TemplateVariant.objects.create(template=template, language="en", subject="Hey", html="x")
    vars = {"name": "A", "code": "1"}
    assert render_template("welcome", vars, language="en-us").subject == "Welcome, A"
    assert render_template("welcome", vars, language="en-gb").subject == "Hey"
    assert template.languages() == ["en-us", "en"]


def test_templates_use_the_project_template_loaders(settings):
    layout = "<b>{% block c %}{% endblock %}</b>{{ x|default:'' }}"
    settings.TEMPLATES = [
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "OPTIONS": {
                "loaders": [("django.template.loaders.locmem.Loader", {"emails/base.html": layout})]
            },
        }
    ]
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_LAYOUTS": ["emails/base.html"]}
    make_template(subject="x", html='{% extends "emails/base.html" %}{% block c %}ok{% endblock %}')
    assert render_template("welcome", {}).html == "<b>ok</b>"


def test_templates_can_extend_project_template_files_and_load_libraries(settings):
    settings.TXMAIL = settings.TXMAIL | {"TEMPLATE_LAYOUTS": ["emails/layout.html"]}
    make_template(
        subject="x",
        html='{% extends "emails/layout.html" %}{% block content %}Hi {{ name }}{% endblock %}',
    )
    out = render_template("welcome", {"name": "Ann", "shop": "Tea & Co"}, language="de")
    assert out.html.strip() == "<html><body>Hi Ann<p>yes,no,maybe, Tea &amp; Co</p></body></html>"
    with pytest.raises(TemplateError, match="did not supply: shop"):
        render_template("welcome", {"name": "Ann"})


def test_syntax_errors_are_refused_at_save_per_field():
    template = Template(
        slug="bad", name="Bad", subject="Hi {{ name|shout }}", html="{% if x %}no end"
    )
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert set(info.value.message_dict) == {"subject", "html"}
    assert "endif" in info.value.message_dict["html"][0]
    variant = TemplateVariant(
        template=make_template(), language="de", subject="ok", html="{% bad %}"
    )
    with pytest.raises(ValidationError, match="bad"):
        variant.full_clean()


def test_tags_that_fail_on_bad_arguments_are_syntax_errors_too():
    template = Template(slug="bad", name="Bad", subject="x", html="{% filter %}{% endfilter %}")
    with pytest.raises(ValidationError) as info:
        template.full_clean()
    assert set(info.value.message_dict) == {"html"}


def test_a_stale_copy_never_takes_the_version_back():
    template = make_template()
    stale = Template.objects.get(pk=template.pk)
    TemplateVariant.objects.create(template=template, language="de", subject="x", html="y")
    stale.description = "edited elsewhere"
    stale.save()
    assert Template.objects.get(pk=template.pk).version == 2


def test_editing_content_raises_the_version_but_renaming_does_not():
    template = make_template()
    template.name = "Welcome mail"
    template.save()
    assert template.version == 1
    template.html = "<p>New {{ name }}</p>"
    template.save()
    assert template.version == 2
    TemplateVariant.objects.create(template=template, language="de", subject="x", html="y")
    template.refresh_from_db()
    assert template.version == 3


def test_send_template_records_rendered_content_and_the_version(sandbox, domain):
    template = make_template()
    result = send_template(
        "welcome", "ann@x.example", {"name": "Ann", "code": "A7"}, from_email="shop@example.com"
    )
    message = Message.objects.get(pk=result.message_id)
    assert message.status == "sent"
    assert (message.template, message.template_version) == ("welcome", 1)
    assert message.template_language == "en-us"
    assert message.subject == "Welcome, Ann"
    assert "<b>A7</b>" in message.html_body and message.text_body.startswith("Hello Ann")
    [received] = sandbox.messages
    assert received.payload["subject"] == "Welcome, Ann"
    assert received.payload["body"] == message.html_body

    template.html = "<p>Changed</p>"
    template.save()
    message.refresh_from_db()
    assert "<b>A7</b>" in message.html_body and message.template_version == 1


def test_txmessage_with_template_and_language_goes_through_send_mail_machinery(sandbox, domain):
    template = make_template()
    TemplateVariant.objects.create(
        template=template, language="de", subject="Willkommen {{ name }}", html="<p>{{ code }}</p>"
    )
    msg = TxMessage(
        from_email="shop@example.com",
        to=["ann@x.example"],
        template="welcome",
        template_vars={"name": "Ann", "code": "1"},
        language="de",
        metadata={"order": "7"},
    )
    assert msg.send() == 1
    message = Message.objects.get()
    assert (message.subject, message.template_language) == ("Willkommen Ann", "de")
    assert message.metadata == {"order": "7"}
    assert sandbox.messages[0].payload["subject"] == "Willkommen Ann"


@pytest.mark.parametrize(
    ("variables", "error"),
    [
        ({"name": "Ann"}, "code"),
        ({"name": "Ann", "code": datetime.date(2026, 1, 1)}, "not JSON-serialisable"),
    ],
)
def test_bad_template_sends_raise_and_nothing_is_sent_or_recorded(
    sandbox, domain, variables, error
):
    make_template()
    with pytest.raises(TemplateError, match=error):
        send_template("welcome", "ann@x.example", variables, from_email="shop@example.com")
    assert sandbox.requests == [] and not Message.objects.exists()


def test_unknown_template_slug_sends_nothing(sandbox, domain):
    with pytest.raises(TemplateError, match="No template"):
        send_template("missing", ["ann@x.example"], {}, from_email="shop@example.com")
    assert sandbox.requests == [] and not Message.objects.exists()


def test_stored_and_provider_template_together_are_refused(sandbox, domain):
    make_template()
    msg = TxMessage(
        from_email="shop@example.com", to=["a@x.example"], template="welcome", template_id="tpl"
    )
    with pytest.raises(InvalidMessage, match="not both"):
        msg.send()


def test_template_vars_without_any_template_are_refused(sandbox, domain):
    msg = mail.EmailMessage("s", "b", "shop@example.com", ["a@x.example"])
    msg.template_vars = {"name": "Ann"}
    with pytest.raises(InvalidMessage, match="set msg.template"):
        msg.send()


def test_provider_template_variables_that_are_not_json_are_a_template_error(sandbox, domain):
    msg = TxMessage(
        from_email="shop@example.com",
        to=["a@x.example"],
        template_id="tpl",
        merge_global_data={"when": datetime.date(2026, 1, 1)},
    )
    with pytest.raises(TemplateError, match="when is a date"):
        msg.send()
    assert sandbox.requests == [] and not Message.objects.exists()
