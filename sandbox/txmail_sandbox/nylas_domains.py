"""Nylas's Manage Domains API, emulated, with service-account signatures checked.

``GET /v3/admin/domains``
    ``{request_id, data: [domain, ...], next_cursor?}``; a domain is ``{id,
    name, domain_address, organization_id, region, branded,
    verified_ownership, verified_spf, verified_dkim, verified_feedback,
    verified_mx, verified_dmarc, created_at, updated_at}``. Pages of
    :attr:`NylasDomainsAPI.page_size`, continued with ``?page_token=``.
``POST /v3/admin/domains/{id}/info`` ``{"type": kind}``
    ``{request_id, data: {domain_id, attempt: {type, options: {host, type,
    value}}, status, message}}``: the record configured for ``kind`` with
    :meth:`SandboxServer.add_nylas_domain`; ``status`` is ``done`` once
    verified, else ``pending``.
``POST /v3/admin/domains/{id}/verify`` ``{"type": kind}``
    Resolves that record — really, through dnspython, against the name
    servers given to :meth:`SandboxServer.set_dns_nameservers` (else the
    system's) — and answers ``done`` (the domain's ``verified_<kind>``
    becomes true) or ``failed`` with a message saying what DNS held.

Every request must be signed as a service account whose public key was given
to :meth:`SandboxServer.add_nylas_service_account`: ``X-Nylas-Kid`` names
the key, ``X-Nylas-Timestamp`` must be within 5 minutes of the sandbox's
clock, ``X-Nylas-Nonce`` must not have been used while that timestamp is
accepted (a nonce is remembered until its timestamp + 5 minutes), and
``X-Nylas-Signature`` must be the base64 RSA PKCS#1 v1.5 SHA-256 signature of
the canonical JSON of ``{method (lower case), nonce, path (no query),
timestamp (integer), payload (the raw body, for a POST with one)}``, keys
sorted, no whitespace. Anything else is 401 naming what was wrong. The check
is written here independently of the client's signer
(``django_txmail/providers/nylas_domains.py``), so a mistake in one is not
mirrored in the other.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .httpd import BodyTooLarge, Request, Response
from .nylas_responses import error_response, new_id, request_id
from .routing import Route

KINDS = ("ownership", "spf", "dkim", "feedback", "mx")
CLOCK_SKEW = 300
MAX_BODY = 10_000
_SIGNED_HEADERS = ("X-Nylas-Kid", "X-Nylas-Timestamp", "X-Nylas-Nonce", "X-Nylas-Signature")


@dataclass
class _Domain:
    id: str
    address: str
    records: dict[str, dict[str, str]]
    created_at: int
    verified: dict[str, bool] = field(default_factory=dict)

    def public(self) -> dict[str, Any]:
        flags = {f"verified_{kind}": self.verified.get(kind, False) for kind in (*KINDS, "dmarc")}
        return {
            "id": self.id,
            "name": self.address,
            "domain_address": self.address,
            "organization_id": "sandbox-organization",
            "region": "us",
            "branded": False,
            **flags,
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }


class NylasDomainsAPI:
    name = "nylas"
    path_prefix = "/v3/admin/"
    #: Domains per page of the list.
    page_size = 10
    #: Seconds ``verify`` waits for DNS.
    dns_timeout = 3.0

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._nonces: dict[str, float] = {}
        self._domains: dict[str, _Domain] = {}
        self._nameservers: list[tuple[str, int]] = []

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/v3/admin/domains", self.list_domains),
            Route("POST", "/v3/admin/domains/{domain_id}/info", self.info),
            Route("POST", "/v3/admin/domains/{domain_id}/verify", self.verify),
        ]

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    # Configuration (SandboxServer's methods call these).

    def add_service_account(self, key_id: str, public_key_pem: str) -> None:
        key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(key, rsa.RSAPublicKey):
            raise ValueError("A Nylas service account key is an RSA key.")
        with self._lock:
            self._keys[key_id] = key

    def add_domain(self, address: str, records: dict[str, dict[str, str]]) -> str:
        unknown = sorted(set(records) - set(KINDS))
        if unknown:
            raise ValueError(f"Unknown record types {unknown}; Nylas has {', '.join(KINDS)}.")
        domain = _Domain(new_id(), address.lower(), dict(records), int(self._wall_clock()))
        with self._lock:
            self._domains[domain.id] = domain
        return domain.id

    def set_nameservers(self, servers: list[tuple[str, int]]) -> None:
        with self._lock:
            self._nameservers = list(servers)

    def reset(self) -> None:
        with self._lock:
            self._keys.clear()
            self._nonces.clear()
            self._domains.clear()
            self._nameservers = []

    # Endpoints.

    def list_domains(self, request: Request) -> Response:
        refusal = self._authenticate(request, b"")
        if refusal is not None:
            return refusal
        with self._lock:
            domains = list(self._domains.values())  # in the order they were added
        token = request.query.get("page_token", "0")
        start = int(token) if token.isdigit() else 0
        page = domains[start : start + self.page_size]
        body: dict[str, Any] = {"request_id": request_id(), "data": [d.public() for d in page]}
        if start + self.page_size < len(domains):
            body["next_cursor"] = str(start + self.page_size)
        return Response.json(200, body)

    def info(self, request: Request, domain_id: str) -> Response:
        found = self._domain_and_kind(request, domain_id)
        if isinstance(found, Response):
            return found
        domain, kind = found
        status = "done" if domain.verified.get(kind) else "pending"
        return Response.json(200, _verification(domain, kind, status, ""))

    def verify(self, request: Request, domain_id: str) -> Response:
        found = self._domain_and_kind(request, domain_id)
        if isinstance(found, Response):
            return found
        domain, kind = found
        problem = self._resolve(domain.records[kind])
        with self._lock:
            domain.verified[kind] = problem is None
        status = "done" if problem is None else "failed"
        return Response.json(200, _verification(domain, kind, status, problem or ""))

    def _domain_and_kind(self, request: Request, domain_id: str) -> tuple[_Domain, str] | Response:
        try:
            body = request.read_body(MAX_BODY)
        except BodyTooLarge:
            return error_response(400, f"Request body is over {MAX_BODY} bytes.")
        refusal = self._authenticate(request, body)
        if refusal is not None:
            return refusal
        with self._lock:
            domain = self._domains.get(domain_id)
        if domain is None:
            return error_response(404, f"Domain {domain_id} not found.")
        try:
            kind = json.loads(body)["type"]
        except (ValueError, TypeError, KeyError):
            return error_response(400, 'The body must be {"type": <verification type>}.')
        if kind not in domain.records:
            configured = ", ".join(domain.records) or "none"
            return error_response(
                400, f"Unknown verification type {kind!r} (this domain has: {configured})."
            )
        return domain, kind

    def _authenticate(self, request: Request, body: bytes) -> Response | None:
        """401 unless the request is signed as a known service account (module docstring)."""
        values = {name: request.headers.get(name, "").strip() for name in _SIGNED_HEADERS}
        missing = [name for name, value in values.items() if not value]
        if missing:
            return _unauthorized(f"Missing service account headers: {', '.join(missing)}.")
        key_id, stamp, nonce, signature = values.values()
        with self._lock:
            key = self._keys.get(key_id)
        if key is None:
            return _unauthorized(f"Unknown service account key id {key_id!r} (X-Nylas-Kid).")
        now = self._wall_clock()
        # isdigit() alone takes "²" and "٣", which int() refuses or reads otherwise.
        if not (stamp.isascii() and stamp.isdigit()) or abs(now - int(stamp)) > CLOCK_SKEW:
            return _unauthorized(
                f"X-Nylas-Timestamp {stamp!r} is not within {CLOCK_SKEW} s of the server's "
                f"time ({int(now)})."
            )
        envelope: dict[str, Any] = {
            "method": request.method.lower(),
            "nonce": nonce,
            "path": request.path,
            "timestamp": int(stamp),
        }
        if request.method in ("POST", "PUT", "PATCH") and body:
            envelope["payload"] = body.decode("utf-8", "replace")
        signed = json.dumps(envelope, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        try:
            key.verify(
                base64.b64decode(signature, validate=True),
                signed.encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, binascii.Error, ValueError):
            return _unauthorized("X-Nylas-Signature does not match the request.")
        with self._lock:
            # A nonce is kept as long as its timestamp is accepted (up to CLOCK_SKEW
            # after it, which for a timestamp in the future is later than that after
            # now): forgetting it sooner would let the same request be replayed.
            self._nonces = {n: until for n, until in self._nonces.items() if now <= until}
            if nonce in self._nonces:
                return _unauthorized(f"X-Nylas-Nonce {nonce!r} was already used.")
            self._nonces[nonce] = int(stamp) + CLOCK_SKEW
        return None

    def _resolve(self, record: dict[str, str]) -> str | None:
        """None when DNS holds ``record``, else what it holds instead."""
        host, rtype, value = record["host"], record["type"].upper(), record["value"]
        resolver = dns.resolver.Resolver(configure=not self._nameservers)
        if self._nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(a, p) for a, p in self._nameservers
            ]
        resolver.lifetime = self.dns_timeout
        try:
            answer = resolver.resolve(host, rtype, raise_on_no_answer=False)
        except dns.exception.DNSException as exc:
            return f"Could not resolve {rtype} {host}: {type(exc).__name__}."
        found = [
            b"".join(r.strings).decode() if rtype == "TXT" else r.to_text().rstrip(".")
            for r in (answer.rrset or [])
            if r.rdtype == dns.rdatatype.from_text(rtype)
        ]
        if rtype == "TXT":
            ok = value in found
        elif rtype == "MX":
            ok = any(f.split()[-1].lower() == value.split()[-1].lower() for f in found)
        else:
            ok = value.rstrip(".").lower() in [f.lower() for f in found]
        if ok:
            return None
        return f"Expected {rtype} {host} = {value!r}; DNS has {found or 'nothing'}."


def _verification(domain: _Domain, kind: str, status: str, message: str) -> dict[str, Any]:
    options = domain.records[kind]
    data = {
        "domain_id": domain.id,
        "attempt": {"type": kind, "options": dict(options)},
        "status": status,
        "message": message,
    }
    return {"request_id": request_id(), "data": data}


def _unauthorized(message: str) -> Response:
    return error_response(401, f"Unauthorized: {message}")
