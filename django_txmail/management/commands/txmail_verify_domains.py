"""``manage.py txmail_verify_domains [DOMAIN ...]``: check sending domains' DNS.

For every named ``SendingDomain`` (default: all of them) it gets the records
the domain's provider requires, resolves them, asks the provider to verify
where it has an API (Nylas), prints a table per domain — record, expected,
found, ✓/✗ and a one-line fix — and saves each domain's status, per-record
results and time of check. See ``django_txmail/dns/verify.py``::

    manage.py txmail_verify_domains
    manage.py txmail_verify_domains mail.example.com --nameserver 1.1.1.1
    manage.py txmail_verify_domains --json > dns-report.json

Exit status 1 when a required record is missing or wrong, or could not be
checked; 0 when every domain passed. Run it from cron (daily, say) to learn
of a broken record before receivers do.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.encoding import punycode

from django_txmail.dns.report import render_json, render_text
from django_txmail.dns.verify import make_lookup, verify_domains
from django_txmail.models import SendingDomain

#: Seconds: one DNS answer taking longer than this is as good as none.
MAX_TIMEOUT = 60


class Command(BaseCommand):
    help = (
        "Check the DNS records of sending domains against what their provider requires, "
        "print what to fix, and record each domain's status."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "domains", nargs="*", metavar="DOMAIN", help="domains to check (default: all)"
        )
        parser.add_argument("--json", action="store_true", help="print a JSON report instead")
        parser.add_argument(
            "--nameserver",
            action="append",
            metavar="HOST[:PORT]",
            help="ask this DNS server (repeatable; default: TXMAIL['DNS_NAMESERVERS'], else "
            "the system's resolver)",
        )
        parser.add_argument(
            "--timeout",
            type=float,
            metavar="SECONDS",
            help="longest wait for one DNS answer, at most 60 (default: TXMAIL['DNS_TIMEOUT'], 5)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        timeout = options["timeout"]
        if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
            raise CommandError(
                f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT} "
                f"(for example 5), not {timeout:g}."
            )
        try:
            lookup = make_lookup(options["nameserver"], options["timeout"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        domains = self._domains(options["domains"])
        reports = verify_domains(domains, lookup)
        render = render_json if options["json"] else render_text
        self.stdout.write(render(reports), ending="")
        failed = [report.domain for report in reports if not report.passed]
        if failed:
            raise CommandError(
                f"{len(failed)} of {len(reports)} domains need attention: {', '.join(failed)}."
            )

    def _domains(self, names: list[str]) -> list[SendingDomain]:
        if not names:
            domains = list(SendingDomain.objects.order_by("name", "provider"))
            if not domains:
                raise CommandError(
                    "There are no sending domains to check: add one in the admin "
                    "(Transactional mail → Sending domains)."
                )
            return domains
        wanted = []
        for name in names:
            try:
                wanted.append(punycode(name.strip().lower().rstrip(".")))
            except UnicodeError:
                raise CommandError(f"{name!r} is not a valid domain name.") from None
        domains = list(SendingDomain.objects.filter(name__in=wanted).order_by("name", "provider"))
        unknown = sorted(set(wanted) - {domain.name for domain in domains})
        if unknown:
            known = ", ".join(SendingDomain.objects.values_list("name", flat=True)[:10]) or "none"
            raise CommandError(
                f"No SendingDomain named {', '.join(unknown)} (known: {known}). Add it in the "
                "admin (Transactional mail → Sending domains) first."
            )
        return domains
