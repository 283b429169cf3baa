"""Nylas's Manage Domains API, signed as a service account (PROVIDERS.md, "Domains").

``GET /v3/admin/domains`` lists the organization's domains (to find a
domain's id by its address); ``POST /v3/admin/domains/{id}/info`` with
``{"type": kind}`` returns the DNS record Nylas wants for ``kind``
(``ownership``, ``spf``, ``dkim``, ``feedback``, ``mx``); ``POST
/v3/admin/domains/{id}/verify`` asks Nylas to check it now. Both answer
``{request_id, data: {domain_id, attempt: {type, options: {host, type,
value}}, status: done | pending | failed, message}}``.

These endpoints take no API key. Each request carries four headers made
with the service account's RSA key (Nylas's credentials file:
``private_key_id`` and ``private_key``, set as the account's
``SERVICE_ACCOUNT_KEY_ID`` and ``SERVICE_ACCOUNT_PRIVATE_KEY``):

``X-Nylas-Kid``
    the key id;
``X-Nylas-Timestamp``
    Unix seconds now (Nylas refuses more than 5 minutes off);
``X-Nylas-Nonce``
    20 random letters and digits, never reused;
``X-Nylas-Signature``
    base64 of the RSA PKCS#1 v1.5 SHA-256 signature of the *signed text*.

The signed text is canonical JSON (keys sorted, no whitespace, UTF-8 as
is) of ``{"method": <lower-case method>, "nonce": ..., "path": <URL path,
no query string>, "timestamp": <integer>}`` plus, for a POST, PUT or PATCH
with a body, ``"payload": <the body, itself canonical JSON, as a string>``.
The body sent is those exact bytes. This is the form of Nylas's own SDKs
(``ServiceAccountSigner`` in nylas-python, nylas-ruby and nylas-nodejs).
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import time
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.core.exceptions import ImproperlyConfigured

from django_txmail.conf import SERVICE_ACCOUNT_KEYS
from django_txmail.dns.records import ProviderVerdict, RequiredRecord, absolute_host
from django_txmail.providers.base import USER_AGENT, Adapter, ProviderRequest, ProviderResponse

#: Every type Nylas's domains API describes, and those transactional sending needs
#: (``mx`` routes inbound mail to Nylas, which sending does not use).
VERIFICATION_TYPES = ("ownership", "spf", "dkim", "feedback", "mx")
REQUIRED_TYPES = ("ownership", "spf", "dkim", "feedback")
_NONCE_ALPHABET = string.ascii_letters + string.digits
_SIGNED_BODY_METHODS = ("post", "put", "patch")


def canonical_json(data: Any) -> str:
    """Keys sorted at every level, no whitespace, non-ASCII kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def signed_text(method: str, path: str, timestamp: int, nonce: str, body: bytes | None) -> bytes:
    """What ``X-Nylas-Signature`` signs (see the module docstring)."""
    envelope: dict[str, Any] = {
        "method": method.lower(),
        "nonce": nonce,
        "path": path,
        "timestamp": timestamp,
    }
    if method.lower() in _SIGNED_BODY_METHODS and body is not None:
        envelope["payload"] = body.decode("utf-8")
    return canonical_json(envelope).encode("utf-8")


def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    """The service account's RSA key; ImproperlyConfigured says what is wrong with it."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        # The exception text could quote the key material: it is not repeated.
        raise ImproperlyConfigured(
            "SERVICE_ACCOUNT_PRIVATE_KEY is not an unencrypted PEM private key: copy the "
            "'private_key' field of Nylas's service account file, with its BEGIN/END lines."
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ImproperlyConfigured("SERVICE_ACCOUNT_PRIVATE_KEY must be an RSA key.")
    return key


def service_account_headers(
    key_id: str,
    private_key: rsa.RSAPrivateKey,
    method: str,
    path: str,
    body: bytes | None,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four ``X-Nylas-*`` headers for one request (fresh time and nonce by default)."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    nonce = nonce or "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(20))
    text = signed_text(method, path, timestamp, nonce, body)
    signature = private_key.sign(text, padding.PKCS1v15(), hashes.SHA256())
    return {
        "X-Nylas-Kid": key_id,
        "X-Nylas-Timestamp": str(timestamp),
        "X-Nylas-Nonce": nonce,
        "X-Nylas-Signature": base64.b64encode(signature).decode("ascii"),
    }


class NylasDomainsMixin(Adapter):
    """The domains-API half of :class:`~django_txmail.providers.nylas.NylasAdapter`."""

    domain_verification_types = VERIFICATION_TYPES
    account_options = frozenset(SERVICE_ACCOUNT_KEYS)

    def build_find_domain(self, domain: str, page_token: str = "") -> ProviderRequest:
        query = f"?{urlencode({'page_token': page_token})}" if page_token else ""
        return self._signed("GET", "/v3/admin/domains", query=query)

    def parse_find_domain(self, response: ProviderResponse, domain: str) -> tuple[str, str]:
        body = self._admin_body(response, "list its domains")
        data = body.get("data")
        if not isinstance(data, list):
            raise self.api_error(response, "The domain list has no 'data' array.")
        for item in data:
            if isinstance(item, dict) and str(item.get("domain_address", "")).lower() == domain:
                return str(item.get("id") or ""), ""
        return "", str(body.get("next_cursor") or "")

    def build_domain_info(self, domain_id: str, kind: str) -> ProviderRequest:
        return self._signed("POST", f"/v3/admin/domains/{quote(domain_id, safe='')}/info", kind)

    def parse_domain_info(
        self, response: ProviderResponse, domain: str, kind: str
    ) -> RequiredRecord:
        data = self._admin_data(response, f"describe its {kind} record")
        attempt = data.get("attempt") if isinstance(data.get("attempt"), dict) else {}
        options = attempt.get("options") if isinstance(attempt.get("options"), dict) else {}
        rtype = str(options.get("type") or "").upper()
        value = str(options.get("value") or "").strip()
        if rtype not in ("TXT", "CNAME", "MX") or not value:
            raise self.api_error(
                response, f"Nylas described the {kind} record without a usable type and value."
            )
        return RequiredRecord(
            purpose=kind,
            type=rtype,
            host=absolute_host(str(options.get("host") or ""), domain),
            value=value,
            required=kind in REQUIRED_TYPES,
            source="Nylas domains API",
        )

    def build_verify_domain(self, domain_id: str, kind: str) -> ProviderRequest:
        return self._signed("POST", f"/v3/admin/domains/{quote(domain_id, safe='')}/verify", kind)

    def parse_verify_domain(self, response: ProviderResponse, kind: str) -> ProviderVerdict:
        data = self._admin_data(response, f"verify its {kind} record")
        status = str(data.get("status") or "")
        if status not in ("done", "pending", "failed"):
            raise self.api_error(response, f"Nylas answered the {kind} check with {status!r}.")
        return ProviderVerdict(status, self.redact(str(data.get("message") or "")))

    def _signed(
        self, method: str, path: str, kind: str | None = None, query: str = ""
    ) -> ProviderRequest:
        key_id = self.account.credentials.get("SERVICE_ACCOUNT_KEY_ID")
        pem = self.account.credentials.get("SERVICE_ACCOUNT_PRIVATE_KEY")
        if not key_id or not pem:
            raise ImproperlyConfigured(
                f"TXMAIL['PROVIDERS'][{self.account.name!r}] has no SERVICE_ACCOUNT_KEY_ID and "
                "SERVICE_ACCOUNT_PRIVATE_KEY: Nylas gives a domain's DNS records only to its "
                "service account. Ask Nylas Support for one, or enter the records from the "
                "Nylas dashboard on the domain (DNS records to check)."
            )
        body = None if kind is None else canonical_json({"type": kind}).encode()
        url = f"{self.account.api_uri}{path}"
        # The path Nylas receives, including any path of API_URI itself (a proxy).
        signed_path = urlsplit(url).path
        headers = service_account_headers(key_id, load_private_key(pem), method, signed_path, body)
        headers |= {"Accept": "application/json", "User-Agent": USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        return ProviderRequest(method, url + query, headers, body=body or b"")

    def _admin_body(self, response: ProviderResponse, action: str) -> dict[str, Any]:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        if 200 <= response.status < 300:
            return body
        error = body.get("error") if isinstance(body.get("error"), dict) else {}
        message = str(error.get("message") or response.body[:300].decode("utf-8", "replace"))
        hint = ""
        if response.status == 401:
            hint = (
                " Check SERVICE_ACCOUNT_KEY_ID and SERVICE_ACCOUNT_PRIVATE_KEY, and that this "
                "machine's clock is right (Nylas refuses signatures more than 5 minutes off)."
            )
        raise self.api_error(
            response,
            f"Nylas would not {action}: {message}{hint}",
            str(error.get("type") or ""),
            str(body.get("request_id") or ""),
        )

    def _admin_data(self, response: ProviderResponse, action: str) -> dict[str, Any]:
        data = self._admin_body(response, action).get("data")
        if not isinstance(data, dict):
            raise self.api_error(response, f"Nylas's answer to {action} has no 'data' object.")
        return data
