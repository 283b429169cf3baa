"""SPF and DMARC read the way receivers evaluate them (RFC 7208, RFC 7489), against
dnsmasq on loopback: includes followed through the whole tree, redirects only where
they apply, void lookups counted, name syntax checked, and DMARC inherited from the
organisational domain."""

from __future__ import annotations

import pytest

from django_txmail.models import SendingDomain

from .test_verify_domains import add, mailtrap_account, rows, verify  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


def check(dns_server, name: str, purpose: str = "spf", host: str = "") -> tuple[str, dict]:
    """Verify ``name``; (the domain's status, the stored result for one record)."""
    domain = add(name)
    verify(dns_server)
    domain = SendingDomain.objects.get(pk=domain.pk)
    host = host or (name if purpose == "spf" else f"_dmarc.{name}")
    return domain.status, rows(domain)[f"{purpose} {host}"]


# SPF: the provider's include wherever the evaluation reaches it.


def test_the_provider_include_inside_an_included_record_passes_and_says_through_what(
    dns_server,
):
    status, spf = check(dns_server, "nested-include.zone.test")
    assert (status, spf["status"]) == ("verified", "ok")
    assert spf["detail"] == (
        "Includes _spf.smtp.mailtrap.live through _spf.corp.zone.test. 2 of 10 DNS lookups used."
    )


def test_the_provider_include_reached_through_a_redirect_passes(dns_server):
    status, spf = check(dns_server, "redirect-only.zone.test")
    assert (status, spf["status"]) == ("verified", "ok")
    assert spf["detail"].endswith("2 of 10 DNS lookups used.")


# SPF: redirect= is ignored beside an all term.


def test_a_redirect_beside_an_all_term_is_neither_followed_nor_counted(dns_server):
    # Followed, chain0.zone.test's 12 lookups would fail the record.
    status, spf = check(dns_server, "redirect-and-all.zone.test")
    assert (status, spf["status"]) == ("verified", "ok")
    assert spf["detail"] == "1 of 10 DNS lookups used."


def test_the_record_to_publish_keeps_a_redirect_working_by_adding_no_all_term(dns_server):
    _, spf = check(dns_server, "redirect-without-include.zone.test")
    assert spf["fix"] == (
        "Add include:_spf.smtp.mailtrap.live to it: "
        "v=spf1 ip4:192.0.2.1 include:_spf.smtp.mailtrap.live redirect=other-esp.test"
    )


def test_the_record_to_publish_keeps_the_all_term_that_already_disables_a_redirect(dns_server):
    _, spf = check(dns_server, "ignored-redirect.zone.test")
    assert spf["fix"] == (
        "Add include:_spf.smtp.mailtrap.live before the 'all' term: "
        "v=spf1 a include:_spf.smtp.mailtrap.live -all"
    )


# SPF: void lookups (RFC 7208 4.6.4).


def test_two_lookups_that_find_nothing_are_allowed(dns_server):
    status, spf = check(dns_server, "two-voids.zone.test")
    assert (status, spf["status"]) == ("verified", "ok")


def test_more_than_two_lookups_that_find_nothing_fail_naming_them(dns_server):
    status, spf = check(dns_server, "three-voids.zone.test")
    assert (status, spf["status"]) == ("failed", "failed")
    assert spf["problem"] == (
        "The SPF record at three-voids.zone.test makes 3 DNS lookups that find nothing "
        "(a:nx1.zone.test, mx:nx2.zone.test, exists:nx3.zone.test); receivers allow 2 and "
        "treat SPF as broken (permerror)."
    )
    assert spf["fix"].startswith("Remove the terms naming hosts that do not exist")


# SPF: what is wrong with an include, each said its own way.


def test_an_include_of_a_domain_with_two_spf_records_says_so(dns_server):
    status, spf = check(dns_server, "include-two-spf.zone.test")
    assert (status, spf["status"]) == ("failed", "failed")
    assert spf["problem"] == (
        "include:two-spf.zone.test names two-spf.zone.test, which has 2 SPF records, so "
        "receivers treat SPF as broken (permerror)."
    )
    assert spf["fix"].startswith("two-spf.zone.test must publish exactly one SPF record")


def test_an_include_of_a_domain_without_spf_says_it_has_none(dns_server):
    status, spf = check(dns_server, "include-no-spf.zone.test")
    assert (status, spf["status"]) == ("failed", "failed")
    assert spf["problem"] == (
        "include:_dmarc.good.zone.test names _dmarc.good.zone.test, which has no SPF record, "
        "so receivers treat SPF as broken (permerror)."
    )
    assert spf["fix"] == (
        "Check the spelling of _dmarc.good.zone.test, or remove include:_dmarc.good.zone.test."
    )


def test_an_include_that_is_not_a_domain_name_is_a_permanent_error(dns_server):
    status, spf = check(dns_server, "bad-include.zone.test")
    assert (status, spf["status"]) == ("failed", "failed")
    assert spf["problem"] == (
        "include:foo..bar in the SPF record of bad-include.zone.test is not a valid domain "
        "name (it has an empty label: two dots in a row, or a dot at the start), so "
        "receivers treat SPF as broken (permerror)."
    )
    assert spf["fix"] == "Correct the domain in include:foo..bar, or remove the term."


def test_an_include_without_a_domain_is_a_permanent_error(dns_server):
    status, spf = check(dns_server, "empty-include.zone.test")
    assert (status, spf["status"]) == ("failed", "failed")
    assert spf["problem"] == (
        "include: in the SPF record of empty-include.zone.test names no domain, so receivers "
        "treat SPF as broken (permerror)."
    )
    assert spf["fix"] == "Add the domain after include:, or remove the term."


# DMARC: the organisational domain's record for a subdomain without one.


def test_a_subdomain_without_dmarc_gets_the_organisational_domain_s_sp_policy(dns_server):
    status, dmarc = check(dns_server, "mail.org.zone.test", "dmarc")
    assert (status, dmarc["status"]) == ("verified", "ok")
    assert dmarc["detail"] == (
        "No DMARC record at _dmarc.mail.org.zone.test: the organisational domain's record at "
        "_dmarc.org.zone.test applies, with sp=reject."
    )
    assert dmarc["found"] == ["v=DMARC1; p=none; sp=reject; rua=mailto:d@zone.test"]


def test_the_walk_goes_up_label_by_label_and_uses_p_without_sp(dns_server):
    status, dmarc = check(dns_server, "mail.eu.org2.zone.test", "dmarc")
    assert (status, dmarc["status"]) == ("verified", "ok")
    assert dmarc["detail"] == (
        "No DMARC record at _dmarc.mail.eu.org2.zone.test: the organisational domain's record "
        "at _dmarc.org2.zone.test applies, with p=quarantine."
    )


def test_an_inherited_sp_none_is_a_warning_naming_the_record_to_tighten(dns_server):
    status, dmarc = check(dns_server, "mail.lax.zone.test", "dmarc")
    assert (status, dmarc["status"]) == ("verified", "warning")
    assert dmarc["problem"].startswith(
        "No DMARC record at _dmarc.mail.lax.zone.test: the organisational domain's record at "
        "_dmarc.lax.zone.test applies, with sp=none: receivers report mail"
    )
    assert "set sp=quarantine, then sp=reject, at _dmarc.lax.zone.test" in dmarc["fix"]


def test_no_dmarc_here_nor_above_names_every_name_asked(dns_server):
    status, dmarc = check(dns_server, "no-dmarc.zone.test", "dmarc")
    assert (status, dmarc["status"]) == ("failed", "failed")
    assert dmarc["problem"].startswith(
        "No DMARC record at _dmarc.no-dmarc.zone.test (nor at _dmarc.zone.test): "
    )


# Records entered on the domain.


def test_an_entered_host_ending_in_a_dot_is_taken_as_absolute(dns_server):
    entered = {"purpose": "dmarc", "type": "TXT", "host": "_dmarc.org2.zone.test."}
    domain = add("good.zone.test", dns_records=[entered | {"value": "v=DMARC1; p=reject"}])
    verify(dns_server)
    results = rows(SendingDomain.objects.get(pk=domain.pk))
    assert list(results) == ["dmarc _dmarc.org2.zone.test", "spf good.zone.test"]
    assert results["dmarc _dmarc.org2.zone.test"]["detail"] == "Policy p=quarantine."
