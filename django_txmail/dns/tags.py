"""DKIM and DMARC records: ``tag=value; tag=value`` lists (RFC 6376 3.2, RFC 7489 6.4)."""

from __future__ import annotations

#: DMARC policies from weakest to strongest.
DMARC_POLICIES = ("none", "quarantine", "reject")


def parse_tags(text: str) -> dict[str, str]:
    """``"v=DKIM1; k=rsa; p=MIIB..."`` → ``{"v": "DKIM1", "k": "rsa", "p": "MIIB..."}``.

    Tag names are lower-cased; whitespace inside values (long keys split
    over several strings) is removed. A later duplicate does not override.
    """
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if sep and name and name not in tags:
            tags[name] = "".join(value.split())
    return tags


def dkim_key(text: str) -> str:
    """The public key (``p=``) of a DKIM record, "" when there is none."""
    return parse_tags(text).get("p", "")


def is_dmarc(text: str) -> bool:
    return text.replace(" ", "").lower().startswith("v=dmarc1")


def dmarc_policy(text: str) -> str:
    """The ``p=`` policy of a DMARC record, lower-cased ("" when missing)."""
    return parse_tags(text).get("p", "").lower()
