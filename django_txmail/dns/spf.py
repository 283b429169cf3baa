"""SPF records read by meaning (RFC 7208), not compared as strings.

A domain may publish exactly one ``v=spf1`` record; a receiver that finds
two treats SPF as broken (permerror), and so does one that needs more than
ten DNS lookups to evaluate it. Providers ask for an ``include:`` of their
own SPF record, and users add it to whatever they already publish, so the
check looks for that include, wherever it stands, not for the provider's
example record verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .resolver import Lookup, NameMissing

#: RFC 7208 4.6.4: more DNS-querying terms than this is a permerror.
MAX_LOOKUPS = 10
#: Terms that cost a DNS lookup when the record is evaluated.
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
#: Enough to say "too many" without walking a pathological include tree.
_WALK_LIMIT = 40


def is_spf(text: str) -> bool:
    return text.strip().lower().split(" ", 1)[0] == "v=spf1"


def spf_records(txts: list[str]) -> list[str]:
    return [text.strip() for text in txts if is_spf(text)]


def terms(record: str) -> list[tuple[str, str]]:
    """``(name, argument)`` of each term, lower-cased, qualifiers dropped:
    ``"v=spf1 -include:_spf.x.net ~all"`` → ``[("include", "_spf.x.net"), ("all", "")]``."""
    found = []
    for term in record.split()[1:]:
        term = term.lower().lstrip("+-~?")
        if "=" in term and ":" not in term.split("=", 1)[0]:
            name, _, argument = term.partition("=")  # modifier: redirect=, exp=
        else:
            name, _, argument = term.partition(":")
            name = name.split("/", 1)[0]
        found.append((name, argument))
    return found


def includes(record: str) -> list[str]:
    """The domains a record includes (and redirects to)."""
    return [arg.rstrip(".") for name, arg in terms(record) if name in ("include", "redirect")]


def merged(records: list[str]) -> str:
    """One record carrying the terms of several, for the "merge them" advice."""
    seen: list[str] = []
    endings: list[str] = []
    for record in records:
        for term in record.split()[1:]:
            if term.lower().lstrip("+-~?") == "all":
                endings.append(term)
            elif term not in seen:
                seen.append(term)
    return " ".join(["v=spf1", *seen, *(endings[:1] or ["~all"])])


@dataclass
class LookupCount:
    """DNS lookups the record needs, and what got in the way of counting them."""

    count: int = 0
    problems: list[str] = field(default_factory=list)


def count_lookups(record: str, lookup: Lookup, domain: str) -> LookupCount:
    """Walk ``include:`` and ``redirect=`` recursively, counting every term that
    costs a lookup (``include``, ``a``, ``mx``, ``ptr``, ``exists``, ``redirect``).

    Raises LookupFailed when an included record cannot be fetched (timeout,
    SERVFAIL): the count is then unknown, not low.
    """
    result = LookupCount()
    _walk(record, lookup, [domain], result)
    return result


def _walk(record: str, lookup: Lookup, chain: list[str], result: LookupCount) -> None:
    for name, argument in terms(record):
        if name not in _LOOKUP_TERMS:
            continue
        result.count += 1
        if name not in ("include", "redirect") or result.count > _WALK_LIMIT:
            continue
        target = argument.rstrip(".")
        if not target or "%" in target:
            continue  # a macro is expanded per message; its target is not knowable here
        if target in chain:
            result.problems.append(f"{' → '.join([*chain, target])} is a loop.")
            continue
        included = _fetch(target, lookup)
        if included is None:
            result.problems.append(
                f"{name}:{target} has no SPF record, so receivers treat SPF as broken "
                "(permerror): check the spelling, or remove it."
            )
            continue
        _walk(included, lookup, [*chain, target], result)


def _fetch(domain: str, lookup: Lookup) -> str | None:
    try:
        records = spf_records(lookup.txt(domain))
    except NameMissing:
        return None
    return records[0] if len(records) == 1 else None
