"""The zones the domain-check tests run against: good ones, and one broken way each.

Every sending domain lives under ``zone.test`` (answered by dnsmasq alone, so
a name there without records is NXDOMAIN); the providers' own names
(``smtp.mailtrap.live``, ``nylas.test``, ...) are served too, so SPF includes
can be followed. ``servfail.test`` fails DNSSEC validation (SERVFAIL),
``timeout.test`` and ``rwmt2._domainkey.slow-dkim.zone.test`` never answer.

The ``dns_server`` fixture (a plugin of tests/conftest.py) serves them.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from .dns_server import DnsServer

MAILTRAP_SPF = "v=spf1 include:_spf.smtp.mailtrap.live ~all"
DMARC_REJECT = "v=DMARC1; p=reject; rua=mailto:dmarc@zone.test"


def dkim_key(seed: str) -> str:
    """A base64 "public key" long enough to need two TXT strings (> 255 bytes)."""
    return base64.b64encode(hashlib.sha512(seed.encode()).digest() * 5).decode()


NYLAS_DKIM = f"v=DKIM1; k=rsa; p={dkim_key('nylas')}"
NYLAS_OWNERSHIP = "nylas-domain-verification=7f3c9a"
NYLAS_SPF = "v=spf1 include:spf.nylas.test ~all"


def nylas_records(domain: str) -> dict[str, dict[str, str]]:
    """What the Nylas sandbox's ``info`` answers for ``domain``."""
    return {
        "ownership": {"host": domain, "type": "TXT", "value": NYLAS_OWNERSHIP},
        "spf": {"host": domain, "type": "TXT", "value": NYLAS_SPF},
        "dkim": {"host": f"nylas._domainkey.{domain}", "type": "TXT", "value": NYLAS_DKIM},
        "feedback": {"host": f"bounce.{domain}", "type": "MX", "value": "10 feedback.nylas.test"},
        "mx": {"host": domain, "type": "MX", "value": "10 inbound.nylas.test"},
    }


def _mailtrap_domain(domain: str, spf: str = MAILTRAP_SPF, dmarc: str | None = DMARC_REJECT):
    txt = [(domain, spf), *([(f"_dmarc.{domain}", dmarc)] if dmarc else [])]
    cname = [(f"rwmt{n}._domainkey.{domain}", f"rwmt{n}.dkim.smtp.mailtrap.live") for n in (1, 2)]
    return txt, cname


def _nylas_domain(domain: str, dkim: str = NYLAS_DKIM):
    txt = [
        (domain, NYLAS_OWNERSHIP),
        (domain, NYLAS_SPF),
        (f"nylas._domainkey.{domain}", dkim),
        (f"_dmarc.{domain}", DMARC_REJECT),
    ]
    mx = [(f"bounce.{domain}", "feedback.nylas.test", 10), (domain, "inbound.nylas.test", 10)]
    return txt, mx


def zone_data() -> dict[str, list]:
    txt: list = [
        # The providers' SPF records, so includes can be followed and counted.
        ("_spf.smtp.mailtrap.live", "v=spf1 ip4:192.0.2.0/24 ~all"),
        ("rwmt1.dkim.smtp.mailtrap.live", f"v=DKIM1; k=rsa; p={dkim_key('rwmt1')}"),
        ("rwmt2.dkim.smtp.mailtrap.live", f"v=DKIM1; k=rsa; p={dkim_key('rwmt2')}"),
        ("spf.nylas.test", "v=spf1 ip4:198.51.100.0/24 ~all"),
        ("other-esp.test", "v=spf1 ip4:203.0.113.0/24 ~all"),
        # Twelve lookups: 1 include here + 11 in the chain below.
        ("chain0.zone.test", "v=spf1 include:chain1.zone.test a mx ptr exists:x.zone.test ~all"),
        ("chain1.zone.test", "v=spf1 a mx include:chain2.zone.test ~all"),
        ("chain2.zone.test", "v=spf1 a mx ~all"),
        # A company's own SPF record that includes the provider's.
        ("_spf.corp.zone.test", "v=spf1 include:_spf.smtp.mailtrap.live ip4:10.0.0.0/8 ~all"),
        # Organisational domains' DMARC, for their subdomains that publish none:
        # org.zone.test's subdomains get sp=reject; org2's get p=quarantine.
        ("_dmarc.org.zone.test", "v=DMARC1; p=none; sp=reject; rua=mailto:d@zone.test"),
        ("_dmarc.org2.zone.test", "v=DMARC1; p=quarantine"),
        ("_dmarc.lax.zone.test", "v=DMARC1; p=reject; sp=none"),
    ]
    cname: list = []
    mx: list = []
    for domain, kwargs in {
        "good.zone.test": {},
        "dmarc-none.zone.test": {"dmarc": "v=DMARC1; p=none; rua=mailto:d@zone.test"},
        "no-include.zone.test": {"spf": "v=spf1 include:other-esp.test ~all"},
        "many-lookups.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live include:chain0.zone.test ~all"
        },
        "slow-dkim.zone.test": {},
        "nested-include.zone.test": {"spf": "v=spf1 include:_spf.corp.zone.test ~all"},
        "redirect-only.zone.test": {"spf": "v=spf1 redirect=_spf.corp.zone.test"},
        # The redirect is ignored beside ~all: it would add chain0's 12 lookups.
        "redirect-and-all.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live redirect=chain0.zone.test ~all"
        },
        "two-voids.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live a:nx1.zone.test mx:nx2.zone.test ~all"
        },
        "three-voids.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live a:nx1.zone.test mx:nx2.zone.test "
            "exists:nx3.zone.test ~all"
        },
        "include-two-spf.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live include:two-spf.zone.test ~all"
        },
        "include-no-spf.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live include:_dmarc.good.zone.test ~all"
        },
        "bad-include.zone.test": {
            "spf": "v=spf1 include:_spf.smtp.mailtrap.live include:foo..bar ~all"
        },
        "empty-include.zone.test": {"spf": "v=spf1 include:_spf.smtp.mailtrap.live include: ~all"},
        "redirect-without-include.zone.test": {
            "spf": "v=spf1 ip4:192.0.2.1 redirect=other-esp.test"
        },
        "ignored-redirect.zone.test": {"spf": "v=spf1 a -all redirect=other-esp.test"},
        "mail.org.zone.test": {"dmarc": None},
        "mail.eu.org2.zone.test": {"dmarc": None},
        "mail.lax.zone.test": {"dmarc": None},
    }.items():
        t, c = _mailtrap_domain(domain, **kwargs)
        txt += t
        # slow-dkim's second DKIM name is forwarded to a server that never answers.
        cname += [entry for entry in c if not entry[0].startswith("rwmt2._domainkey.slow")]
    # Two SPF records; and a DKIM CNAME pointing at another provider.
    t, c = _mailtrap_domain("two-spf.zone.test")
    txt += [*t, ("two-spf.zone.test", "v=spf1 include:other-esp.test -all")]
    cname += c
    t, c = _mailtrap_domain("wrong-cname.zone.test")
    txt += t
    cname += [c[0], ("rwmt2._domainkey.wrong-cname.zone.test", "rwmt1.dkim.smtp.mailtrap.live")]
    # No DMARC at all.
    txt.append(("no-dmarc.zone.test", MAILTRAP_SPF))
    cname += _mailtrap_domain("no-dmarc.zone.test")[1]
    for domain, dkim in {
        "nylas-good.zone.test": NYLAS_DKIM,
        "nylas-wrong-dkim.zone.test": f"v=DKIM1; k=rsa; p={dkim_key('an old key')}",
    }.items():
        t, m = _nylas_domain(domain, dkim)
        txt += t
        mx += m
    return {"txt": txt, "cname": cname, "mx": mx}


@pytest.fixture(scope="session")
def dns_server(tmp_path_factory) -> DnsServer:
    data = zone_data()
    server = DnsServer(
        tmp_path_factory.mktemp("dnsmasq"),
        **data,
        local_zones=["zone.test", "mailtrap.live", "nylas.test", "other-esp.test"],
        timeout_zones=["timeout.test", "rwmt2._domainkey.slow-dkim.zone.test"],
        servfail_zones=["servfail.test"],
    )
    with server:
        yield server
