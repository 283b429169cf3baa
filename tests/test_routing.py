"""Choosing the route from the From address."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from django_txmail.exceptions import UnroutableSender
from django_txmail.models import Grant, SendingDomain
from django_txmail.outbound_email import Address, OutboundEmail
from django_txmail.routing import resolve
from tests.conftest import txmail_settings

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def two_accounts(settings):
    config = txmail_settings("http://127.0.0.1:9")
    config["PROVIDERS"]["nylas-eu"] = config["PROVIDERS"]["nylas"] | {"SANDBOX": False}
    settings.TXMAIL = config


def email(sender="noreply@example.com", **kwargs):
    return OutboundEmail(from_email=Address(sender), to=[Address("a@x.example")], **kwargs)


def test_domain_route_from_the_sending_domain(domain):
    resolved = resolve(email())
    assert resolved.route.kind == "domain" and resolved.route.domain == "example.com"
    assert resolved.sending_domain == domain and resolved.account.name == "nylas"


def test_sending_domain_names_are_matched_case_and_idn_insensitively(db):
    SendingDomain.objects.create(name="Bücher.Example", provider="nylas")
    resolved = resolve(email("info@xn--bcher-kva.example"))
    assert resolved.route.domain == "xn--bcher-kva.example"


def test_grant_wins_over_the_domain_for_its_own_address(domain, grant):
    resolved = resolve(email("alice@example.org"))
    assert resolved.route.kind == "grant" and resolved.route.grant_id == "grant-alice"


def test_inactive_grant_is_not_used(grant):
    grant.is_active = False
    grant.save()
    with pytest.raises(UnroutableSender, match="no active Grant"):
        resolve(email("alice@example.org"))


def test_unknown_grant_id_is_refused(domain):
    with pytest.raises(UnroutableSender, match="grant_id 'nope'"):
        resolve(email(grant_id="nope"))


def test_no_domain_and_no_grant_says_what_to_do(db):
    with pytest.raises(UnroutableSender) as info:
        resolve(email("x@unknown.example"))
    assert "unknown.example" in str(info.value) and "Sending domains" in str(info.value)


def test_forced_provider_picks_that_accounts_domain(db):
    SendingDomain.objects.create(name="example.com", provider="nylas")
    eu = SendingDomain.objects.create(name="example.com", provider="nylas-eu", status="verified")
    resolved = resolve(email(provider="nylas-eu"))
    assert resolved.sending_domain == eu and resolved.account.name == "nylas-eu"


def test_same_domain_on_two_providers_prefers_the_default(db):
    SendingDomain.objects.create(name="example.com", provider="nylas-eu", status="verified")
    default = SendingDomain.objects.create(name="example.com", provider="nylas")
    assert resolve(email()).sending_domain == default


def test_backend_provider_option_restricts_routing(grant):
    with pytest.raises(UnroutableSender, match="nylas-eu"):
        resolve(email("alice@example.org"), provider="nylas-eu")


def test_unknown_provider_name_is_a_configuration_error(domain):
    with pytest.raises(ImproperlyConfigured, match="no account 'mailgun'"):
        resolve(email(provider="mailgun"))


def test_unverified_domain_on_a_real_account_is_refused(db):
    SendingDomain.objects.create(name="example.com", provider="nylas-eu")
    with pytest.raises(UnroutableSender, match="not verified"):
        resolve(email(provider="nylas-eu"))


def test_grant_email_is_stored_lowercase(db):
    grant = Grant.objects.create(email="Bob@Example.ORG", provider="nylas", grant_id="g-b")
    assert grant.email == "bob@example.org"
    assert resolve(email("bob@example.org")).grant == grant


def _route_lookups(queries) -> int:
    tables = ("django_txmail_grant", "django_txmail_sendingdomain")
    return sum(any(f'FROM "{t}"' in q["sql"] for t in tables) for q in queries.captured_queries)


class _Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_open_backend_looks_a_route_up_once_until_it_changes_or_ages(domain, grant):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from django_txmail.routing import ROUTE_MAX_AGE, Routes

    routes, clock = Routes(), _Clock()
    routes.clock = clock

    def lookups(sender="noreply@example.com", **kwargs) -> int:
        with CaptureQueriesContext(connection) as queries:
            routes.resolve(email(sender, **kwargs))
        return _route_lookups(queries)

    assert lookups() == 2  # the grant for the address, then its domain
    assert lookups() == 0
    assert lookups("alice@example.org") == 1  # another sender: its own lookup
    with pytest.raises(UnroutableSender):  # another account: its own lookup
        routes.resolve(email(provider="nylas-eu"))
    clock.now += ROUTE_MAX_AGE - 1
    assert lookups() == 0
    clock.now += 1
    assert lookups() == 2  # aged out
    domain.allow_unverified = True
    domain.save()  # a change in this process is seen at once
    assert routes.resolve(email()).sending_domain.allow_unverified is True
    assert lookups() == 0
    grant.delete()
    with pytest.raises(UnroutableSender):  # the grant is gone, seen at once
        routes.resolve(email("alice@example.org"))
    routes.clear()
    assert lookups() == 2


def test_a_refusal_is_never_kept(db):
    from django_txmail.routing import Routes

    routes = Routes()
    with pytest.raises(UnroutableSender):
        routes.resolve(email())
    SendingDomain.objects.create(name="example.com", provider="nylas")
    assert routes.resolve(email()).route.domain == "example.com"


def test_a_grant_that_is_not_valid_raises_grant_unavailable(grant):
    from django_txmail.exceptions import GrantUnavailable

    for status in ("expired", "revoked"):
        Grant.objects.filter(pk=grant.pk).update(status=status)
        with pytest.raises(GrantUnavailable, match="alice@example.org"):
            resolve(email("alice@example.org"))


def test_an_open_backend_sees_a_grant_status_change_at_once(grant):
    from django_txmail import grants
    from django_txmail.exceptions import GrantUnavailable
    from django_txmail.routing import Routes

    routes = Routes()
    assert routes.resolve(email("alice@example.org")).grant == grant
    grants.set_status(grant, "expired")  # an UPDATE, no save signal
    with pytest.raises(GrantUnavailable):
        routes.resolve(email("alice@example.org"))
