"""What happens to an accepted message after it leaves, decided by its addresses.

The sandbox delivers nothing, so the outcome a webhook reports has to come
from somewhere a test controls. Like Amazon SES's mailbox simulator, it
comes from each recipient's local part (before any ``+tag``, any case):

``bounce@…``
    a hard bounce for that recipient;
``complaint@…``
    delivered, then the recipient reports it as spam;
``reject@…``
    the whole message is rejected before delivery (a rejection is about
    the message, not one recipient, so nobody gets it and nothing else is
    reported);
anything else
    delivered.

When tracking was asked for and the body is HTML (the pixel and the
rewritten links live in HTML), a message that reached anyone is opened once,
and its first link is clicked once. Provider-neutral: each provider's
notification format (``nylas_notifications.py``, ...) turns a :class:`Fate`
into its own events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

#: The diagnostic a simulated hard bounce carries (the one SES's simulator gives).
BOUNCE_DIAGNOSTIC = "smtp; 550 5.1.1 user unknown"
BOUNCE_TYPE = "UserUnknown"
COMPLAINT_TYPE = "abuse"
#: The client a simulated open or click comes from.
USER_AGENT = "Mozilla/5.0 (txmail-sandbox mailbox simulator)"
IP = "192.0.2.1"  # TEST-NET-1: documentation addresses, never a real client

_HREF = re.compile(r"""<a\s[^>]*?href\s*=\s*["'](https?://[^"']+)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class Fate:
    """The outcome of one message. ``delivered`` includes the recipients in
    ``complained`` (a complaint follows delivery). ``links`` are the tracked
    links of the body, in order; the first one is clicked when ``clicked``."""

    rejected: bool
    delivered: tuple[str, ...]
    bounced: tuple[str, ...]
    complained: tuple[str, ...]
    opened: bool
    clicked: bool
    links: tuple[str, ...]


def outcome(address: str) -> str:
    """``"bounced"``, ``"complained"``, ``"rejected"`` or ``"delivered"``."""
    local = address.rpartition("@")[0].split("+", 1)[0].lower()
    return {"bounce": "bounced", "complaint": "complained", "reject": "rejected"}.get(
        local, "delivered"
    )


def links_in(html: str) -> tuple[str, ...]:
    """The http(s) links of an HTML body, in order, each once."""
    return tuple(dict.fromkeys(match.group(1) for match in _HREF.finditer(html)))


def simulate(
    recipients: Iterable[str], html: str | None, track_opens: bool, track_links: bool
) -> Fate:
    """The fate of a message to ``recipients`` (To, Cc and Bcc, each once);
    ``html`` is its HTML body, None for a plain-text or template body."""
    addresses = tuple(dict.fromkeys(recipients))
    outcomes = {address: outcome(address) for address in addresses}
    if "rejected" in outcomes.values():
        return Fate(True, (), (), (), False, False, ())
    delivered = tuple(a for a in addresses if outcomes[a] in ("delivered", "complained"))
    links = links_in(html) if html is not None and track_links else ()
    reached = bool(delivered) and html is not None
    return Fate(
        rejected=False,
        delivered=delivered,
        bounced=tuple(a for a in addresses if outcomes[a] == "bounced"),
        complained=tuple(a for a in addresses if outcomes[a] == "complained"),
        opened=reached and track_opens,
        clicked=reached and bool(links),
        links=links,
    )
