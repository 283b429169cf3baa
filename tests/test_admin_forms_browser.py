"""Admin forms and lists in a real browser: what a new user sees while setting up.

A sending domain's provider is picked from the configured accounts; a
template saved with its first language variant is version 1; the delivery
events list explains its search box.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from django_txmail.models import SendingDomain, Template

from .browser import admin_browser, log_in, shot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]


@pytest.fixture
def page(live_server, monkeypatch, settings):
    account = {"API_KEY": "k", "SANDBOX": True}
    settings.TXMAIL = {
        "PROVIDERS": {
            "nylas": {"ADAPTER": "nylas", "API_URI": "https://api.us.nylas.com", **account},
            "mailtrap": {
                "ADAPTER": "mailtrap",
                "API_URI": "https://send.api.mailtrap.io",
                "API_TOKEN": "t",
                "SANDBOX": True,
            },
        },
        "DEFAULT_PROVIDER": "nylas",
    }
    with admin_browser(live_server, monkeypatch) as page:
        yield page


def save(page: Page) -> None:
    page.locator("input[name=_save]").click()


def test_a_sending_domain_takes_its_provider_from_the_configured_accounts(page: Page):
    log_in(page, "/admin/django_txmail/sendingdomain/add/")
    provider = page.locator("select#id_provider")
    expect(provider.locator("option")).to_have_text(["---------", "mailtrap", "nylas"])
    expect(provider).to_have_value("nylas")  # the default account
    page.fill("#id_name", "shop.example")
    provider.select_option("mailtrap")
    shot(page, "domain-add")
    save(page)
    expect(page.locator(".messagelist .success")).to_contain_text("shop.example")
    assert SendingDomain.objects.get(name="shop.example").provider == "mailtrap"


def test_a_domain_naming_no_account_is_refused_on_save_with_the_account_it_meant(page: Page):
    typo = SendingDomain.objects.create(name="old.example", provider="Nylas")
    log_in(page, f"/admin/django_txmail/sendingdomain/{typo.pk}/change/")
    provider = page.locator("select#id_provider")
    expect(provider).to_have_value("Nylas")
    expect(provider.locator("option:checked")).to_have_text("Nylas (not configured)")
    save(page)
    expect(page.locator(".field-provider .errorlist")).to_contain_text(
        "'Nylas' is not an account of TXMAIL['PROVIDERS'] (configured: mailtrap, nylas). "
        "Did you mean 'nylas'?"
    )
    shot(page, "domain-unknown-account")
    assert SendingDomain.objects.get(pk=typo.pk).provider == "Nylas"
    page.locator("select#id_provider").select_option("nylas")
    save(page)
    expect(page.locator(".messagelist .success")).to_be_visible()
    assert SendingDomain.objects.get(pk=typo.pk).provider == "nylas"


def test_the_delivery_event_search_box_explains_itself(page: Page):
    log_in(page, "/admin/django_txmail/deliveryevent/")
    toolbar = page.locator("#toolbar")
    expect(toolbar.locator(".help")).to_have_text(
        "A recipient address or part of one, or the provider's event id or message id."
    )
    expect(toolbar).not_to_contain_text("None")


def test_a_template_saved_with_a_language_variant_starts_at_version_1(page: Page):
    log_in(page, "/admin/django_txmail/template/add/")
    page.fill("#id_name", "Welcome")
    expect(page.locator(".field-inline_css .help")).to_have_text(
        "Move <style> rules into style attributes (for mail clients that drop them)."
    )
    page.fill("#id_subject", "Hi {{ name }}")
    expect(page.locator("#id_slug")).to_have_value("welcome")  # filled in from the name
    page.fill("#id_html", "<p>Hi {{ name }}</p>")
    page.get_by_text(re.compile("add another language variant", re.IGNORECASE)).click()
    page.fill("#id_variants-0-language", "de")
    page.fill("#id_variants-0-subject", "Hallo {{ name }}")
    page.fill("#id_variants-0-html", "<p>Hallo {{ name }}</p>")
    save(page)
    row = page.locator("#result_list tbody tr")
    expect(row.locator(".field-language_list")).to_have_text("en-us, de")
    expect(row.locator(".field-version")).to_have_text("1")
    assert list(Template.objects.values_list("slug", "version")) == [("welcome", 1)]
