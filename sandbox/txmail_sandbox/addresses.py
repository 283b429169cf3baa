"""Email address checks shared by the emulated providers.

Providers differ in how they write addresses (Nylas and Mailtrap: objects
``{email, name}``; MailerLogic: strings such as ``"Ann" <ann@example.com>``)
but agree on what a deliverable address is: something@domain.tld, no spaces,
no brackets.
"""

from __future__ import annotations

import re
from email.utils import getaddresses

EMAIL = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:\[\]]+\.[^@\s<>\"(),;:\[\]]+\Z")


def is_email(value: object) -> bool:
    return isinstance(value, str) and EMAIL.match(value) is not None


def mailbox(value: str) -> tuple[str, str] | None:
    """``(name, email)`` of a string naming exactly one mailbox, else None."""
    if "\r" in value or "\n" in value:
        return None
    found = getaddresses([value])
    if len(found) != 1:
        return None
    name, email = found[0]
    return (name, email) if is_email(email) else None


def domain_of(email: str) -> str:
    return email.rpartition("@")[2].lower()
