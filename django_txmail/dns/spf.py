"""SPF records read by meaning (RFC 7208), not compared as strings.

A domain may publish exactly one ``v=spf1`` record; a receiver that finds
two treats SPF as broken (permerror), and so does one that needs more than
ten DNS lookups, or more than two lookups that find nothing, to evaluate it.
Providers ask for an ``include:`` of their own SPF record, and users add it
to whatever they already publish — or to a record of their own that they
include — so the check looks for that include anywhere a receiver's
evaluation reaches, not for the provider's example record verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from django_txmail.dns.resolver import Lookup
from django_txmail.exceptions import NameMissing

#: RFC 7208 4.6.4: more DNS-querying terms than this is a permerror.
MAX_LOOKUPS = 10
#: RFC 7208 4.6.4: more lookups that find nothing (NXDOMAIN, empty answer) than this
#: is a permerror too.
MAX_VOID_LOOKUPS = 2
#: Terms that cost a DNS lookup when the record is evaluated.
_LOOKUP_TERMS = ("include", "a", "mx", "ptr", "exists", "redirect")
#: What a receiver asks for the target of each term it resolves (``ptr`` depends
#: on the sender's address, so it is not resolved here).
_ASKED = {"a": ("A", "AAAA"), "mx": ("MX",), "exists": ("A",)}
#: Enough to say "too many" without walking a pathological include tree.
_WALK_LIMIT = 40


def is_spf(text: str) -> bool:
    return text.strip().lower().split(" ", 1)[0] == "v=spf1"


def spf_records(txts: list[str]) -> list[str]:
    return [text.strip() for text in txts if is_spf(text)]


class Term(NamedTuple):
    """One term of an SPF record, as a receiver reads it."""

    name: str  # lower case, qualifier and CIDR length dropped: "include", "a", "redirect"
    argument: str  # lower case, "" when there is none
    text: str  # as written, for messages
    has_argument: bool  # "a:" (empty, a syntax error) is not "a" (the current domain)


def terms(record: str) -> list[Term]:
    """Each term of ``record``: ``"v=spf1 -include:_spf.x.net ~all"`` →
    ``[Term("include", "_spf.x.net", ...), Term("all", "", ...)]``."""
    found = []
    for text in record.split()[1:]:
        term = text.lower().lstrip("+-~?")
        if "=" in term and ":" not in term.split("=", 1)[0]:
            name, sep, argument = term.partition("=")  # modifier: redirect=, exp=
        else:
            name, sep, argument = term.partition(":")
            name = name.split("/", 1)[0]
            if name in ("a", "mx"):
                argument = argument.split("/", 1)[0]  # a:host/24//64
        found.append(Term(name, argument, text, bool(sep)))
    return found


def includes(record: str) -> list[str]:
    """The domains a record includes (and redirects to)."""
    return [t.argument.rstrip(".") for t in terms(record) if t.name in ("include", "redirect")]


def merged(records: list[str]) -> str:
    """One record carrying the terms of several, for the "merge them" advice.

    A ``redirect=`` only works in a record without an ``all`` term (RFC 7208
    6.1), so when one of the records relies on a redirect the merged record
    keeps it and gets no ``all``; otherwise it ends with the first ``all``.
    """
    seen: list[str] = []
    endings: list[str] = []
    redirects: list[str] = []
    for record in records:
        has_all = any(term.name == "all" for term in terms(record))
        for term in terms(record):
            if term.name == "all":
                endings.append(term.text)
            elif term.name == "redirect":
                if not has_all:
                    redirects.append(term.text)  # one ignored beside an all is dropped
            elif term.text not in seen:
                seen.append(term.text)
    return " ".join(["v=spf1", *seen, *(redirects[:1] or endings[:1] or ["~all"])])


@dataclass
class SpfWalk:
    """What evaluating a record costs and what breaks it, found by following every
    ``include:`` and ``redirect=`` the way a receiver would.

    ``count`` is the DNS-querying terms; ``voids`` the lookups that found
    nothing (``"a:host.example"``); ``problems`` the permanent errors, each
    ``(what is wrong, what to do)``; ``reached`` every domain whose SPF record
    the evaluation includes or is redirected to, with the chain of includes
    that leads there (empty when the record names it itself).
    """

    count: int = 0
    voids: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    reached: dict[str, list[str]] = field(default_factory=dict)


def walk(record: str, lookup: Lookup, domain: str) -> SpfWalk:
    """Walk ``record`` (published at ``domain``) and every record it includes.

    Raises LookupFailed when something cannot be fetched (timeout, SERVFAIL):
    the count is then unknown, not low.
    """
    result = SpfWalk()
    _walk(record, lookup, [domain], result)
    return result


def _walk(record: str, lookup: Lookup, chain: list[str], result: SpfWalk) -> None:
    parsed = terms(record)
    # RFC 7208 6.1: a redirect is ignored, and costs nothing, in a record with an all.
    has_all = any(term.name == "all" for term in parsed)
    for term in parsed:
        if term.name not in _LOOKUP_TERMS or (term.name == "redirect" and has_all):
            continue
        result.count += 1
        if term.name == "ptr" or result.count > _WALK_LIMIT:
            continue
        target = term.argument
        if term.name in ("a", "mx") and not term.has_argument:
            target = chain[-1]  # a bare "a" or "mx" means the domain being evaluated
        if "%" in target:
            continue  # a macro is expanded per message; its target is not knowable here
        problem = _syntax_problem(term, target, chain[-1])
        if problem:
            result.problems.append(problem)
        elif term.name in _ASKED:
            if not lookup.answers(target, *_ASKED[term.name]):
                result.voids.append(f"{term.name}:{target}")
        else:
            _follow(term, target.rstrip("."), lookup, chain, result)


def _follow(term: Term, target: str, lookup: Lookup, chain: list[str], result: SpfWalk) -> None:
    """Evaluate an include or redirect: fetch the target's one SPF record and walk it."""
    if target in chain:
        result.problems.append(
            (
                f"{' → '.join([*chain, target])} is a loop, so receivers treat SPF as broken "
                "(permerror).",
                f"Remove {term.text} from the SPF record of {chain[-1]}.",
            )
        )
        return
    result.reached.setdefault(target, chain[1:])
    try:
        txts = lookup.txt(target)
    except NameMissing:
        txts = []
    if not txts:
        result.voids.append(f"{term.name}:{target}")
    found = spf_records(txts)
    if len(found) == 1:
        _walk(found[0], lookup, [*chain, target], result)
    elif not found:
        result.problems.append(
            (
                f"{term.text} names {target}, which has no SPF record, so receivers treat "
                "SPF as broken (permerror).",
                f"Check the spelling of {target}, or remove {term.text}.",
            )
        )
    else:
        result.problems.append(
            (
                f"{term.text} names {target}, which has {len(found)} SPF records, so receivers "
                "treat SPF as broken (permerror).",
                f"{target} must publish exactly one SPF record: ask its owner to merge them, "
                f"or remove {term.text} until they do.",
            )
        )


def _syntax_problem(term: Term, target: str, where: str) -> tuple[str, str] | None:
    """A term whose domain is missing or is not a domain name is a permerror
    (RFC 7208 4.6, 5): say so, rather than asking DNS about it."""
    if not target:
        return (
            f"{term.text} in the SPF record of {where} names no domain, so receivers treat "
            "SPF as broken (permerror).",
            f"Add the domain after {term.name}{'=' if term.name == 'redirect' else ':'}, "
            "or remove the term.",
        )
    name = target[:-1] if target.endswith(".") else target
    labels = name.split(".")
    why = ""
    if "" in labels:
        why = "it has an empty label: two dots in a row, or a dot at the start"
    elif any(len(label.encode()) > 63 for label in labels):
        why = "one of its labels is longer than 63 characters"
    elif len(name.encode()) > 253:
        why = "it is longer than 253 characters"
    elif len(labels) < 2:
        why = "it is a single label, not a full domain name"
    if not why:
        return None
    return (
        f"{term.text} in the SPF record of {where} is not a valid domain name ({why}), so "
        "receivers treat SPF as broken (permerror).",
        f"Correct the domain in {term.text}, or remove the term.",
    )
