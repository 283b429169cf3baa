"""The DNS records a MailerLogic sending domain needs.

MailerLogic publishes no record set and offers no verification API, so the
check assumes: SPF ``include:spf.mailerlogic.net``; one DKIM CNAME
``ml._domainkey`` → ``ml.dkim.mailerlogic.net``; DMARC recommended. Enter
the records its dashboard shows on the ``SendingDomain`` when they differ.

Every host here is relative to the sending domain.
"""

from __future__ import annotations

from django_txmail.dns.records import RequiredRecord

MAILERLOGIC_SPF_INCLUDE = "spf.mailerlogic.net"
MAILERLOGIC_DKIM_SELECTOR = "ml"


def mailerlogic_records(domain: str) -> list[RequiredRecord]:
    source = "assumed (MailerLogic publishes none)"
    selector = MAILERLOGIC_DKIM_SELECTOR
    return [
        RequiredRecord(
            "spf", "TXT", domain, f"v=spf1 include:{MAILERLOGIC_SPF_INCLUDE} ~all", source=source
        ),
        RequiredRecord(
            "dkim",
            "CNAME",
            f"{selector}._domainkey.{domain}",
            f"{selector}.dkim.mailerlogic.net",
            source=source,
        ),
    ]
