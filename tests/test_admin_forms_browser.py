"""Admin forms and lists in a real browser: what a new user sees while setting up.

A sending domain's provider is picked from the configured accounts.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from django_txmail.models import SendingDomain

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
