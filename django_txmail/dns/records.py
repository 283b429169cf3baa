"""The values a domain check works with: records a provider requires, and what was found.

A provider adapter describes what it needs as :class:`RequiredRecord` values
(Nylas through its domains API, Mailtrap and MailerLogic from their
documentation, or records entered on the domain); the check turns each into
a :class:`RecordCheck`. Both are plain data, stored as JSON on the domain.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

#: :attr:`RecordCheck.status` values.
OK = "ok"
FAILED = "failed"  # the record is missing or wrong: the user has something to fix
WARNING = "warning"  # works, but is weaker than it should be (DMARC p=none, ...)
ERROR = "error"  # could not be checked (timeout, SERVFAIL): nothing is known about it
PENDING = "pending"  # DNS is right; the provider has not confirmed it yet

RECORD_TYPES = ("TXT", "CNAME", "MX")


@dataclass(frozen=True)
class RequiredRecord:
    """One DNS record the provider wants published for a sending domain.

    ``purpose`` says what it is for (``ownership``, ``spf``, ``dkim``, ``mx``,
    ``feedback``, ``dmarc``, ``verification``, ``tracking``, ...): SPF, DKIM
    and DMARC records are compared by meaning, the others by value.
    ``host`` is the full name (``nylas._domainkey.mail.example.com``).
    ``value`` is the TXT text, the CNAME target, or the MX host with an
    optional preference first (``"10 feedback.example.net"``). A record
    that is not ``required`` only ever warns. ``source`` says where the
    expectation came from, for the report.
    """

    purpose: str
    type: str
    host: str
    value: str
    required: bool = True
    source: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], domain: str, source: str) -> RequiredRecord:
        """A record entered on a domain (``SendingDomain.dns_records``); ValueError if malformed."""
        if not isinstance(data, dict):
            raise ValueError(f"each DNS record must be a JSON object, not {data!r}")
        rtype = str(data.get("type", "")).upper()
        if rtype not in RECORD_TYPES:
            raise ValueError(f"record type must be one of {', '.join(RECORD_TYPES)}, not {rtype!r}")
        value = str(data.get("value") or "").strip()
        if not value:
            raise ValueError(f"the {rtype} record for {data.get('host', '@')!r} has no value")
        return cls(
            purpose=str(data.get("purpose") or rtype.lower()),
            type=rtype,
            host=absolute_host(str(data.get("host") or ""), domain),
            value=value,
            required=bool(data.get("required", True)),
            source=source,
        )


@dataclass
class RecordCheck:
    """The outcome for one record: what was expected, what DNS holds, and the fix.

    ``problem`` is one sentence saying what is wrong (empty when ``ok``),
    ``fix`` one sentence saying what to change at the DNS host, ``detail``
    what else is worth knowing when it passed (SPF lookups used, DMARC
    policy). ``provider_status`` is the provider's own verdict where it has a
    verification API (``done``, ``pending``, ``failed``), with its message.
    """

    record: RequiredRecord
    status: str
    found: list[str] = field(default_factory=list)
    problem: str = ""
    fix: str = ""
    detail: str = ""
    provider_status: str = ""
    provider_message: str = ""

    @property
    def blocking(self) -> bool:
        """Whether this check stops the domain from counting as verified."""
        return self.record.required and self.status in (FAILED, ERROR, PENDING)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["record"] = self.record.as_dict()
        return data


@dataclass(frozen=True)
class ProviderVerdict:
    """What a provider's verification API said about one record type:
    ``status`` is ``done``, ``pending`` or ``failed``."""

    status: str
    message: str = ""


def absolute_host(host: str, domain: str) -> str:
    """``host`` as a full name under ``domain``: "@" and "" are the domain itself,
    a relative label (``_dmarc``) gets the domain appended, a full name stays —
    and so does any name ending in a dot, which DNS hosts read as absolute
    (``_dmarc.example.com.`` entered on ``mail.example.com``)."""
    host = host.strip().lower()
    domain = domain.rstrip(".").lower()
    if host in ("", "@"):
        return domain
    if host.endswith("."):
        return host.rstrip(".") or domain
    if host == domain or host.endswith("." + domain):
        return host
    return f"{host}.{domain}"
