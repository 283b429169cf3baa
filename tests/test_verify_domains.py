"""``manage.py txmail_verify_domains`` against a real DNS server (dnsmasq on loopback).

Mailtrap domains here: their required records are Mailtrap's documented set
(SPF include, two DKIM CNAMEs, DMARC), so no provider API is involved; the
Nylas domains API has its own module (test_verify_domains_nylas.py).
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from django_txmail.checks import check_settings
from django_txmail.dns.report import LEGEND
from django_txmail.models import SendingDomain

from .dns_zones import dkim_key

MAILTRAP = {
    "PROVIDERS": {
        "mailtrap": {
            "ADAPTER": "mailtrap",
            "API_TOKEN": "mailtrap-token",
            "API_URI": "https://send.api.mailtrap.io",
        }
    }
}


@pytest.fixture(autouse=True)
def mailtrap_account(settings):
    settings.TXMAIL = MAILTRAP


def verify(dns_server, *args: str, timeout: str = "0.5") -> tuple[bool, str, str]:
    """Run the command; (passed, stdout, the CommandError's text)."""
    out = StringIO()
    try:
        call_command(
            "txmail_verify_domains",
            *args,
            "--nameserver",
            dns_server.nameserver,
            "--timeout",
            timeout,
            stdout=out,
        )
    except CommandError as exc:
        return False, out.getvalue(), str(exc)
    return True, out.getvalue(), ""


def add(name: str, **fields) -> SendingDomain:
    return SendingDomain.objects.create(name=name, provider="mailtrap", **fields)


def rows(domain: SendingDomain) -> dict[str, dict]:
    """The stored per-record results, by "purpose host"."""
    return {f"{r['record']['purpose']} {r['record']['host']}": r for r in domain.records["records"]}


@pytest.mark.django_db
def test_a_domain_with_every_record_right_is_verified_and_the_table_says_so(dns_server):
    domain = add("good.zone.test")
    passed, out, _ = verify(dns_server)
    assert passed
    domain.refresh_from_db()
    assert domain.status == "verified"
    assert domain.last_checked is not None
    assert "good.zone.test (mailtrap): verified, all required records pass" in out
    assert "✗" not in out.replace(LEGEND, "")
    for line in ("✓ spf TXT", "✓ dkim CNAME", "✓ dmarc TXT"):
        assert line in out
    assert "1 of 10 DNS lookups used." in out
    assert "Policy p=reject." in out
    results = rows(domain)
    assert results["dkim rwmt1._domainkey.good.zone.test"]["found"] == [
        "rwmt1.dkim.smtp.mailtrap.live"
    ]
    assert {r["status"] for r in results.values()} == {"ok"}
    assert domain.records["nameserver"] == dns_server.nameserver


@pytest.mark.django_db
def test_two_spf_records_are_reported_with_the_merged_record_to_publish(dns_server):
    domain = add("two-spf.zone.test")
    passed, out, error = verify(dns_server)
    assert not passed
    assert "1 of 1 domains need attention: two-spf.zone.test." in error
    domain.refresh_from_db()
    assert domain.status == "failed"
    spf = rows(domain)["spf two-spf.zone.test"]
    assert spf["status"] == "failed"
    assert spf["problem"].startswith("2 SPF records at two-spf.zone.test; receivers treat")
    assert "Merge them into one TXT record and delete the others: v=spf1 include:" in spf["fix"]
    assert "include:other-esp.test" in spf["fix"]
    assert "include:_spf.smtp.mailtrap.live" in spf["fix"]
    assert "✗ spf TXT" in out


@pytest.mark.django_db
def test_spf_without_the_provider_include_says_which_include_to_add(dns_server):
    domain = add("no-include.zone.test")
    assert not verify(dns_server)[0]
    spf = rows(SendingDomain.objects.get(pk=domain.pk))["spf no-include.zone.test"]
    assert spf["problem"] == (
        "The SPF record at no-include.zone.test does not include _spf.smtp.mailtrap.live, "
        "so mail the provider sends fails SPF."
    )
    assert spf["fix"] == (
        "Add include:_spf.smtp.mailtrap.live before the 'all' term: "
        "v=spf1 include:other-esp.test include:_spf.smtp.mailtrap.live ~all"
    )


@pytest.mark.django_db
def test_spf_needing_more_than_ten_lookups_is_reported_with_its_count(dns_server):
    domain = add("many-lookups.zone.test")
    assert not verify(dns_server)[0]
    spf = rows(SendingDomain.objects.get(pk=domain.pk))["spf many-lookups.zone.test"]
    assert spf["status"] == "failed"
    assert "needs 12 DNS lookups" in spf["problem"]
    assert "receivers stop at 10" in spf["problem"]
    assert "replace a/mx terms with ip4:/ip6: ranges" in spf["fix"]


@pytest.mark.django_db
def test_dmarc_with_p_none_is_a_warning_with_advice_and_the_domain_still_passes(dns_server):
    domain = add("dmarc-none.zone.test")
    passed, out, _ = verify(dns_server)
    assert passed
    domain.refresh_from_db()
    assert domain.status == "verified"
    dmarc = rows(domain)["dmarc _dmarc.dmarc-none.zone.test"]
    assert dmarc["status"] == "warning"
    assert dmarc["problem"].startswith("DMARC policy is p=none: receivers report mail")
    assert "raise it to p=quarantine, then p=reject" in dmarc["fix"]
    assert "! dmarc TXT" in out


@pytest.mark.django_db
def test_a_missing_dmarc_record_fails_where_the_provider_requires_one(dns_server):
    domain = add("no-dmarc.zone.test")
    assert not verify(dns_server)[0]
    dmarc = rows(SendingDomain.objects.get(pk=domain.pk))["dmarc _dmarc.no-dmarc.zone.test"]
    assert dmarc["status"] == "failed"
    assert dmarc["problem"].startswith("No DMARC record at _dmarc.no-dmarc.zone.test")
    assert "Add a TXT record named _dmarc.no-dmarc.zone.test: v=DMARC1; p=none" in dmarc["fix"]


@pytest.mark.django_db
def test_a_dkim_cname_pointing_elsewhere_names_both_targets(dns_server):
    domain = add("wrong-cname.zone.test")
    assert not verify(dns_server)[0]
    results = rows(SendingDomain.objects.get(pk=domain.pk))
    assert results["dkim rwmt1._domainkey.wrong-cname.zone.test"]["status"] == "ok"
    wrong = results["dkim rwmt2._domainkey.wrong-cname.zone.test"]
    assert wrong["problem"] == (
        "rwmt2._domainkey.wrong-cname.zone.test points to rwmt1.dkim.smtp.mailtrap.live, "
        "not rwmt2.dkim.smtp.mailtrap.live."
    )
    assert wrong["fix"] == (
        "Change the CNAME record rwmt2._domainkey.wrong-cname.zone.test to point to "
        "rwmt2.dkim.smtp.mailtrap.live."
    )


@pytest.mark.django_db
def test_a_domain_that_does_not_exist_is_reported_as_nxdomain(dns_server):
    domain = add("absent.zone.test")
    passed, out, _ = verify(dns_server)
    assert not passed
    domain.refresh_from_db()
    assert domain.status == "failed"
    assert domain.records["problems"] == [
        "The domain absent.zone.test does not exist in DNS (NXDOMAIN): check its spelling, "
        "and that it is registered and delegated to your DNS host."
    ]
    dkim = rows(domain)["dkim rwmt1._domainkey.absent.zone.test"]
    assert dkim["problem"] == (
        "No CNAME record at rwmt1._domainkey.absent.zone.test. "
        "(rwmt1._domainkey.absent.zone.test does not exist at all: NXDOMAIN.)"
    )
    assert "✗ The domain absent.zone.test does not exist in DNS (NXDOMAIN)" in out


@pytest.mark.django_db
def test_servfail_is_reported_as_not_checked_and_leaves_a_verified_domain_verified(dns_server):
    domain = add("servfail.test", status="verified")
    passed, out, _ = verify(dns_server)
    assert not passed
    domain.refresh_from_db()
    assert domain.status == "verified"
    spf = rows(domain)["spf servfail.test"]
    assert spf["status"] == "error"
    assert spf["problem"].startswith(
        f"{dns_server.nameserver} answered SERVFAIL for TXT servfail.test: it could not get an "
        "answer from the domain's name servers, or their DNSSEC signatures did not validate."
    )
    assert spf["fix"] == "Nothing is known about this record yet: run the check again."
    assert "? spf TXT" in out


@pytest.mark.django_db
def test_a_timeout_is_reported_for_the_record_it_hit_and_the_others_are_still_checked(dns_server):
    domain = add("slow-dkim.zone.test", status="verified")
    passed, _, _ = verify(dns_server, timeout="0.4")
    assert not passed
    domain.refresh_from_db()
    assert domain.status == "verified"  # could not check: the status is left as it was
    results = rows(domain)
    slow = results["dkim rwmt2._domainkey.slow-dkim.zone.test"]
    assert slow["status"] == "error"
    assert slow["problem"] == (
        f"No answer for CNAME rwmt2._domainkey.slow-dkim.zone.test from {dns_server.nameserver} "
        "within 0.4 s. Check that the name server is reachable (--nameserver), then run the "
        "check again."
    )
    assert results["dkim rwmt1._domainkey.slow-dkim.zone.test"]["status"] == "ok"
    assert results["spf slow-dkim.zone.test"]["status"] == "ok"


@pytest.mark.django_db
def test_a_name_server_that_refuses_is_told_apart_from_a_missing_record(dns_server):
    domain = add("elsewhere.example")
    assert not verify(dns_server)[0]
    spf = rows(SendingDomain.objects.get(pk=domain.pk))["spf elsewhere.example"]
    assert spf["status"] == "error"
    assert spf["problem"].startswith(f"{dns_server.nameserver} refused to answer TXT")


@pytest.mark.django_db
def test_records_entered_on_the_domain_replace_the_documented_set(dns_server):
    expected = f"v=DKIM1; k=rsa; p={dkim_key('nylas')}"
    domain = add(
        "nylas-wrong-dkim.zone.test",
        dns_records=[
            {"purpose": "dkim", "type": "TXT", "host": "nylas._domainkey", "value": expected},
            {"purpose": "tracking", "type": "MX", "host": "bounce", "value": "feedback.nylas.test"},
        ],
    )
    assert not verify(dns_server)[0]
    results = rows(SendingDomain.objects.get(pk=domain.pk))
    assert "dkim rwmt1._domainkey.nylas-wrong-dkim.zone.test" not in results
    assert results["tracking bounce.nylas-wrong-dkim.zone.test"]["status"] == "ok"
    dkim = results["dkim nylas._domainkey.nylas-wrong-dkim.zone.test"]
    assert dkim["status"] == "failed"
    found_key, wanted_key = dkim_key("an old key"), dkim_key("nylas")
    assert dkim["problem"] == (
        "The DKIM key at nylas._domainkey.nylas-wrong-dkim.zone.test does not match the "
        f"provider's: found {found_key[:8]}…{found_key[-8:]}, expected "
        f"{wanted_key[:8]}…{wanted_key[-8:]}. Mail signed by the provider fails DKIM."
    )
    assert dkim["record"]["source"] == "entered on the domain"


@pytest.mark.django_db
def test_records_entered_wrongly_are_reported_not_raised(dns_server):
    domain = add("good.zone.test", dns_records=[{"type": "AAAA", "value": "::1"}])
    assert not verify(dns_server)[0]
    domain.refresh_from_db()
    assert domain.records["problems"] == [
        "The DNS records entered on good.zone.test cannot be read: record type must be one of "
        "TXT, CNAME, MX, not 'AAAA'. Correct them in the admin (Sending domains → DNS records "
        "to check)."
    ]


@pytest.mark.django_db
def test_only_the_named_domains_are_checked(dns_server):
    add("good.zone.test")
    other = add("two-spf.zone.test")
    passed, out, _ = verify(dns_server, "GOOD.zone.test.")
    assert passed
    assert "two-spf" not in out
    other.refresh_from_db()
    assert other.last_checked is None


@pytest.mark.django_db
def test_an_unknown_domain_on_the_command_line_is_a_clear_error(dns_server):
    add("good.zone.test")
    passed, out, error = verify(dns_server, "good.zone.test", "typo.zone.test")
    assert not passed
    assert out == ""
    assert error == (
        "No SendingDomain named typo.zone.test (known: good.zone.test). Add it in the admin "
        "(Transactional mail → Sending domains) first."
    )


@pytest.mark.django_db
def test_no_domains_at_all_is_a_clear_error(dns_server):
    assert verify(dns_server)[2].startswith("There are no sending domains to check")


@pytest.mark.django_db
def test_json_report_for_machines(dns_server):
    add("good.zone.test")
    add("dmarc-none.zone.test")
    passed, out, _ = verify(dns_server, "--json")
    assert passed
    report = json.loads(out)
    assert report["passed"] is True
    assert [d["domain"] for d in report["domains"]] == ["dmarc-none.zone.test", "good.zone.test"]
    first = report["domains"][0]
    assert first["status"] == "verified"
    assert first["nameserver"] == dns_server.nameserver
    statuses = {(r["record"]["purpose"], r["status"]) for r in first["records"]}
    assert ("dmarc", "warning") in statuses


@pytest.mark.parametrize(
    "bad", ["127.0.0.1:99999", "host:port", "no-such-host.invalid", "127.0.0.1:\u0665\u0663"]
)
@pytest.mark.django_db
def test_a_nameserver_that_cannot_be_used_is_a_clear_error(bad):
    with pytest.raises(CommandError, match="name server"):
        call_command("txmail_verify_domains", "--nameserver", bad, stdout=StringIO())


@pytest.mark.django_db
def test_a_nameserver_with_an_unclosed_bracket_is_refused():
    with pytest.raises(CommandError) as caught:
        call_command("txmail_verify_domains", "--nameserver", "[::1", stdout=StringIO())
    assert str(caught.value) == (
        "'[::1' is not a name server: the '[' is never closed; use [IPv6]:port."
    )


@pytest.mark.parametrize("bad", ["nan", "inf", "0", "-1", "61"])
@pytest.mark.django_db
def test_a_timeout_that_is_not_a_sensible_number_of_seconds_is_refused(dns_server, bad):
    # Under timeout.test nothing ever answers: an endless timeout would hang here.
    add("x.timeout.test")
    passed, out, error = verify(dns_server, timeout=bad)
    assert not passed
    assert out == ""
    assert error == (
        f"--timeout must be a number of seconds above 0 and at most 60 (for example 5), "
        f"not {float(bad):g}."
    )


@pytest.mark.django_db
def test_a_domain_whose_provider_account_is_gone_is_reported(dns_server):
    SendingDomain.objects.create(name="good.zone.test", provider="retired")
    passed, _, _ = verify(dns_server)
    assert not passed
    domain = SendingDomain.objects.get()
    assert domain.records["problems"][0].startswith("TXMAIL['PROVIDERS'] has no account 'retired'")


@pytest.mark.parametrize("bad", [float("inf"), float("nan")])
def test_a_dns_timeout_setting_that_never_ends_is_a_configuration_error(settings, bad):
    settings.TXMAIL = MAILTRAP | {"DNS_TIMEOUT": bad}
    assert [(e.id, e.msg) for e in check_settings()] == [
        ("txmail.E001", "TXMAIL['DNS_TIMEOUT'] must be a positive, finite number.")
    ]
