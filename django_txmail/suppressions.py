"""The suppression list: addresses mail is never sent to, per stream.

An address gets here when it hard-bounced or complained (per the stream's
``SUPPRESS_ON``), when its recipient unsubscribed (one-click, or the
provider's ``unsubscribed`` event), from a provider's own list
(``txmail_suppressions sync``), or by hand (``suppress()``, the admin, the
command). A suppression of stream ``""`` holds for every stream.

The outbox asks :func:`lookup` once per ``send_messages()`` call, one query
for every recipient of every message of the call, before anything is
recorded; each message then goes only to the recipients not suppressed in
its stream.

Addresses are normalised once, here (:func:`normalize`): lower case, the
domain IDNA-encoded, so ``Ann@Example.COM``, ``ann@example.com`` and
``ann@bücher.example`` / ``ann@xn--bcher-kva.example`` are one entry each.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connections, router, transaction
from django.utils.encoding import punycode

from django_txmail.conf import DEFAULT_STREAM, SUPPRESSION_REASONS, get_settings
from django_txmail.event_types import EventType
from django_txmail.exceptions import InvalidMessage
from django_txmail.models import DeliveryEvent, Suppression

#: Every stream: a suppression with this stream holds in all of them.
EVERY_STREAM = ""

#: Bounce types providers use for a temporary failure. A "bounced" event of
#: one of these is a soft bounce and never suppresses (MailerLogic reports
#: ``bounce_type: "soft"``; Mailtrap's "soft bounce" is already "deferred").
SOFT_BOUNCE_TYPES = frozenset({"soft", "soft bounce", "softbounce", "transient", "temporary"})


def normalize(address: str) -> str:
    """The one spelling of an address on the list; InvalidMessage if it is not one."""
    text = str(address).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise InvalidMessage(f"{text[:80]!r} is not an email address.")
    try:
        normal = f"{local.lower()}@{punycode(domain.lower().rstrip('.'))}"
    except UnicodeError:
        raise InvalidMessage(f"{text[:80]!r} has an invalid domain.") from None
    try:
        validate_email(normal)
    except ValidationError:
        raise InvalidMessage(f"{text[:80]!r} is not a valid email address.") from None
    return normal


def _checked_stream(stream: str) -> str:
    if stream != EVERY_STREAM:
        get_settings().stream(stream)  # ImproperlyConfigured for an unknown stream
    return stream


def suppress(
    address: str,
    *,
    stream: str = EVERY_STREAM,
    reason: str = Suppression.Reason.MANUAL,
    note: str = "",
    event: DeliveryEvent | None = None,
) -> tuple[Suppression, bool]:
    """Put ``address`` on the list for ``stream`` (blank: every stream).

    Returns the entry and whether it is new; an address already on the list
    for that stream keeps its first entry (the first cause is the one to see).
    """
    if reason not in SUPPRESSION_REASONS:
        raise ValueError(f"reason must be one of {', '.join(SUPPRESSION_REASONS)}, not {reason!r}")
    address = normalize(address)
    stream = _checked_stream(stream)
    defaults = {"reason": reason, "note": note, "event": event}
    using = router.db_for_write(Suppression)
    try:
        with transaction.atomic(using=using):
            return Suppression.objects.get_or_create(
                address=address, stream=stream, defaults=defaults
            )
    except IntegrityError:  # added by another process since we looked
        return Suppression.objects.get(address=address, stream=stream), False


def unsuppress(address: str, *, stream: str | None = None) -> int:
    """Take ``address`` off the list: for ``stream`` (``""``: the every-stream entry),
    or every entry when None. Returns how many entries were removed.

    This changes only this database; ``django_txmail.tracking.provider_lists.lift``
    also removes it from the provider's list.
    """
    entries = Suppression.objects.filter(address=normalize(address))
    if stream is not None:
        entries = entries.filter(stream=stream)
    return entries.delete()[0]


def is_suppressed(address: str, stream: str = DEFAULT_STREAM) -> bool:
    """Whether mail of ``stream`` to ``address`` would be suppressed."""
    return Suppression.objects.filter(
        address=normalize(address), stream__in=[stream, EVERY_STREAM]
    ).exists()


def lookup(addresses: Iterable[str], streams: Iterable[str]) -> dict[tuple[str, str], str]:
    """``(address, stream) → reason`` for the entries naming any of ``addresses``
    in any of ``streams`` or in every stream: one query, whatever the number.

    ``addresses`` are normalised already (a composed message's, lower-cased).
    The list of addresses goes as one parameter (a PostgreSQL array, a JSON
    array on SQLite), so a call of 10,000 recipients is still one statement.
    Every send asks this, so the statement is written once, not compiled by
    the ORM each time.
    """
    wanted = sorted(set(addresses))
    if not wanted:
        return {}
    alias = router.db_for_read(Suppression)
    if connections[alias].vendor not in ("postgresql", "sqlite"):
        # Elsewhere the ORM splits a long list as the database needs (Oracle: 1,000).
        entries = Suppression.objects.using(alias).filter(
            stream__in=sorted({*streams, EVERY_STREAM}), address__in=wanted
        )
        return {(a, s): r for a, s, r in entries.values_list("address", "stream", "reason")}
    sql, params = lookup_query(wanted, streams, alias)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return {(address, stream): reason for address, stream, reason in cursor.fetchall()}


#: (database alias, vendor, number of streams) → the statement of :func:`lookup_query`.
_lookup_sql: dict[tuple[str, str, int], str] = {}


def lookup_query(
    wanted: list[str], streams: Iterable[str], alias: str | None = None
) -> tuple[str, list]:
    """The one statement of :func:`lookup` and its parameters (PostgreSQL, SQLite): one
    probe of the (address, stream) unique index per address, however long the list is."""
    alias = alias or router.db_for_read(Suppression)
    connection = connections[alias]
    streams = sorted({*streams, EVERY_STREAM})
    vendor = connection.vendor
    if vendor == "postgresql":
        # As a sub-select fenced by its LIMIT, PostgreSQL probes the index once per
        # address (a nested loop); "address = ANY(%s)" over 1,000 addresses is planned
        # as a full scan of a 100,000-entry list instead: 12 ms against 1.5 ms.
        among, params = "IN (SELECT unnest(%s::varchar[]) LIMIT %s)", [wanted, len(wanted)]
    else:  # SQLite
        among, params = "IN (SELECT value FROM json_each(%s))", [json.dumps(wanted)]
    key = (alias, vendor, len(streams))
    sql = _lookup_sql.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        address, stream, reason = (
            quote(Suppression._meta.get_field(name).column)
            for name in ("address", "stream", "reason")
        )
        sql = (
            f"SELECT {address}, {stream}, {reason} FROM {quote(Suppression._meta.db_table)} "
            f"WHERE {stream} IN ({', '.join(['%s'] * len(streams))}) AND {address} {among}"
        )
        _lookup_sql[key] = sql
    return sql, [*streams, *params]


def reason_for(found: dict[tuple[str, str], str], address: str, stream: str) -> str:
    """The reason ``address`` is suppressed in ``stream`` per a :func:`lookup`, or ""."""
    return found.get((address, stream)) or found.get((address, EVERY_STREAM), "")


def reason_of_event(event: DeliveryEvent) -> str:
    """The suppression a delivery event calls for ("" for none), before ``SUPPRESS_ON``.

    A bounce is hard unless the provider calls it soft. Providers call some
    temporary causes hard (a full mailbox, for Nylas and Mailtrap); the entry
    keeps their diagnostic (:func:`note_of_event`) so support can judge.
    """
    if event.type == EventType.BOUNCED:
        soft = event.bounce_type.strip().lower() in SOFT_BOUNCE_TYPES
        return "" if soft else Suppression.Reason.HARD_BOUNCE
    if event.type == EventType.COMPLAINED:
        return Suppression.Reason.COMPLAINT
    if event.type == EventType.UNSUBSCRIBED:
        return Suppression.Reason.UNSUBSCRIBE
    return ""


def note_of_event(event: DeliveryEvent) -> str:
    """What the provider said about it: bounce type, diagnostic, the server's answer."""
    parts = [event.provider_type, event.bounce_type, event.reason, event.mta_response]
    return "; ".join(dict.fromkeys(part for part in parts if part))


def from_events(events: list[DeliveryEvent]) -> list[Suppression]:
    """Add the suppressions newly stored delivery events call for; the entries added.

    Each goes in the stream of the message the event belongs to, when that
    stream's ``SUPPRESS_ON`` names the reason (an unsubscribe always). An
    event that matched no message adds none: its stream is unknown. One
    INSERT for them all; an address already on the list keeps its entry.
    """
    settings = get_settings()
    new: dict[tuple[str, str], Suppression] = {}
    for event in events:
        reason = reason_of_event(event)
        if not reason or event.message is None:
            continue
        stream = event.message.stream
        options = settings.streams.get(stream)
        if reason != Suppression.Reason.UNSUBSCRIBE and (
            options is None or reason not in options.suppress_on
        ):
            continue
        recipients = [event.recipient] if event.recipient else event.message.recipients
        for recipient in recipients:
            try:
                address = normalize(recipient)
            except InvalidMessage:
                continue
            new.setdefault(
                (address, stream),
                Suppression(
                    address=address,
                    stream=stream,
                    reason=reason,
                    event=event,
                    note=note_of_event(event),
                ),
            )
    if not new:
        return []
    found = lookup({address for address, _ in new}, {stream for _, stream in new})
    added = [entry for (a, s), entry in new.items() if not reason_for(found, a, s)]
    Suppression.objects.bulk_create(added, ignore_conflicts=True)
    return added
