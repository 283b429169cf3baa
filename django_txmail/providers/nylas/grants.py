"""Nylas Hosted OAuth and the grants API (PROVIDERS.md → Nylas → Hosted OAuth).

Pure translations, like the send adapter: the authorization URL the browser
is sent to, the token exchange request and its answer, ``GET`` and
``DELETE /v3/grants/{id}`` and their answers. Nothing here keeps state or
talks to the network; ``django_txmail.grants`` does, through the transport.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from django_txmail.exceptions import ProviderAPIError
from django_txmail.providers.base import Adapter, ProviderRequest, ProviderResponse

#: What each grant webhook says of the grant's status (``grant.updated`` is
#: sent when the user re-authenticated, so the grant works again).
STATUS_OF_WEBHOOK = {
    "grant.created": "valid",
    "grant.updated": "valid",
    "grant.expired": "expired",
    "grant.deleted": "revoked",
}


@dataclass(frozen=True)
class GrantInfo:
    """What the provider says of a grant (token answer or ``GET /v3/grants/{id}``)."""

    grant_id: str
    email: str = ""
    provider: str = ""
    status: str = "valid"  # valid | expired | revoked
    scopes: tuple[str, ...] = field(default_factory=tuple)


def code_challenge(verifier: str) -> str:
    """The S256 PKCE challenge of ``verifier`` (RFC 7636: base64url, no padding)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class NylasGrantsMixin(Adapter):
    """The Hosted OAuth and grants half of :class:`~django_txmail.providers.nylas.NylasAdapter`."""

    if TYPE_CHECKING:  # the adapter's own, with its User-Agent and error envelope

        def _headers(self) -> dict[str, str]: ...

        def _error(self, response: ProviderResponse, body: dict[str, Any]) -> ProviderAPIError: ...

    def connect_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        code_verifier: str = "",
        provider: str = "",
        login_hint: str = "",
    ) -> str:
        """Where to send the browser to connect a mailbox (``/v3/connect/auth``)."""
        query = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "access_type": "online",
            "state": state,
        }
        if provider:
            query["provider"] = provider
        if login_hint:
            query["login_hint"] = login_hint
        if code_verifier:
            query["code_challenge"] = code_challenge(code_verifier)
            query["code_challenge_method"] = "S256"
        return f"{self.account.api_uri}/v3/connect/auth?{urlencode(query)}"

    @property
    def client_id(self) -> str:
        return str(self.account.options.get("CLIENT_ID") or "")

    def build_token_exchange(
        self, *, code: str, redirect_uri: str, code_verifier: str = ""
    ) -> ProviderRequest:
        """``POST /v3/connect/token``: the API key goes as ``client_secret``, no Authorization."""
        body = {
            "client_id": self.client_id,
            "client_secret": self.account.credentials.get("API_KEY", ""),
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        if code_verifier:
            body["code_verifier"] = code_verifier
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        url = f"{self.account.api_uri}/v3/connect/token"
        return ProviderRequest("POST", url, headers, body=json.dumps(body).encode())

    def parse_token_exchange(self, response: ProviderResponse) -> GrantInfo:
        body = self._answer(response)
        grant_id = body.get("grant_id")
        if not isinstance(grant_id, str) or not grant_id:
            raise self._error(response, {"error": {"message": "no grant_id in the answer"}})
        scope = body.get("scope") or ""
        scopes = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
        return GrantInfo(
            grant_id,
            email=str(body.get("email") or "").lower(),
            provider=str(body.get("provider") or ""),
            scopes=tuple(scopes),
        )

    def _grant_url(self, grant_id: str) -> str:
        return f"{self.account.api_uri}/v3/grants/{quote(grant_id, safe='')}"

    def build_get_grant(self, grant_id: str) -> ProviderRequest:
        return ProviderRequest("GET", self._grant_url(grant_id), self._headers())

    def parse_get_grant(self, response: ProviderResponse, grant_id: str) -> GrantInfo:
        if response.status == 404:
            # Deleted at the provider (or never there): it will not come back.
            return GrantInfo(grant_id, status="revoked")
        data = self._answer(response).get("data")
        if not isinstance(data, dict):
            data = {}
        scopes = data.get("scope") if isinstance(data.get("scope"), list) else []
        return GrantInfo(
            str(data.get("id") or grant_id),
            email=str(data.get("email") or "").lower(),
            provider=str(data.get("provider") or ""),
            # Nylas says "valid" or "invalid"; an invalid grant needs the user again.
            status="valid" if data.get("grant_status") == "valid" else "expired",
            scopes=tuple(str(s) for s in scopes),
        )

    def build_revoke_grant(self, grant_id: str) -> ProviderRequest:
        return ProviderRequest("DELETE", self._grant_url(grant_id), self._headers())

    def parse_revoke_grant(self, response: ProviderResponse) -> None:
        if response.status == 404:
            return  # already gone: revoked all the same
        self._answer(response)

    def _answer(self, response: ProviderResponse) -> dict:
        body = response.json()
        if not isinstance(body, dict):
            body = {}
        if not 200 <= response.status < 300:
            raise self._error(response, body)
        return body
