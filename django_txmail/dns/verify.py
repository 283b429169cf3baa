"""Check a sending domain from end to end, and record the result on it.

For each ``SendingDomain``:

1. the records to check: those entered on the domain (``dns_records``) if
   any, else the provider's — from its domains API where it has one (Nylas:
   ``info`` for each type, the domain's id looked up by name once and kept),
   else from its documentation (``Adapter.required_records``);
2. each one resolved and judged (``record_checks.py``), plus the domain's
   own SPF sanity and its DMARC policy when the provider asks for neither;
3. where the provider verifies (Nylas ``verify``), it is asked to, for
   every record DNS did not already show to be wrong;
4. the domain's ``status``, ``records`` (the report as JSON) and
   ``last_checked`` are saved.

Status: ``failed`` when a required record is missing or wrong, or the
domain's name does not exist (sending from it is then refused, as for any
unverified domain); ``verified`` when every
required record passed (and the provider confirmed them); ``pending`` when
DNS is right but the provider has not confirmed yet. A check that could not
be made (timeout, SERVFAIL, the provider's API unreachable) proves nothing
either way, so it leaves the status as it was: a name server having a bad
minute never stops a verified domain's mail.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.dns.record_checks import apex_spf, check_record, recommended_dmarc
from django_txmail.dns.records import ERROR, FAILED, OK, PENDING, RecordCheck, RequiredRecord
from django_txmail.dns.resolver import Lookup, parse_nameserver
from django_txmail.exceptions import LookupFailed, ProviderAPIError
from django_txmail.models import SendingDomain
from django_txmail.providers import load_adapter
from django_txmail.providers.base import Adapter
from django_txmail.sending.transport import Transport


@dataclass
class DomainReport:
    """Everything one check found out about one domain.

    ``problems`` are about the domain as a whole (no records known, the
    provider's API refused, the domain does not exist); ``checks`` are per
    record. ``passed`` is what the command's exit status reports.
    """

    domain: str
    provider: str
    status: str
    checked_at: datetime
    nameserver: str
    checks: list[RecordCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems and not any(check.blocking for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "provider": self.provider,
            "status": self.status,
            "passed": self.passed,
            "checked_at": self.checked_at.isoformat(),
            "nameserver": self.nameserver,
            "problems": list(self.problems),
            "records": [check.as_dict() for check in self.checks],
        }


def make_lookup(nameservers: Iterable[str] | None = None, timeout: float | None = None) -> Lookup:
    """A :class:`Lookup` for the given servers, else ``TXMAIL["DNS_NAMESERVERS"]``, else
    the system's; ValueError names a server that cannot be used."""
    config = get_settings()
    servers = list(nameservers or config.dns_nameservers)
    return Lookup([parse_nameserver(s) for s in servers], timeout or config.dns_timeout)


def verify_domains(
    domains: Iterable[SendingDomain], lookup: Lookup | None = None
) -> list[DomainReport]:
    """Check each domain in turn (one HTTP session for the providers' APIs)."""
    lookup = lookup or make_lookup()
    with Transport(pool_size=1) as transport:
        return [verify_domain(domain, lookup, transport) for domain in domains]


def verify_domain(domain: SendingDomain, lookup: Lookup, transport: Transport) -> DomainReport:
    """Check ``domain`` and save the outcome on it; DNS and provider trouble end
    up in the report, never as an exception."""
    report = DomainReport(
        domain.name, domain.provider, domain.status, timezone.now(), lookup.servers
    )
    try:
        adapter = load_adapter(get_settings().account(domain.provider))
    except ImproperlyConfigured as exc:
        report.problems.append(f"{exc} Fix the domain's provider, or the TXMAIL setting.")
        return _save(domain, report)
    api = _ProviderAPI(adapter, transport, domain)
    required = _required_records(domain, adapter, api, report)
    missing = _domain_missing(domain.name, lookup)
    if missing:
        report.problems.append(
            f"The domain {domain.name} does not exist in DNS (NXDOMAIN): check its spelling, "
            "and that it is registered and delegated to your DNS host."
        )
    report.checks = [check_record(record, lookup) for record in _with_recommended(domain, required)]
    for check in report.checks:
        if check.record in api.found and check.status != FAILED:
            api.verify(check, report)
    if api.domain_id and not domain.provider_domain_id:
        domain.provider_domain_id = api.domain_id  # an id entered by hand is never replaced
    # A name that does not exist is a definite answer, whatever else is known.
    report.status = SendingDomain.Status.FAILED if missing else _status(domain.status, report)
    return _save(domain, report)


class _ProviderAPI:
    """The provider's domains API for one domain, errors turned into report problems."""

    def __init__(self, adapter: Adapter, transport: Transport, domain: SendingDomain):
        self.adapter = adapter
        self.transport = transport
        self.domain = domain
        self.domain_id = ""
        #: The records the API described (the ones it can verify).
        self.found: list[RequiredRecord] = []

    def call(self, request_builder, parser, report: DomainReport, *args: Any) -> Any:
        name = self.adapter.account.name
        try:
            return self.transport.call(self.adapter, request_builder(), parser, *args)
        except ImproperlyConfigured as exc:
            report.problems.append(str(exc))
        except ProviderAPIError as exc:
            again = "; run the check again once it answers" if exc.transient else ""
            report.problems.append(f"{name}: {exc}{again}")
        return None

    def records(self, report: DomainReport) -> list[RequiredRecord]:
        self.domain_id = self.domain.provider_domain_id or self._find(report)
        if not self.domain_id:
            return []
        adapter, name = self.adapter, self.domain.name
        found = []
        for kind in adapter.domain_verification_types:
            record = self.call(
                lambda kind=kind: adapter.build_domain_info(self.domain_id, kind),
                adapter.parse_domain_info,
                report,
                name,
                kind,
            )
            if record is None:
                return []
            found.append(record)
        self.found = found
        return found

    def verify(self, check: RecordCheck, report: DomainReport) -> None:
        kind = check.record.purpose
        verdict = self.call(
            lambda: self.adapter.build_verify_domain(self.domain_id, kind),
            self.adapter.parse_verify_domain,
            report,
            kind,
        )
        if verdict is None:
            return
        provider = self.adapter.account.name
        check.provider_status, check.provider_message = verdict.status, verdict.message
        said = f" ({verdict.message})" if verdict.message else ""
        if verdict.status == "failed" and check.status == OK:
            check.status = FAILED
            check.problem = f"DNS looks right here, but {provider} could not verify it{said}."
            check.fix = (
                "Make sure the record is published on the domain's authoritative name "
                "servers (not only this one), then run the check again."
            )
        elif verdict.status == "pending" and check.status == OK:
            check.status = PENDING
            check.problem = f"DNS is right; {provider} has not confirmed it yet{said}."
            check.fix = "DNS changes take a while to reach the provider: run the check again later."

    def _find(self, report: DomainReport) -> str:
        page = ""
        while True:
            found = self.call(
                lambda page=page: self.adapter.build_find_domain(self.domain.name, page),
                self.adapter.parse_find_domain,
                report,
                self.domain.name,
            )
            if found is None:
                return ""
            domain_id, page = found
            if domain_id or not page:
                break
        if not domain_id:
            report.problems.append(
                f"{self.adapter.account.name} has no domain {self.domain.name}: register it "
                "in the provider's dashboard (or its domains API), then run the check again."
            )
        return domain_id


def _required_records(
    domain: SendingDomain, adapter: Adapter, api: _ProviderAPI, report: DomainReport
) -> list[RequiredRecord]:
    if domain.dns_records:
        try:
            entered = domain.dns_records
            if not isinstance(entered, list):
                raise ValueError("it must be a JSON list of records")
            return [
                RequiredRecord.from_dict(r, domain.name, "entered on the domain") for r in entered
            ]
        except ValueError as exc:
            report.problems.append(
                f"The DNS records entered on {domain.name} cannot be read: {exc}. Correct them "
                "in the admin (Sending domains → DNS records to check)."
            )
            return []
    if adapter.domain_verification_types:
        return api.records(report)
    records = adapter.required_records(domain.name)
    if not records:
        report.problems.append(
            f"No DNS records are known for {domain.name} on {domain.provider}: enter the records "
            "the provider's dashboard shows on the domain (DNS records to check)."
        )
    return records


def _with_recommended(domain: SendingDomain, records: list[RequiredRecord]) -> list[RequiredRecord]:
    """The provider's records, plus an SPF sanity check of the domain itself and
    DMARC, when the provider's set has none there."""
    extra = []
    if not any(r.purpose == "spf" and r.host == domain.name for r in records):
        extra.append(apex_spf(domain.name))
    if not any(r.purpose == "dmarc" for r in records):
        extra.append(recommended_dmarc(domain.name))
    return [*records, *extra]


def _domain_missing(name: str, lookup: Lookup) -> bool:
    try:
        return not lookup.exists(name)
    except LookupFailed:
        return False  # the record checks say what went wrong


def _status(previous: str, report: DomainReport) -> str:
    required = [check for check in report.checks if check.record.required]
    if any(check.status == FAILED for check in required):
        return SendingDomain.Status.FAILED
    if report.problems or any(check.status == ERROR for check in required) or not required:
        return previous
    if any(check.status == PENDING for check in required):
        return SendingDomain.Status.PENDING
    return SendingDomain.Status.VERIFIED


def _save(domain: SendingDomain, report: DomainReport) -> DomainReport:
    domain.status = report.status
    domain.records = report.as_dict()
    domain.last_checked = report.checked_at
    fields = ["status", "records", "last_checked", "provider_domain_id", "updated_at"]
    domain.save(update_fields=fields)
    return report
