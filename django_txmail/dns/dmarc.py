"""DMARC: the policy that applies to a sending domain, and what to do about it.

A receiver looks for ``_dmarc.<domain>`` first; when the domain publishes no
DMARC record there, the organisational domain's record applies, with its
``sp=`` (subdomain) policy, else its ``p=`` (RFC 7489 6.6.3). So
``mail.example.com`` without a record of its own is protected by
``_dmarc.example.com``. Lacking a public suffix list, the check walks up one
label at a time and stops at the last two (``example.com``), taking the first
parent with exactly one DMARC record — as DMARCbis's tree walk does.
"""

from __future__ import annotations

from django_txmail.dns.records import FAILED, OK, WARNING, RecordCheck, RequiredRecord
from django_txmail.dns.resolver import Lookup
from django_txmail.dns.tags import DMARC_POLICIES, dmarc_policy, is_dmarc, parse_tags
from django_txmail.exceptions import NameMissing

_PREFIX = "_dmarc."


def check_dmarc(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    """Judge the DMARC policy that applies at ``record.host`` (``_dmarc.<domain>``)."""
    found = _dmarc_records(record.host, lookup)
    failing = FAILED if record.required else WARNING
    if not found:
        inherited = _organisational(record.host, lookup)
        if inherited is not None:
            return _judge_inherited(record, failing, *inherited)
        return RecordCheck(
            record,
            failing,
            problem=f"No DMARC record at {record.host}"
            f"{_nor_at(record.host)}: Gmail and Yahoo require one from bulk senders, and "
            "nothing stops others from spoofing the domain.",
            fix=f"Add a TXT record named {record.host}: v=DMARC1; p=none; "
            f"rua=mailto:dmarc-reports@{record.host.removeprefix(_PREFIX)} — then tighten it.",
        )
    if len(found) > 1:
        return RecordCheck(
            record,
            failing,
            found,
            problem=f"{len(found)} DMARC records at {record.host}; receivers ignore all of them.",
            fix="Keep one DMARC record and delete the others.",
        )
    policy = dmarc_policy(found[0])
    if policy not in DMARC_POLICIES:
        return RecordCheck(
            record,
            failing,
            found,
            problem=f"The DMARC record at {record.host} has no valid p= policy ({policy!r}).",
            fix="Set p=none, p=quarantine or p=reject.",
        )
    if policy == "none":
        return RecordCheck(
            record,
            WARNING,
            found,
            problem="DMARC policy is p=none: receivers report mail that fails SPF and DKIM "
            "but still deliver it, so the domain can be spoofed.",
            fix="Read the rua= reports; once only your own services send, raise it to "
            "p=quarantine, then p=reject.",
        )
    return RecordCheck(record, OK, found, detail=f"Policy p={policy}.")


def _judge_inherited(record: RequiredRecord, failing: str, host: str, text: str) -> RecordCheck:
    """The domain has no record: the organisational domain's ``sp=`` (else ``p=``) applies."""
    tags = parse_tags(text)
    tag = "sp" if tags.get("sp", "").lower() in DMARC_POLICIES else "p"
    policy = tags.get(tag, "").lower()
    applies = (
        f"No DMARC record at {record.host}: the organisational domain's record at {host} "
        f"applies, with {tag}={policy}"
    )
    if policy not in DMARC_POLICIES:
        return RecordCheck(
            record,
            failing,
            [text],
            problem=f"No DMARC record at {record.host}, and the organisational domain's record "
            f"at {host} has no valid p= policy ({policy!r}).",
            fix=f"Set p=quarantine or p=reject at {host}, or add a DMARC record at {record.host}.",
        )
    if policy == "none":
        return RecordCheck(
            record,
            WARNING,
            [text],
            problem=f"{applies}: receivers report mail that fails SPF and DKIM but still "
            "deliver it, so the domain can be spoofed.",
            fix=f"Once the reports show only your own services, set sp=quarantine, then "
            f"sp=reject, at {host} (or publish a stricter record at {record.host}).",
        )
    return RecordCheck(record, OK, [text], detail=f"{applies}.")


def _organisational(host: str, lookup: Lookup) -> tuple[str, str] | None:
    """``(host, record)`` of the nearest parent's single DMARC record, or None."""
    for parent in _parents(host):
        found = _dmarc_records(parent, lookup)
        if len(found) == 1:
            return parent, found[0]
    return None


def _parents(host: str) -> list[str]:
    """``_dmarc.a.b.example.com`` → ``[_dmarc.b.example.com, _dmarc.example.com]``."""
    if not host.startswith(_PREFIX):
        return []  # a record entered at another name: no domain to walk up from
    labels = host.removeprefix(_PREFIX).split(".")
    return [_PREFIX + ".".join(labels[i:]) for i in range(1, len(labels) - 1)]


def _nor_at(host: str) -> str:
    parents = _parents(host)
    return f" (nor at {' or '.join(parents)})" if parents else ""


def _dmarc_records(host: str, lookup: Lookup) -> list[str]:
    try:
        return [text for text in lookup.txt(host) if is_dmarc(text)]
    except NameMissing:
        return []
