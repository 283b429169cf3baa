"""Our suppression list and the providers' own: import theirs, remove lifted entries there.

Providers keep suppression lists of their own (Mailtrap suppresses an
address after its first hard bounce), and refuse to mail what is on them
whatever we think. So:

* :func:`sync` imports an account's list (``txmail_suppressions sync``):
  each entry becomes ours, its reason and stream in our words, the
  provider's id kept; running it again changes nothing;
* :func:`lift` takes an entry off our list and, where a provider has the
  address on its own (the entry came from it, or from one of its events),
  off that provider's list too, so the next message is not refused there.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction

from django_txmail import suppressions
from django_txmail.conf import get_settings
from django_txmail.exceptions import InvalidMessage, UnsupportedFeature
from django_txmail.models import Suppression
from django_txmail.providers import load_adapter
from django_txmail.sending.transport import Transport


@dataclass
class SyncResult:
    listed: int = 0
    added: int = 0
    linked: int = 0  # already ours; now with the provider's id
    skipped: int = 0  # not an address we can store


def sync(account_name: str, transport: Transport | None = None) -> SyncResult:
    """Import the suppression list of the account ``account_name``."""
    account = get_settings().account(account_name)
    adapter = load_adapter(account)
    request = adapter.build_list_suppressions()
    with transport or Transport(pool_size=1) as http:
        entries = http.call(adapter, request, adapter.parse_list_suppressions)
    result = SyncResult(listed=len(entries))
    with transaction.atomic(using=router.db_for_write(Suppression)):
        for entry in entries:
            try:
                address = suppressions.normalize(entry.address)
            except InvalidMessage:
                result.skipped += 1
                continue
            row, created = Suppression.objects.get_or_create(
                address=address,
                stream=entry.stream,
                defaults={
                    "reason": entry.reason,
                    "note": entry.note,
                    "provider": account.name,
                    "provider_suppression_id": entry.id,
                },
            )
            if created:
                result.added += 1
                if entry.created_at is not None:
                    Suppression.objects.filter(pk=row.pk).update(created_at=entry.created_at)
            elif not row.provider_suppression_id:
                row.provider, row.provider_suppression_id = account.name, entry.id
                row.save(update_fields=["provider", "provider_suppression_id"])
                result.linked += 1
    return result


def provider_of(entry: Suppression) -> str:
    """The account whose own list may hold ``entry``'s address ("" for none)."""
    if entry.provider:
        return entry.provider
    return entry.event.provider if entry.event_id else ""


def lift(entry: Suppression, transport: Transport | None = None) -> int:
    """Take ``entry`` off our list, and off its provider's list where it has one.

    Returns how many entries the provider removed. The provider is asked
    first: if it cannot be reached, ``ProviderAPIError`` is raised and our
    entry stays, so the two lists never disagree unseen.
    """
    removed = 0
    name = provider_of(entry)
    account = get_settings().providers.get(name)
    if account is not None:
        adapter = load_adapter(account)
        try:
            listing = adapter.build_list_suppressions(entry.address)
        except (UnsupportedFeature, ImproperlyConfigured):
            listing = None  # no list there, or no ACCOUNT_ID to reach it: ours only
        if listing is not None:
            with transport or Transport(pool_size=1) as http:
                ids = {entry.provider_suppression_id} - {""}
                if not ids:
                    found = http.call(adapter, listing, adapter.parse_list_suppressions)
                    ids = {
                        e.id
                        for e in found
                        if suppressions.normalize(e.address) == entry.address
                        and e.stream in (entry.stream, "")
                    }
                for provider_id in sorted(ids):
                    request = adapter.build_delete_suppression(provider_id)
                    http.call(adapter, request, adapter.parse_delete_suppression)
                    removed += 1
    entry.delete()
    return removed
