"""The DNS records Mailtrap documents for a sending domain.

Mailtrap offers no verification API we use, so the check works from its
documentation (help.mailtrap.io, "DNS Records"; docs.mailtrap.io, "Sending
Domain Setup"): SPF ``include:_spf.smtp.mailtrap.live`` at the domain; two
DKIM CNAMEs, ``rwmt1._domainkey`` → ``rwmt1.dkim.smtp.mailtrap.live`` and
``rwmt2`` likewise; a DMARC record at ``_dmarc``. Mailtrap also asks for a
domain-verification CNAME (and offers a tracking CNAME) whose names are made
for each domain: those are only known from its dashboard, so enter the
domain's records on the ``SendingDomain`` (*DNS records to check*) to have
them checked — entered records replace this set.

Every host here is relative to the sending domain.
"""

from __future__ import annotations

from django_txmail.dns.records import RequiredRecord

MAILTRAP_SPF_INCLUDE = "_spf.smtp.mailtrap.live"
MAILTRAP_DKIM_SELECTORS = ("rwmt1", "rwmt2")


def mailtrap_records(domain: str) -> list[RequiredRecord]:
    source = "Mailtrap's documentation"
    return [
        RequiredRecord(
            "spf", "TXT", domain, f"v=spf1 include:{MAILTRAP_SPF_INCLUDE} ~all", source=source
        ),
        *(
            RequiredRecord(
                "dkim",
                "CNAME",
                f"{selector}._domainkey.{domain}",
                f"{selector}.dkim.smtp.mailtrap.live",
                source=source,
            )
            for selector in MAILTRAP_DKIM_SELECTORS
        ),
        RequiredRecord(
            "dmarc",
            "TXT",
            f"_dmarc.{domain}",
            "v=DMARC1; p=none; rua=mailto:dmarc@smtp.mailtrap.live; "
            "ruf=mailto:dmarc@smtp.mailtrap.live; rf=afrf; pct=100",
            source=source,
        ),
    ]
