"""Connected mailboxes (grants): their status, and what follows from it.

A ``Grant`` is a user's mailbox connected through the provider's Hosted
OAuth (``django_txmail.connect`` holds the views). Its ``status`` is what
the provider last said of it:

* **valid** — mail goes through it;
* **expired** — the credentials stopped working (a password change, access
  withdrawn at the mailbox provider): the user must connect it again;
* **revoked** — disconnected (:func:`disconnect`, or deleted at the provider).

A new send from a grant that is not valid raises ``GrantUnavailable``
before anything is recorded (``routing``). Mail already queued for it is
held: the claim rules (``outbox.claims``) skip it, so it is neither
attempted nor failed. When the grant is valid again, :func:`set_status`
makes that mail due at once, and the next worker pass (``txmail_worker``)
sends it, once, under the usual claim.

Every change sends ``grant_status_changed`` after its transaction commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import Q
from django.utils import timezone

from django_txmail.conf import ProviderAccount, get_settings
from django_txmail.models import Grant
from django_txmail.outbox.claims import wake_grant
from django_txmail.providers import load_adapter
from django_txmail.providers.base import WebhookEvent
from django_txmail.providers.nylas.grants import GrantInfo, NylasGrantsMixin
from django_txmail.routing import routes_changed
from django_txmail.sending.transport import Transport
from django_txmail.signals import grant_status_changed

Status = Grant.Status


def connect_adapter(account: ProviderAccount) -> NylasGrantsMixin:
    """The adapter of an account users connect mailboxes to (ValueError if it has none)."""
    adapter = load_adapter(account)
    if not isinstance(adapter, NylasGrantsMixin):
        raise ValueError(f"Provider account {account.name!r} has no connected mailboxes (grants).")
    return adapter


def _grants_adapter(provider: str) -> NylasGrantsMixin:
    return connect_adapter(get_settings().account(provider))


def set_status(grant: Grant, status: str, *, reported_at: datetime | None = None) -> bool:
    """Record the grant's new ``status``; False when it already had it.

    ``reported_at`` is when the provider said so (a webhook): a report older
    than the last change is stale and changes nothing. Webhook times are
    whole seconds, so a report from the second of the last change still
    counts. Back to valid, the mail held for the grant is made due now.
    """
    now = timezone.now()
    rows = Grant.objects.filter(pk=grant.pk).exclude(status=status)
    if reported_at is not None:
        rows = rows.filter(
            Q(status_changed_at__isnull=True)
            | Q(status_changed_at__lt=reported_at + timedelta(seconds=1))
        )
    previous = grant.status
    if not rows.update(status=status, status_changed_at=now, updated_at=now):
        return False
    grant.status, grant.status_changed_at = status, now
    routes_changed()
    if status == Status.VALID:
        wake_grant(grant.provider, grant.grant_id)
    transaction.on_commit(
        lambda: grant_status_changed.send_robust(
            sender=Grant, grant=grant, previous=previous, status=status
        ),
        using=router.db_for_write(Grant),
    )
    return True


def apply_events(provider: str, events: Iterable[WebhookEvent]) -> int:
    """Move grants by the provider's grant webhooks; returns how many changed.

    An event about a grant we do not know changes nothing (it is still stored
    with the other events).
    """
    changed = 0
    for event in events:
        if not event.grant_status:
            continue
        grant = Grant.objects.filter(provider=provider, grant_id=event.grant_id).first()
        if grant is not None:
            changed += set_status(grant, event.grant_status, reported_at=event.occurred_at)
    return changed


def exchange_code(
    provider: str, *, code: str, redirect_uri: str, code_verifier: str = ""
) -> GrantInfo:
    """Trade an authorization code for the grant it connected (``ProviderAPIError`` if refused).

    Where the answer does not name the mailbox, the grant is read back for it.
    """
    adapter = _grants_adapter(provider)
    with Transport() as transport:
        request = adapter.build_token_exchange(
            code=code, redirect_uri=redirect_uri, code_verifier=code_verifier
        )
        info = transport.call(adapter, request, adapter.parse_token_exchange)
        if not info.email:
            found = _fetch(adapter, transport, info.grant_id)
            info = GrantInfo(info.grant_id, found.email, found.provider, "valid", info.scopes)
    return info


def _fetch(adapter: NylasGrantsMixin, transport: Transport, grant_id: str) -> GrantInfo:
    request = adapter.build_get_grant(grant_id)
    return transport.call(adapter, request, adapter.parse_get_grant, grant_id)


def connected(provider: str, info: GrantInfo, user) -> Grant:
    """Create or update the Grant a completed connection names; valid from now.

    One Grant per address: connecting the same mailbox again re-authenticates
    the grant already there (the provider keeps its grant id).
    """
    now = timezone.now()
    with transaction.atomic(using=router.db_for_write(Grant)):
        grant = (
            Grant.objects.select_for_update()
            .filter(
                Q(provider=provider, grant_id=info.grant_id) | Q(email=info.email, is_active=True)
            )
            .order_by("-is_active")
            .first()
        )
        if grant is None:
            grant = Grant(provider=provider, status=Status.VALID, status_changed_at=now)
        grant.provider, grant.grant_id, grant.email = provider, info.grant_id, info.email
        grant.user, grant.scopes, grant.connected_at, grant.is_active = (
            user,
            list(info.scopes),
            now,
            True,
        )
        grant.save()
        set_status(grant, Status.VALID)
    return grant


def disconnect(grant: Grant) -> None:
    """Revoke the grant at the provider (``DELETE /v3/grants/{id}``) and mark it revoked.

    Mail from its address is refused from now on (``GrantUnavailable``), and
    mail queued for it waits until the mailbox is connected again.
    """
    adapter = _grants_adapter(grant.provider)
    with Transport() as transport:
        request = adapter.build_revoke_grant(grant.grant_id)
        transport.call(adapter, request, adapter.parse_revoke_grant)
    set_status(grant, Status.REVOKED)


def refresh(grants: Iterable[Grant]) -> list[tuple[Grant, str, str]]:
    """Ask the provider for each grant's status (``GET /v3/grants/{id}``), for
    projects without grant webhooks; returns ``(grant, before, after)`` for each."""
    report = []
    with Transport() as transport:
        for grant in grants:
            before = grant.status
            info = _fetch(_grants_adapter(grant.provider), transport, grant.grant_id)
            set_status(grant, info.status)
            report.append((grant, before, grant.status))
    return report


def mark_gone(provider: str, grant_id: str) -> None:
    """A send was refused because the grant is gone: mark it expired (mail waits)."""
    grant = Grant.objects.filter(provider=provider, grant_id=grant_id).first()
    if grant is not None and grant.status == Status.VALID:
        set_status(grant, Status.EXPIRED)
