"""One required record against DNS: a :class:`RecordCheck` with its one-line fix.

Each way a record can be wrong has its own message, because "DNS check
failed" teaches nobody anything: the record is missing, the name does not
exist, there are two SPF records, the SPF record lacks the provider's
include or needs too many lookups, the DKIM key is another one, the CNAME
points elsewhere, DMARC does not protect anything yet — or the name server
did not answer, which says nothing about the record at all.
"""

from __future__ import annotations

from collections.abc import Callable

from django_txmail.dns import spf
from django_txmail.dns.dmarc import check_dmarc
from django_txmail.dns.records import ERROR, FAILED, OK, WARNING, RecordCheck, RequiredRecord
from django_txmail.dns.resolver import Lookup
from django_txmail.dns.tags import dkim_key
from django_txmail.exceptions import LookupFailed, NameMissing


def check_record(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    """Resolve ``record.host`` and judge what is there; never raises for DNS trouble."""
    checker = _checker(record)
    try:
        return checker(record, lookup)
    except NameMissing:
        # Judged as "no such record", which is what it means for this record.
        check = checker(record, _Nothing())
        check.problem = f"{check.problem} ({record.host} does not exist at all: NXDOMAIN.)"
        return check
    except LookupFailed as exc:
        return RecordCheck(
            record,
            ERROR,
            problem=str(exc),
            fix="Nothing is known about this record yet: run the check again.",
        )


def recommended_dmarc(domain: str) -> RequiredRecord:
    """The DMARC record every sending domain should have, whatever its provider."""
    return RequiredRecord(
        purpose="dmarc",
        type="TXT",
        host=f"_dmarc.{domain}",
        value=f"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@{domain}",
        required=False,
        source="recommended",
    )


def apex_spf(domain: str) -> RequiredRecord:
    """The domain's own SPF record, checked for sanity when the provider asks for none."""
    return RequiredRecord(
        purpose="spf",
        type="TXT",
        host=domain,
        value="v=spf1 ~all",
        required=False,
        source="recommended",
    )


def _checker(record: RequiredRecord) -> Callable[[RequiredRecord, Lookup], RecordCheck]:
    if record.purpose == "spf" and record.type == "TXT":
        return _check_spf
    if record.purpose == "dmarc" and record.type == "TXT":
        return check_dmarc
    if record.purpose == "dkim" and record.type == "TXT":
        return _check_dkim
    return {"TXT": _check_txt, "CNAME": _check_cname, "MX": _check_mx}[record.type]


def _check_txt(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    found = lookup.txt(record.host)
    if record.value in found:
        return RecordCheck(record, OK, found)
    if not found:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=f"No TXT record at {record.host}.",
            fix=f"Add a TXT record named {record.host} with the expected value.",
        )
    return RecordCheck(
        record,
        FAILED,
        found,
        problem=f"None of the TXT records at {record.host} has the expected value.",
        fix=f"Add a TXT record named {record.host} with exactly the expected value "
        "(keep the others if they are in use).",
    )


def _check_cname(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    expected = record.value.rstrip(".").lower()
    target = lookup.cname(record.host)
    if target == expected:
        return RecordCheck(record, OK, [target])
    if target is None:
        return RecordCheck(
            record,
            FAILED,
            problem=f"No CNAME record at {record.host}.",
            fix=f"Add a CNAME record named {record.host} pointing to {expected}.",
        )
    return RecordCheck(
        record,
        FAILED,
        [target],
        problem=f"{record.host} points to {target}, not {expected}.",
        fix=f"Change the CNAME record {record.host} to point to {expected}.",
    )


def _check_mx(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    preference, _, host = record.value.strip().rpartition(" ")
    host = host.rstrip(".").lower()
    found = lookup.mx(record.host)
    shown = [f"{pref} {exchange}" for pref, exchange in found]
    if any(exchange == host for _, exchange in found):
        return RecordCheck(record, OK, shown)
    wanted = f"{preference or 10} {host}"
    return RecordCheck(
        record,
        FAILED,
        shown,
        problem=f"No MX record at {record.host} points to {host}."
        if found
        else f"No MX record at {record.host}.",
        fix=f"Add an MX record named {record.host}: {wanted}.",
    )


def _check_spf(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    found = spf.spf_records(lookup.txt(record.host))
    wanted = spf.includes(record.value)
    if not found:
        return RecordCheck(
            record,
            FAILED if record.required else WARNING,
            problem=f"No SPF record at {record.host}: receivers cannot tell who may send for it.",
            fix=f"Add a TXT record named {record.host}: {record.value}",
        )
    if len(found) > 1:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=f"{len(found)} SPF records at {record.host}; receivers treat two or more "
            "as no SPF at all (permerror).",
            fix=f"Merge them into one TXT record and delete the others: "
            f"{spf.merged([*found, record.value])}",
        )
    current = found[0]
    walked = spf.walk(current, lookup, record.host)
    missing = [domain for domain in wanted if domain not in walked.reached]
    if missing:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=f"The SPF record at {record.host} does not include {', '.join(missing)}, "
            "so mail the provider sends fails SPF.",
            fix=f"Add {' '.join('include:' + d for d in missing)} {_where(current)}: "
            f"{spf.merged([current, record.value])}",
        )
    if walked.count > spf.MAX_LOOKUPS:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=f"The SPF record at {record.host} needs {walked.count} DNS lookups "
            f"(include, a, mx, ptr, exists, redirect, counted through every include); "
            f"receivers stop at {spf.MAX_LOOKUPS} and treat SPF as broken (permerror).",
            fix="Remove includes of services you no longer send through, or replace a/mx "
            "terms with ip4:/ip6: ranges, until it needs 10 or fewer.",
        )
    if len(walked.voids) > spf.MAX_VOID_LOOKUPS:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=f"The SPF record at {record.host} makes {len(walked.voids)} DNS lookups "
            f"that find nothing ({', '.join(walked.voids)}); receivers allow "
            f"{spf.MAX_VOID_LOOKUPS} and treat SPF as broken (permerror).",
            fix="Remove the terms naming hosts that do not exist or have no such record "
            "(or publish the records they expect).",
        )
    if walked.problems:
        return RecordCheck(
            record,
            FAILED,
            found,
            problem=" ".join(problem for problem, _ in walked.problems),
            fix=walked.problems[0][1],
        )
    through = [
        f"Includes {domain} through {' → '.join(walked.reached[domain])}."
        for domain in wanted
        if walked.reached[domain]
    ]
    detail = f"{walked.count} of {spf.MAX_LOOKUPS} DNS lookups used."
    return RecordCheck(record, OK, found, detail=" ".join([*through, detail]))


def _check_dkim(record: RequiredRecord, lookup: Lookup) -> RecordCheck:
    found = lookup.txt(record.host)
    expected_key = dkim_key(record.value)
    keys = [dkim_key(text) for text in found]
    if expected_key and expected_key in keys:
        return RecordCheck(record, OK, found)
    if not found:
        return RecordCheck(
            record,
            FAILED,
            problem=f"No DKIM record at {record.host}.",
            fix=f"Add a TXT record named {record.host} with the expected value.",
        )
    if not any(keys):
        problem = f"The TXT record at {record.host} is not a DKIM key (no p= tag)."
    else:
        shown = next(key for key in keys if key)
        problem = (
            f"The DKIM key at {record.host} does not match the provider's: found "
            f"{_ends(shown)}, expected {_ends(expected_key)}. Mail signed by the provider "
            "fails DKIM."
        )
    return RecordCheck(
        record,
        FAILED,
        found,
        problem=problem,
        fix=f"Replace the TXT record {record.host} with the expected value, copied whole "
        "(a key cut short when pasting is the usual cause).",
    )


def _where(record: str) -> str:
    """Where an include goes: before the ``all`` term, else anywhere before a redirect."""
    return "before the 'all' term" if any(t.name == "all" for t in spf.terms(record)) else "to it"


class _Nothing:
    """The answers for a name that does not exist."""

    def txt(self, name: str) -> list[str]:
        return []

    def cname(self, name: str) -> None:
        return None

    def mx(self, name: str) -> list[tuple[int, str]]:
        return []


def _ends(key: str) -> str:
    """A long key shortened to what a person can compare: first and last characters."""
    return key if len(key) <= 24 else f"{key[:8]}…{key[-8:]}"
