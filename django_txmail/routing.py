"""Pick the route for a message from its From address.

1. ``msg.grant_id`` → that active Grant (grant route);
2. an active Grant whose email is the From address → grant route
   (``GrantUnavailable`` when its grant is expired or revoked);
3. a SendingDomain named like the From domain → domain route;
4. otherwise ``UnroutableSender``, and nothing is sent.

``msg.provider`` (or the backend's ``provider`` option) restricts all of
this to one provider account. A domain that is not verified is refused
unless its account is the sandbox or the domain allows unverified sending.

An open backend keeps the routes it found in a :class:`Routes`, so a run of
sends from one address looks its route up once (see ``ROUTE_MAX_AGE``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db.models.signals import post_delete, post_save

from django_txmail.conf import ProviderAccount, get_settings
from django_txmail.exceptions import GrantUnavailable, UnroutableSender
from django_txmail.models import Grant, SendingDomain
from django_txmail.outbound_email import OutboundEmail
from django_txmail.providers import Route


@dataclass(frozen=True)
class ResolvedRoute:
    route: Route
    account: ProviderAccount
    grant: Grant | None = None
    sending_domain: SendingDomain | None = None


def _grant_route(grant: Grant) -> ResolvedRoute:
    if grant.status != Grant.Status.VALID:
        raise GrantUnavailable(grant.email, grant.status)
    account = get_settings().account(grant.provider)
    return ResolvedRoute(Route("grant", grant.provider, grant_id=grant.grant_id), account, grant)


def resolve(email: OutboundEmail, *, provider: str = "") -> ResolvedRoute:
    """The route for ``email``; ``provider`` is the sending backend's own restriction."""
    provider = email.provider or provider
    settings = get_settings()
    if provider:
        settings.account(provider)  # raises for an unknown account name
    grants = Grant.objects.filter(is_active=True)
    domains = SendingDomain.objects.all()
    if provider:
        grants = grants.filter(provider=provider)
        domains = domains.filter(provider=provider)

    if email.grant_id:
        grant = grants.filter(grant_id=email.grant_id).first()
        if grant is None:
            raise UnroutableSender(
                f"No active Grant with grant_id {email.grant_id!r}"
                + (f" on provider {provider!r}" if provider else "")
                + "; connect the mailbox first or remove msg.grant_id."
            )
        return _grant_route(grant)

    sender = email.from_email.email.lower()
    grant = grants.filter(email=sender).first()
    if grant is not None:
        return _grant_route(grant)

    domain_name = email.from_email.domain
    candidates = list(domains.filter(name=domain_name))
    if len(candidates) > 1:
        preferred = [d for d in candidates if d.provider == settings.default_provider]
        if len(preferred) != 1:
            raise UnroutableSender(
                f"{domain_name!r} is set up with several providers "
                f"({', '.join(d.provider for d in candidates)}); set msg.provider to choose one."
            )
        candidates = preferred
    if not candidates:
        raise UnroutableSender(
            f"No SendingDomain for {domain_name!r} and no active Grant for {sender!r}"
            + (f" on provider {provider!r}" if provider else "")
            + "; add the domain under Sending domains in the admin (or connect the "
            "mailbox as a Grant) before sending from it."
        )
    domain = candidates[0]
    account = settings.account(domain.provider)
    if (
        domain.status != SendingDomain.Status.VERIFIED
        and not domain.allow_unverified
        and not account.sandbox
    ):
        raise UnroutableSender(
            f"The sending domain {domain_name!r} is not verified (status: {domain.status}). "
            "Fix its DNS records and verify it, or tick 'allow unverified' on it for staging."
        )
    route = Route("domain", domain.provider, domain=domain.name)
    return ResolvedRoute(route, account, sending_domain=domain)


#: Seconds an open backend keeps a route it looked up. A Grant or SendingDomain
#: saved or deleted in this process is seen at the next send; a change made by
#: another process (the admin on another server, a webhook), within this time.
ROUTE_MAX_AGE = 30.0

_changes = 0  # Grant and SendingDomain rows saved or deleted in this process


def _routing_changed(**kwargs) -> None:
    global _changes
    _changes += 1


def routes_changed() -> None:
    """Routes found so far are looked up again: a change made without a save
    signal (a grant's status, written by an UPDATE) must be seen at once."""
    _routing_changed()


for _model in (Grant, SendingDomain):
    for _signal in (post_save, post_delete):
        _signal.connect(
            _routing_changed, sender=_model, dispatch_uid=f"txmail-routes-{_model.__name__}"
        )


class Routes:
    """The routes one open backend has found, by sender, grant id and provider.

    A route found is used again until ``ROUTE_MAX_AGE`` has passed or a
    Grant or SendingDomain changes in this process; a refusal
    (``UnroutableSender``) is never kept.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._found: dict[tuple[str, str, str], tuple[ResolvedRoute, int, float]] = {}

    def resolve(self, email: OutboundEmail, *, provider: str = "") -> ResolvedRoute:
        key = (email.from_email.email.lower(), email.grant_id, email.provider or provider)
        now = self.clock()
        found = self._found.get(key)
        if found is not None and found[1] == _changes and now - found[2] < ROUTE_MAX_AGE:
            return found[0]
        resolved = resolve(email, provider=provider)
        self._found[key] = (resolved, _changes, now)
        return resolved

    def clear(self) -> None:
        self._found.clear()
