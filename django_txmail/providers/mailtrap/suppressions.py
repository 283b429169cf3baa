"""Mailtrap's suppression list (PROVIDERS.md → Mailtrap streams and suppressions).

``GET {ACCOUNT_API_URI}/api/accounts/{ACCOUNT_ID}/suppressions`` lists at
most 1,000 entries, without paging (``?email=`` narrows it to one address);
``DELETE …/suppressions/{id}`` removes one. The account API lives on the
general host (``ACCOUNT_API_URI``, default ``https://mailtrap.io``), not on
the sending host, and needs the account's numeric ``ACCOUNT_ID``.

Mailtrap's words become ours: ``type`` "hard bounce" → hard_bounce, "spam
complaint" → complaint, "unsubscription" → unsubscribe, "manual import" →
manual; ``sending_stream`` "transactional" → transactional, "bulk" →
broadcast. Mailtrap suppresses after the first hard bounce even for a
temporary cause (a full mailbox): the note keeps its bounce category and the
receiving server's answer, so support can judge.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.core.exceptions import ImproperlyConfigured

from django_txmail.conf import ProviderAccount
from django_txmail.exceptions import ProviderAPIError
from django_txmail.providers.base import ProviderRequest, ProviderResponse, ProviderSuppression

DEFAULT_ACCOUNT_API_URI = "https://mailtrap.io"
REASONS = {
    "hard bounce": "hard_bounce",
    "spam complaint": "complaint",
    "unsubscription": "unsubscribe",
    "manual import": "manual",
}
STREAMS = {"transactional": "transactional", "bulk": "broadcast"}


def list_url(account: ProviderAccount, address: str = "") -> str:
    account_id = str(account.options.get("ACCOUNT_ID", "")).strip()
    if not account_id.isdigit():
        raise ImproperlyConfigured(
            f"TXMAIL['PROVIDERS'][{account.name!r}] needs 'ACCOUNT_ID' (the number in your "
            "Mailtrap account's URL) to reach its suppression list."
        )
    base = str(account.options.get("ACCOUNT_API_URI") or DEFAULT_ACCOUNT_API_URI).rstrip("/")
    url = f"{base}/api/accounts/{account_id}/suppressions"
    return url + (f"?{urlencode({'email': address})}" if address else "")


def build_list(account: ProviderAccount, headers: dict[str, str], address: str) -> ProviderRequest:
    return ProviderRequest("GET", list_url(account, address), headers)


def build_delete(account: ProviderAccount, headers: dict[str, str], entry: str) -> ProviderRequest:
    return ProviderRequest("DELETE", f"{list_url(account)}/{quote(entry, safe='')}", headers)


def parse_list(response: ProviderResponse, error) -> list[ProviderSuppression]:
    """The entries, or ``error(response, body)``: the adapter's error for an error answer."""
    if response.status != 200:
        raise error(response, _error_body(response))
    entries = _body(response)
    if not isinstance(entries, list):
        raise ProviderAPIError(
            "Mailtrap's suppression list is not a JSON array.", provider="mailtrap"
        )
    return [_entry(item) for item in entries if isinstance(item, dict) and item.get("email")]


def parse_delete(response: ProviderResponse, error) -> None:
    if response.status not in (200, 204, 404):  # 404: already gone, which is what was asked
        raise error(response, _error_body(response))


def _error_body(response: ProviderResponse) -> dict[str, Any]:
    body = _body(response)
    return body if isinstance(body, dict) else {}


def _body(response: ProviderResponse) -> Any:
    try:
        return json.loads(response.body or b"null")
    except ValueError:
        return {}


def _entry(item: dict[str, Any]) -> ProviderSuppression:
    created = None
    if isinstance(item.get("created_at"), str):
        try:
            created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
        except ValueError:
            created = None
    kind = str(item.get("type") or "")
    said = [
        f"Mailtrap: {kind}" if kind else "Mailtrap",
        *(
            str(item[key])
            for key in ("message_bounce_category", "message_esp_response")
            if item.get(key)
        ),
    ]
    return ProviderSuppression(
        id=str(item.get("id") or ""),
        address=str(item["email"]),
        reason=REASONS.get(kind, "manual"),
        stream=STREAMS.get(str(item.get("sending_stream") or ""), ""),
        created_at=created,
        note="; ".join(said),
    )
