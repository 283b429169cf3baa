"""DNS questions for domain checks, with every failure named.

A check needs three answers to be told apart: the record is there, the
record is not there (NXDOMAIN, or a name without that type), and *nobody
could say* (timeout, SERVFAIL, refused). The first two are facts about the
zone the user can fix; the last is about the path to it, and must never be
reported as "missing". :class:`Lookup` returns data or an empty list for the
first two and raises :class:`LookupFailed` for the rest, with a message that
says what happened and what to try.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver

from django_txmail.exceptions import LookupFailed, NameMissing


@dataclass(frozen=True)
class Nameserver:
    address: str
    port: int = 53

    def __str__(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return host if self.port == 53 else f"{host}:{self.port}"


def parse_nameserver(text: str) -> Nameserver:
    """``"192.0.2.53"``, ``"192.0.2.53:5353"``, ``"[2001:db8::53]:53"``,
    ``"2001:db8::53"`` or a host name; ValueError says what is wrong."""
    text = text.strip()
    host, port = text, "53"
    if text.startswith("["):
        host, closed, rest = text[1:].partition("]")
        if not closed:
            raise ValueError(
                f"{text!r} is not a name server: the '[' is never closed; use [IPv6]:port."
            )
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            raise ValueError(f"{text!r} is not a name server: use [IPv6]:port.")
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not a name server: use host or host:port.")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ValueError(f"Cannot find the name server {host!r}: {exc.strerror or exc}.") from None
    return Nameserver(str(infos[0][4][0]), int(port))


class Lookup:
    """Asks one set of name servers (or the system's), each question within ``timeout`` s."""

    def __init__(self, nameservers: list[Nameserver] | None = None, timeout: float = 5.0) -> None:
        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(ns.address, ns.port) for ns in nameservers
            ]
        self._resolver.lifetime = timeout
        self._resolver.timeout = min(2.0, timeout)
        # Ask again every time: a check after a fix must see the fix.
        self._resolver.cache = None
        self.timeout = timeout
        self.servers = ", ".join(map(str, nameservers)) if nameservers else "the system's resolver"

    def txt(self, name: str) -> list[str]:
        """Every TXT record at ``name``, each one's strings joined (as SPF/DKIM read them)."""
        answer = self._ask(name, "TXT")
        return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]

    def cname(self, name: str) -> str | None:
        """The CNAME target of ``name`` (lower case, no trailing dot), or None."""
        answer = self._ask(name, "CNAME")
        targets = [str(rdata.target).rstrip(".").lower() for rdata in answer]
        return targets[0] if targets else None

    def mx(self, name: str) -> list[tuple[int, str]]:
        """``(preference, host)`` of each MX record at ``name``, best first."""
        answer = self._ask(name, "MX")
        found = [(rdata.preference, str(rdata.exchange).rstrip(".").lower()) for rdata in answer]
        return sorted(found)

    def exists(self, name: str) -> bool:
        """Whether ``name`` exists in DNS (any type): a domain that does not is told first."""
        try:
            self._ask(name, "A")
        except NameMissing:
            return False
        return True

    def answers(self, name: str, *rdtypes: str) -> bool:
        """Whether ``name`` has a record of one of ``rdtypes``: False for NXDOMAIN and for
        an empty answer, which is what SPF calls a void lookup (RFC 7208 4.6.4)."""
        try:
            return any(self._ask(name, rdtype) for rdtype in rdtypes)
        except NameMissing:
            return False

    def _ask(self, name: str, rdtype: str) -> list:
        try:
            answer = self._resolver.resolve(name, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            raise NameMissing(name) from None
        except dns.resolver.LifetimeTimeout:
            raise LookupFailed(
                "timeout",
                f"No answer for {rdtype} {name} from {self.servers} within {self.timeout:g} s. "
                "Check that the name server is reachable (--nameserver), then run the check again.",
            ) from None
        except dns.resolver.NoNameservers as exc:
            raise LookupFailed(*_no_nameservers(exc, rdtype, name, self.servers)) from None
        except dns.name.NameTooLong:
            raise LookupFailed(
                "error", f"{name} is longer than DNS allows (253 characters)."
            ) from None
        except dns.exception.DNSException as exc:
            raise LookupFailed(
                "error", f"The DNS question {rdtype} {name} failed: {exc}. Run the check again."
            ) from None
        if answer.rrset is None:
            return []
        # A CNAME chain answers other types too; keep only records of the asked type.
        wanted = dns.rdatatype.from_text(rdtype)
        return [rdata for rdata in answer.rrset if rdata.rdtype == wanted]


def _no_nameservers(
    exc: dns.resolver.NoNameservers, rdtype: str, name: str, servers: str
) -> tuple[str, str]:
    """SERVFAIL and REFUSED answers come back as NoNameservers: tell them apart."""
    # Each error is (server, tcp, port, what went wrong, response); the fourth is
    # the rcode's name for an answer that was an error.
    rcodes = {str(error[3]) for error in exc.kwargs.get("errors", []) if len(error) > 3}
    if "SERVFAIL" in rcodes:
        return (
            "servfail",
            f"{servers} answered SERVFAIL for {rdtype} {name}: it could not get an answer "
            "from the domain's name servers, or their DNSSEC signatures did not validate. "
            "Check the domain's NS and DS records at your registrar, then run the check again.",
        )
    if "REFUSED" in rcodes:
        return (
            "refused",
            f"{servers} refused to answer {rdtype} {name}. Ask a name server that resolves "
            "public names (--nameserver 1.1.1.1), or the domain's own authoritative server.",
        )
    return "error", f"No name server could answer {rdtype} {name}: {exc}."
