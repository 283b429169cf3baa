"""Templates in the admin: syntax errors on save, the preview, the test send."""

from __future__ import annotations

import html

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from django_txmail.models import Message, Template, TemplateVariant

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(db):
    template = Template.objects.create(
        slug="welcome",
        name="Welcome",
        subject="Welcome, {{ name }}",
        html="<p>Hello <b>{{ name }}</b> {{ code }}</p><script>alert(1)</script>",
        sample_vars={"name": "Sample Ann"},
    )
    TemplateVariant.objects.create(
        template=template, language="de", subject="Willkommen {{ name }}", html="<p>Hallo</p>"
    )
    return template


def form_data(**overrides) -> dict:
    return {
        "name": "Receipt",
        "slug": "receipt",
        "description": "",
        "subject": "Your receipt",
        "html": "<p>{{ total }}</p>",
        "text": "",
        "strict": "on",
        "sample_vars": '{"total": "9.99"}',
        "variants-TOTAL_FORMS": "0",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000",
    } | overrides


def test_a_template_is_created_in_the_admin(admin_client):
    response = admin_client.post(reverse("admin:django_txmail_template_add"), form_data())
    assert response.status_code == 302
    assert Template.objects.get().sample_vars == {"total": "9.99"}


def test_syntax_errors_are_shown_on_save_and_nothing_is_saved(admin_client):
    response = admin_client.post(
        reverse("admin:django_txmail_template_add"),
        form_data(html="<p>{% if total %}unclosed</p>", subject="{{ total|nosuchfilter }}"),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "endif" in errors["html"][0]
    assert "nosuchfilter" in errors["subject"][0]
    assert not Template.objects.exists()


def test_a_variant_with_a_syntax_error_is_refused(admin_client, template):
    data = form_data(
        slug="welcome2",
        **{
            "variants-TOTAL_FORMS": "1",
            "variants-0-language": "fr",
            "variants-0-subject": "Bonjour",
            "variants-0-html": "{% for x in %}",
        },
    )
    response = admin_client.post(reverse("admin:django_txmail_template_add"), data)
    assert response.status_code == 200
    assert not Template.objects.filter(slug="welcome2").exists()
    assert "for" in str(response.context["inline_admin_formsets"][0].formset.errors)


def test_sample_variables_must_be_an_object(admin_client):
    response = admin_client.post(
        reverse("admin:django_txmail_template_add"), form_data(sample_vars='["total"]')
    )
    assert response.status_code == 200
    assert "JSON object" in str(response.context["adminform"].form.errors["sample_vars"])


def test_change_page_links_to_preview_and_test_send(admin_client, template):
    page = admin_client.get(reverse("admin:django_txmail_template_change", args=[template.pk]))
    assert (
        reverse("admin:django_txmail_template_preview", args=[template.pk]).encode() in page.content
    )
    assert (
        reverse("admin:django_txmail_template_send_test", args=[template.pk]).encode()
        in page.content
    )


def test_preview_renders_sample_variables_in_a_sandboxed_iframe(admin_client, template):
    url = reverse("admin:django_txmail_template_preview", args=[template.pk])
    page = admin_client.get(url).content.decode()
    assert "Welcome, Sample Ann" in page
    assert 'sandbox=""' in page
    srcdoc = page.split('srcdoc="', 1)[1].split('"', 1)[0]
    assert "<b>Sample Ann</b>" in html.unescape(srcdoc)
    # The HTML only ever appears escaped inside srcdoc, never as live markup in the page.
    assert "<script>alert(1)</script>" not in page
    assert "The sample variables lack: code" in page
    assert "Hello Sample Ann" in page  # the derived text part


def test_preview_in_another_language(admin_client, template):
    url = reverse("admin:django_txmail_template_preview", args=[template.pk])
    page = admin_client.get(url, {"language": "de"}).content.decode()
    assert "Willkommen Sample Ann" in page


def test_test_send_form_prefills_the_staff_address(admin_client, template, sandbox, domain):
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    page = admin_client.get(url)
    assert page.context["form"].initial["to"] == User.objects.get(username="admin").email
    assert sandbox.requests == []  # a GET never sends


def test_test_send_goes_through_the_backend_and_is_recorded(
    admin_client, template, sandbox, domain
):
    template.html = "<p>Hello {{ name }}</p>"
    template.save()
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    response = admin_client.post(
        url, {"to": "qa@x.example", "from_email": "shop@example.com", "language": "en-us"}
    )
    assert response.status_code == 302
    [received] = sandbox.messages
    assert received.payload["subject"] == "Welcome, Sample Ann"
    assert received.payload["to"] == [{"email": "qa@x.example", "name": ""}]
    message = Message.objects.get()
    assert (message.template, message.template_version) == ("welcome", template.version)
    assert message.metadata == {"txmail_test_send": "true"}
    follow = admin_client.get(response["Location"])
    assert "Test message sent to qa@x.example" in follow.content.decode()


def test_test_send_with_missing_variables_shows_the_error_and_sends_nothing(
    admin_client, template, sandbox, domain
):
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    response = admin_client.post(
        url, {"to": "qa@x.example", "from_email": "shop@example.com", "language": "en-us"}
    )
    assert response.status_code == 200
    assert "did not supply: code" in response.content.decode()
    assert sandbox.requests == [] and not Message.objects.exists()


def test_test_send_needs_its_permission_and_csrf(client, template, sandbox, domain):
    user = User.objects.create_user("editor", "ed@x.example", "pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_template", "change_template"])
    )
    client.force_login(user)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    data = {"to": "qa@x.example", "from_email": "shop@example.com", "language": "en-us"}
    assert client.get(url).status_code == 403
    assert client.post(url, data).status_code == 403
    assert (
        client.get(reverse("admin:django_txmail_template_preview", args=[template.pk])).status_code
        == 200
    )
    user.user_permissions.add(Permission.objects.get(codename="send_test_template"))
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post(url, data).status_code == 403
    assert sandbox.requests == []


def change_data(template: Template, **overrides) -> dict:
    variant = template.variants.get()
    return (
        form_data(
            name=template.name,
            slug=template.slug,
            subject=template.subject,
            html=template.html,
            sample_vars='{"name": "Sample Ann"}',
            **{
                "variants-TOTAL_FORMS": "1",
                "variants-INITIAL_FORMS": "1",
                "variants-0-id": str(variant.pk),
                "variants-0-template": str(template.pk),
                "variants-0-language": variant.language,
                "variants-0-subject": variant.subject,
                "variants-0-html": variant.html,
            },
        )
        | overrides
    )


def test_one_admin_save_of_a_template_and_its_variant_is_one_new_version(admin_client, template):
    before = Template.objects.get(pk=template.pk).version
    url = reverse("admin:django_txmail_template_change", args=[template.pk])
    data = change_data(template, subject="New {{ name }}", **{"variants-0-subject": "Neu"})
    assert admin_client.post(url, data).status_code == 302
    assert Template.objects.get(pk=template.pk).version == before + 1


def test_a_variant_language_differing_only_in_case_is_a_form_error(admin_client, template):
    url = reverse("admin:django_txmail_template_change", args=[template.pk])
    data = change_data(
        template,
        **{
            "variants-TOTAL_FORMS": "2",
            "variants-1-language": "DE",
            "variants-1-subject": "x",
            "variants-1-html": "y",
        },
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    # Django 5.2 reports it on the formset, 6.0+ on the form: either way, the language.
    errors = str(formset.non_form_errors()) + str(formset.errors)
    assert "duplicate data for language" in errors or "Template and Language already" in errors
    assert template.variants.count() == 1


def template_sender(client, *, any_grant: bool = False) -> User:
    """A staff user who may preview and send tests of templates, logged in on ``client``."""
    user = User.objects.create_user("editor", "ed@x.example", "pw", is_staff=True)
    codenames = ["view_template", "send_test_template"]
    if any_grant:
        codenames.append("send_as_any_grant")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


SEND_TEST = {"to": "qa@x.example", "language": "en-us"}


def test_test_send_refuses_another_users_connected_mailbox(client, template, sandbox, domain):
    from django_txmail.models import Grant

    boss = User.objects.create_user("boss", "ceo@example.com", "pw")
    Grant.objects.create(email="ceo@example.com", provider="nylas", grant_id="g-ceo", user=boss)
    template_sender(client)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    page = client.get(url).content.decode()
    assert "ceo@example.com" not in page  # not offered
    response = client.post(url, SEND_TEST | {"from_email": "CEO@example.com"})
    assert response.status_code == 200
    assert "another user&#x27;s connected mailbox" in response.content.decode()
    assert sandbox.requests == [] and not Message.objects.exists()


def test_test_send_refuses_an_address_outside_every_route(client, template, sandbox, domain):
    template_sender(client)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    response = client.post(url, SEND_TEST | {"from_email": "someone@elsewhere.example"})
    assert "neither at a sending domain" in response.content.decode()
    assert sandbox.requests == [] and not Message.objects.exists()


def test_test_send_offers_and_accepts_the_users_own_grant(client, template, sandbox, domain):
    from django_txmail.models import Grant

    template.html = "<p>Hello {{ name }}</p>"
    template.save()
    user = template_sender(client)
    Grant.objects.create(email="ed@mine.example", provider="nylas", grant_id="g-ed", user=user)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    page = client.get(url).content.decode()
    assert '<option value="ed@mine.example">' in page
    assert client.post(url, SEND_TEST | {"from_email": "ed@mine.example"}).status_code == 302
    assert Message.objects.get().route == "grant"


def test_test_send_accepts_a_sending_domain_address(client, template, sandbox, domain):
    template.html = "<p>Hello {{ name }}</p>"
    template.save()
    template_sender(client)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    assert client.post(url, SEND_TEST | {"from_email": "shop@example.com"}).status_code == 302
    assert Message.objects.get().route == "domain"


def test_send_as_any_grant_allows_another_users_mailbox(client, template, sandbox, domain):
    from django_txmail.models import Grant

    template.html = "<p>Hello {{ name }}</p>"
    template.save()
    boss = User.objects.create_user("boss", "ceo@example.com", "pw")
    Grant.objects.create(email="ceo@example.com", provider="nylas", grant_id="g-ceo", user=boss)
    template_sender(client, any_grant=True)
    url = reverse("admin:django_txmail_template_send_test", args=[template.pk])
    assert '<option value="ceo@example.com">' in client.get(url).content.decode()
    assert client.post(url, SEND_TEST | {"from_email": "ceo@example.com"}).status_code == 302
    assert Message.objects.get().grant.user == boss
