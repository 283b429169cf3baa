"""The one owner of ``Message.status``: the allowed transitions, and every write.

A message's status changes for a handful of reasons (*causes*). Each cause
may move a message only from some statuses to some others; that table is
:data:`TRANSITIONS` below, written once, as data. Every status write in the
package is one of the guarded UPDATEs in this module, whose WHERE clause is
taken from the table, so a write outside it cannot happen: two processes
racing on one row both run their UPDATE and exactly one matches.

::

                  claim                        accept
    (record) ─► queued ───► sending ──────────────────► sent ─┐
        │         ▲ ▲  transient │ │ permanent, give up        │ provider
        │  release│ └────────────┘ └────► failed (ours)        │ events,
        │         └───── retry now ──────────┘   │             │ by rank
        ├─► scheduled ── due: claim ─► sending   │             ▼
        │   (held by us, or by the provider)     └──────► delivered, deferred,
        └─► sending (recorded claimed)                    bounced, rejected,
                                                          complained, failed
    queued, scheduled ── cancel ──► cancelled

Provider events move the status by *rank* (:func:`rank`): an event sets the
status it implies only when that ranks higher than the current one, so
events may arrive late, twice or in any order and still end in one status.
A failure is kept with its origin (``Message.failure_origin``): a verdict of
ours (the attempts ran out, an error we could not resolve) ranks below any
word from the provider, so a message we gave up on that the provider later
reports delivered, bounced or complained takes that status; a failure the
provider reported ranks above delivery, as it always has.

The status groups other modules ask about (``NOT_SENT_YET``,
``WAITING``, ...) are defined here once.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import router, transaction
from django.db.models import F, Q
from django.utils import timezone

from django_txmail.event_types import EventType
from django_txmail.models import Message
from django_txmail.outbox import bulk

S = Message.Status
Origin = Message.FailureOrigin


class Cause(enum.StrEnum):
    """Why a message's status changes."""

    RECORD = "record"  # a new message is written to the outbox
    CLAIM = "claim"  # a sender takes it (queued, due, or abandoned past its lease)
    RELEASE = "release"  # a stopping worker gives back a claim it did not attempt
    HOLD = "hold"  # the connected mailbox (grant) it goes through is gone: it waits
    ACCEPT = "accept"  # the provider accepted it (or holds it for its send_at)
    TRANSIENT = "transient"  # the attempt failed in a way worth retrying
    PERMANENT = "permanent"  # the attempt failed for good
    GIVE_UP = "give_up"  # transient failures (or abandoned sends) used every attempt
    CANCEL = "cancel"  # support or code cancelled it before it was sent
    RETRY_NOW = "retry_now"  # support asked for one more attempt now
    SUPPRESS = "suppress"  # every recipient is on the suppression list: never sent
    EVENT = "event"  # the provider reported what happened (a webhook)


@dataclass(frozen=True)
class Transition:
    sources: frozenset[str]
    targets: frozenset[str]
    why: str


def _set(*statuses: str) -> frozenset[str]:
    return frozenset(statuses)


#: A resend records a *new* message (``Cause.RECORD``); the original is not changed.
NEW = ""

#: The statuses a provider event can put a message in, by event type.
STATUS_OF_EVENT: dict[str, str] = {
    EventType.SENT: S.SENT,
    EventType.DEFERRED: S.DEFERRED,
    EventType.DELIVERED: S.DELIVERED,
    EventType.OPENED: S.DELIVERED,  # an open or a click proves delivery
    EventType.CLICKED: S.DELIVERED,
    EventType.BOUNCED: S.BOUNCED,
    EventType.REJECTED: S.REJECTED,
    EventType.FAILED: S.FAILED,
    EventType.COMPLAINED: S.COMPLAINED,
}

#: Precedence of provider evidence (see :func:`rank`); unlisted statuses rank 0.
#: No two statuses share a rank, so reports end in one status whatever order
#: they arrive in: of the provider's failures, the most specific stands (a
#: bounce names the recipient's server, a rejection the provider's refusal).
_RANK = {
    S.SENT: 1,
    S.DEFERRED: 2,
    S.DELIVERED: 3,
    S.FAILED: 4,
    S.REJECTED: 5,
    S.BOUNCED: 6,
    S.COMPLAINED: 7,
}

TRANSITIONS: dict[Cause, Transition] = {
    Cause.RECORD: Transition(
        _set(NEW), _set(S.QUEUED, S.SCHEDULED, S.SENDING), "written to the outbox"
    ),
    Cause.CLAIM: Transition(
        _set(S.QUEUED, S.SCHEDULED, S.SENDING),
        _set(S.SENDING),
        "queued; scheduled and due; sending whose lease ran out",
    ),
    Cause.RELEASE: Transition(_set(S.SENDING), _set(S.QUEUED), "a claim given back unattempted"),
    Cause.HOLD: Transition(
        _set(S.SENDING), _set(S.QUEUED), "its grant is not valid: waits, the attempt not counted"
    ),
    Cause.ACCEPT: Transition(
        # Anything meaning "not sent yet" (also a give-up of ours, or a cancel,
        # recorded while this answer was on its way: the provider has it all
        # the same); never what the provider reported since.
        _set(S.SENDING, S.QUEUED, S.FAILED, S.CANCELLED),
        _set(S.SENT, S.SCHEDULED),
        "sent; scheduled when the provider holds it for send_at",
    ),
    Cause.TRANSIENT: Transition(_set(S.SENDING), _set(S.QUEUED), "retried after a backoff"),
    Cause.PERMANENT: Transition(_set(S.SENDING), _set(S.FAILED), "failed, origin ours"),
    Cause.GIVE_UP: Transition(_set(S.SENDING), _set(S.FAILED), "failed, origin ours"),
    Cause.CANCEL: Transition(
        _set(S.QUEUED, S.SCHEDULED), _set(S.CANCELLED), "not sent yet (a late acceptance wins)"
    ),
    Cause.RETRY_NOW: Transition(
        _set(S.FAILED, S.QUEUED), _set(S.QUEUED), "failed (ours), or waiting for a retry"
    ),
    Cause.SUPPRESS: Transition(
        _set(NEW, S.QUEUED, S.FAILED),
        _set(S.SUPPRESSED),
        "recorded, or about to be retried, with every recipient suppressed",
    ),
    Cause.EVENT: Transition(
        frozenset(S.values) - {S.SUPPRESSED},
        frozenset(STATUS_OF_EVENT.values()),
        "only to a higher rank; never for a message not sent",
    ),
}

# The groups of statuses other modules ask about.

#: Not handed to the provider yet: still to be sent (never deleted, not resent).
NOT_SENT_YET = _set(S.QUEUED, S.SCHEDULED, S.SENDING)
#: Waiting in the outbox, or at the provider for its send_at: can still be cancelled.
WAITING = TRANSITIONS[Cause.CANCEL].sources
#: Ended without reaching anyone: not counted as sent by ``send_messages()``.
NOT_SENT = _set(S.FAILED, S.CANCELLED, S.SUPPRESSED)
#: A recipient's status when it was taken off the message (it never changes after).
RECIPIENT_SUPPRESSED = S.SUPPRESSED


def rank(status: str, failure_origin: str = "") -> int:
    """How much a status says about what happened; provider evidence outranks our verdicts."""
    if status == S.FAILED and failure_origin != Origin.PROVIDER:
        return 0
    return _RANK.get(status, 0)


def allowed(cause: Cause, before: str, after: str, *, before_origin: str = "") -> bool:
    """Whether the table lets ``cause`` move a message from ``before`` to ``after``."""
    if before == after and cause != Cause.CLAIM:
        return True  # not a transition
    transition = TRANSITIONS[cause]
    if before not in transition.sources or after not in transition.targets:
        return False
    if cause == Cause.EVENT:
        return rank(after, Origin.PROVIDER) > rank(before, before_origin)
    if cause in (Cause.ACCEPT, Cause.RETRY_NOW) and before == S.FAILED:
        return before_origin != Origin.PROVIDER
    return True


def after_event(status: str, failure_origin: str, event_type: str) -> tuple[str, str]:
    """(status, failure origin) after a provider event of ``event_type``."""
    new = STATUS_OF_EVENT.get(event_type)
    if new is None or rank(new, Origin.PROVIDER) <= rank(status, failure_origin):
        return status, failure_origin
    return new, Origin.PROVIDER if new == S.FAILED else ""


def recipient_after_event(status: str, event_type: str) -> str:
    """A recipient's status after an event naming them (the same precedence).

    A suppressed recipient was never sent the message: no event changes that.
    """
    if status == RECIPIENT_SUPPRESSED:
        return status
    return after_event(status, Origin.PROVIDER, event_type)[0]


def _sources(cause: Cause) -> Q:
    return Q(status__in=TRANSITIONS[cause].sources)


# --- Recording -------------------------------------------------------------


def initial(
    send_at: datetime | None,
    schedule_window: tuple[timedelta, timedelta] | None,
    *,
    claim: bool,
    lease_until: datetime,
    suppressed: bool = False,
) -> tuple[str, datetime | None, int, bool]:
    """(status, next_attempt_at, attempts, provider holds it) for a message being recorded.

    Every recipient suppressed: "suppressed", never sent (``Cause.SUPPRESS``).
    Due now: "queued", or "sending" already claimed by the caller (its first
    attempt, with a lease) when ``claim``. Due later: "queued" and handed to
    the provider with its send_at when the provider can hold it that long,
    else "scheduled" in the outbox until then.
    """
    if suppressed:
        return S.SUPPRESSED, None, 0, False
    now = timezone.now()
    if send_at is not None and send_at > now:
        if schedule_window is not None and (
            schedule_window[0] <= send_at - now <= schedule_window[1]
        ):
            provider_holds = True
        else:
            return S.SCHEDULED, send_at, 0, False
    else:
        provider_holds = False
    if claim:
        return S.SENDING, lease_until, 1, provider_holds
    return S.QUEUED, None, 0, provider_holds


# --- Claims ----------------------------------------------------------------


def claim(claimable: Q, pks: Iterable, lease_until: datetime) -> int:
    """Move the ``claimable`` rows among ``pks`` to "sending"; count the attempt.

    ``claimable`` narrows the table's sources to what is due now; the number
    of rows this call took is returned (another process took the rest).
    """
    now = timezone.now()
    return Message.objects.filter(_sources(Cause.CLAIM), claimable, pk__in=list(pks)).update(
        status=S.SENDING,
        attempts=F("attempts") + 1,
        next_attempt_at=lease_until,
        updated_at=now,
    )


def follow(messages: Iterable[Message]) -> None:
    """Instances whose row moved on without this process's write (a delivery event, a
    cancel, another sender, a task that already ran): each reads its whole row again,
    all in one query, so what the caller reports (``msg.txmail``, the API's answer) is
    the row, not what the write meant to do. A row deleted meanwhile leaves its instance
    as it was."""
    messages = list(messages)
    if not messages:
        return
    # From the database written to: a replica may not have the row as it is yet.
    rows = Message.objects.using(router.db_for_write(Message)).in_bulk(
        [message.pk for message in messages]
    )
    for message in messages:
        row = rows.get(message.pk)
        if row is not None:
            for field in Message._meta.concrete_fields:
                setattr(message, field.attname, getattr(row, field.attname))


def release(message: Message) -> bool:
    """Give back a claimed message that was not attempted: queued, due now."""
    return _give_back(message, Cause.RELEASE)


def _give_back(message: Message, cause: Cause, **fields) -> bool:
    """Give back this attempt's claim (``cause``: RELEASE or HOLD): queued, due now, the
    attempt not counted, ``fields`` written with it. Only while this attempt owns the
    message; the instance follows the row."""
    now = timezone.now()
    owned = Message.objects.filter(
        _sources(cause), pk=message.pk, attempts=message.attempts
    ).update(
        status=S.QUEUED,
        attempts=F("attempts") - 1,
        next_attempt_at=now,
        updated_at=now,
        **fields,
    )
    if owned:
        message.status, message.next_attempt_at, message.updated_at = S.QUEUED, now, now
        message.attempts -= 1
        for name, value in fields.items():
            setattr(message, name, value)
    else:
        follow([message])
    return bool(owned)


def hold(message: Message, *, last_error: str, last_error_type: str) -> bool:
    """The provider refused the attempt because the message's grant is gone: it
    waits for the grant (``outbox.claims.held_for_grant``), the attempt not
    counted against ``MAX_ATTEMPTS``. Only while this attempt owns the message."""
    return _give_back(message, Cause.HOLD, last_error=last_error, last_error_type=last_error_type)


def release_until(messages: list[Message], until: datetime) -> int:
    """Give back claimed messages that were not attempted (their account's quota had no
    slot soon enough): queued, due ``until``. One UPDATE per attempt number."""
    by_attempt: dict[int, list] = {}
    for message in messages:
        by_attempt.setdefault(message.attempts, []).append(message.pk)
    released, now = 0, timezone.now()
    for attempts, pks in by_attempt.items():
        released += Message.objects.filter(
            _sources(Cause.RELEASE), pk__in=pks, attempts=attempts
        ).update(
            status=S.QUEUED,
            attempts=F("attempts") - 1,
            next_attempt_at=until,
            updated_at=now,
        )
    if released < len(messages):  # some moved on meanwhile: each instance reads its row
        follow(messages)
        return released
    for message in messages:
        message.status, message.attempts, message.next_attempt_at = (
            S.QUEUED,
            message.attempts - 1,
            until,
        )
        message.updated_at = now
    return released


def give_up_abandoned(now: datetime, max_attempts: int) -> int:
    """Sends abandoned mid-request that used up their attempts end failed (ours)."""
    return Message.objects.filter(
        _sources(Cause.GIVE_UP), next_attempt_at__lte=now, attempts__gte=max_attempts
    ).update(
        status=S.FAILED,
        failure_origin=Origin.OURS,
        next_attempt_at=None,
        last_error=f"Abandoned mid-send {max_attempts} times (the sending process stopped).",
        last_error_type="abandoned",
        updated_at=now,
    )


# --- Attempt outcomes --------------------------------------------------------


def accept(message: Message, *, provider_holds: bool, **fields) -> None:
    """Record that the provider has the message; ``fields`` are its ids and times.

    A delivery event may have arrived before this answer was recorded: the
    status moves only from the table's sources, never back from what the
    provider reported (a failure of the provider's own included), while the
    ids and times are recorded either way.

    The first UPDATE also asks that nobody wrote the row since this process
    did (its ``updated_at`` is the instance's, as every writer sets it): then
    the instance knows the whole row. Otherwise the instance reads the
    :data:`ENDED` columns after (the event may have set its recipients'
    statuses); :func:`accept_all` reads them in its UPDATE where the database can.
    """
    status = S.SCHEDULED if provider_holds else S.SENT
    row = Message.objects.filter(pk=message.pk)
    sources = TRANSITIONS[Cause.ACCEPT].sources - {S.FAILED}
    untouched = row.filter(status__in=sources, updated_at=message.updated_at)
    raced = not untouched.update(status=status, failure_origin="", **fields)
    if raced:
        moved = row.filter(status__in=sources).update(status=status, failure_origin="", **fields)
        if not moved:  # our own give-up is replaced too, the provider's failure never
            moved = (
                row.filter(status=S.FAILED)
                .exclude(failure_origin=Origin.PROVIDER)
                .update(status=status, failure_origin="", **fields)
            )
        if not moved:
            row.update(**fields)
    for name, value in fields.items():
        setattr(message, name, value)
    if raced:
        _read_ended([message])
    else:
        message.status, message.failure_origin = status, ""


#: What the outcome's UPDATE may find written by someone else, read back with it.
ENDED = ("status", "failure_origin", "recipient_status")


def accept_all(
    accepted: list[tuple[Message, bool, dict]], along: tuple[str, list] | None = None
) -> None:
    """:func:`accept` for the messages of one request or batch request, in one statement.

    ``accepted`` holds ``(message, provider_holds, fields)`` (every message
    the same fields). One UPDATE joins the table to the list of values
    (``WITH v AS (VALUES ...)``; a prepared UPDATE sent with executemany
    where the database cannot join an UPDATE), records every message's ids
    and times and moves its status by the same rule as :func:`accept` (a CASE
    on the status the row has). The statuses the rows ended in, and their
    recipients' (a delivery event may have got there first), come back with it
    (``RETURNING``: PostgreSQL, SQLite 3.35+), or from one SELECT after it.

    ``along``: another statement (SQL, parameters), an INSERT of the requests'
    attempts, to run with it. On PostgreSQL it goes in the UPDATE's ``WITH``,
    so one statement, and one round trip, writes both: the caller may then run
    it outside a transaction. Elsewhere it runs just before the UPDATE.
    """
    if not accepted:
        return
    connection = transaction.get_connection(router.db_for_write(Message))
    joins, returns = _update_support(connection)
    if along is not None and not (connection.vendor == "postgresql" and joins):
        with connection.cursor() as cursor:
            cursor.execute(*along)
        along = None
    if len(accepted) < 2 and not returns:
        for message, provider_holds, fields in accepted:
            accept(message, provider_holds=provider_holds, **fields)
        return
    meta = Message._meta
    columns = [meta.get_field(name) for name in accepted[0][2]]
    to_db = [bulk.converter(f, connection) for f in (meta.pk, *columns)]
    rows = [
        [
            to_db[0](message.pk),
            str(S.SCHEDULED if provider_holds else S.SENT),
            *(convert(fields[f.name]) for f, convert in zip(columns, to_db[1:], strict=True)),
        ]
        for message, provider_holds, fields in accepted
    ]
    if joins:
        ended = _accept_joined(connection, columns, rows, returning=returns, along=along)
    else:
        _accept_each(connection, columns, rows)
        ended = None
    for message, _, fields in accepted:
        for name, value in fields.items():
            setattr(message, name, value)
    if ended is None:
        _read_ended([message for message, _, _ in accepted])
        return
    for (message, _, _), row in zip(accepted, rows, strict=True):
        # A row deleted meanwhile has nothing to take.
        for name, value in zip(ENDED, ended.get(row[0], ()), strict=False):
            setattr(message, name, value)


def _read_ended(messages: list[Message]) -> None:
    """The instances read the :data:`ENDED` columns of their rows (one SELECT)."""
    rows = Message.objects.using(router.db_for_write(Message))
    rows = rows.filter(pk__in=[message.pk for message in messages])
    now = {pk: values for pk, *values in rows.values_list("pk", *ENDED)}
    for message in messages:
        for name, value in zip(ENDED, now.get(message.pk, ()), strict=False):
            setattr(message, name, value)


def _update_support(connection) -> tuple[bool, bool]:
    """Whether the database joins an UPDATE to a list of values (``UPDATE ... FROM``),
    and whether it returns rows from an UPDATE (``RETURNING``)."""
    if connection.vendor == "postgresql":
        return True, True
    if connection.vendor == "sqlite":
        version = connection.Database.sqlite_version_info
        return version >= (3, 33), version >= (3, 35)
    return False, False


def _accept_guard(connection, table: str = "") -> tuple[str, list[str]]:
    """The SQL condition "the row's status may move by ACCEPT" and its parameters."""
    quote = connection.ops.quote_name
    prefix = f"{quote(table)}." if table else ""
    status = prefix + quote(Message._meta.get_field("status").column)
    origin = prefix + quote(Message._meta.get_field("failure_origin").column)
    pending = sorted(TRANSITIONS[Cause.ACCEPT].sources - {S.FAILED})
    sql = f"{status} IN ({', '.join(['%s'] * len(pending))}) OR ({status} = %s AND {origin} <> %s)"
    return sql, [str(value) for value in (*pending, S.FAILED, Origin.PROVIDER)]


def _accept_joined(
    connection,
    columns: list,
    rows: list[list],
    *,
    returning: bool,
    along: tuple[str, list] | None = None,
) -> dict | None:
    """One UPDATE per chunk of rows, joined to their values (PostgreSQL, SQLite 3.33+).

    ``returning``: the statement also returns each row's :data:`ENDED` columns,
    given back as ``{key as the database took it: (status, origin, recipients)}``.
    ``along`` (PostgreSQL): a statement the first UPDATE carries in its ``WITH``
    (a data-modifying ``WITH`` runs once, whether or not it is read). Where the
    work takes more than one statement, they run in one transaction (a
    savepoint inside the caller's), so it is all written or none of it.
    """
    names, marks, tail, guard, per_statement = _joined_update(
        connection, tuple(f.name for f in columns), returning
    )
    limit = connection.features.max_query_params or DEFAULT_MAX_PARAMS
    statements: list[tuple[str, list]] = []
    per_row = marks.count("%s")
    if along is not None and (
        len(along[1]) + per_row * min(len(rows), per_statement) + 2 * len(guard) > limit
    ):
        statements.append(along)  # too many parameters for one statement
        along = None
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        carried, along_params = (f"txmail_along AS ({along[0]}), ", along[1]) if along else ("", [])
        along = None
        values = ", ".join([marks] * len(chunk))
        statements.append(
            (
                f"WITH {carried}v ({names}) AS (VALUES {values}){tail}",
                [*along_params, *(value for row in chunk for value in row), *guard, *guard],
            )
        )
    ended: dict = {}
    # Raw rows: each column as the field reads it (the recipients' JSON comes as text).
    readers = [
        getattr(Message._meta.get_field(name), "from_db_value", lambda value, *_: value)
        for name in ENDED
    ]
    together = transaction.atomic(using=connection.alias) if len(statements) > 1 else nullcontext()
    with together, connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            if returning and sql.startswith("WITH"):
                ended.update(
                    (
                        pk,
                        tuple(
                            read(v, None, connection)
                            for read, v in zip(readers, values, strict=True)
                        ),
                    )
                    for pk, *values in cursor.fetchall()
                )
    return ended if returning else None


#: Parameters one statement may take where the database sets no limit (PostgreSQL's
#: protocol allows 65,535).
DEFAULT_MAX_PARAMS = 30_000
#: (database alias, vendor, columns, returning, parameter limit) → the parts of
#: :func:`_accept_joined`'s statement: written once, as every single send's outcome uses it.
_joined_updates: dict[tuple, tuple[str, str, str, list[str], int]] = {}


def _joined_update(
    connection, columns: tuple[str, ...], returning: bool
) -> tuple[str, str, str, list[str], int]:
    """The joined UPDATE's column names for ``v``, a row's placeholders, the statement
    after the VALUES list, the guard's parameters and how many rows one statement takes."""
    limit = connection.features.max_query_params or DEFAULT_MAX_PARAMS
    key = (connection.alias, connection.vendor, columns, returning, limit)
    if key in _joined_updates:
        return _joined_updates[key]
    meta = Message._meta
    fields = [meta.get_field(name) for name in columns]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    ours, guard = _accept_guard(connection, meta.db_table)
    status = quote(meta.get_field("status").column)
    origin = quote(meta.get_field("failure_origin").column)

    def typed(field, name: str) -> str:  # PostgreSQL types a VALUES list by its values
        if connection.vendor != "postgresql":
            return name
        return f"CAST({name} AS {field.cast_db_type(connection)})"

    names = ["txmail_id", "txmail_status", *(f"txmail_{f.column}" for f in fields)]
    assignments = [
        f"{status} = CASE WHEN {ours} THEN v.txmail_status ELSE {table}.{status} END",
        f"{origin} = CASE WHEN {ours} THEN '' ELSE {table}.{origin} END",
        *(f"{quote(f.column)} = {typed(f, f'v.txmail_{f.column}')}" for f in fields),
    ]
    # Unqualified: SQLite's RETURNING names the updated table's columns only.
    ended = ", ".join(quote(meta.get_field(name).column) for name in ENDED)
    back = f" RETURNING {quote(meta.pk.column)}, {ended}" if returning else ""
    tail = (
        f" UPDATE {table} SET {', '.join(assignments)} FROM v "
        f"WHERE {table}.{quote(meta.pk.column)} = {typed(meta.pk, 'v.txmail_id')}{back}"
    )
    per_statement = max(1, (limit - 2 * len(guard)) // len(names))
    marks = f"({', '.join(['%s'] * len(names))})"
    parts = (", ".join(names), marks, tail, guard, per_statement)
    _joined_updates[key] = parts
    return parts


def _accept_each(connection, columns: list, rows: list[list]) -> None:
    """One prepared UPDATE per row, sent with executemany (other databases)."""
    meta = Message._meta
    quote = connection.ops.quote_name
    ours, guard = _accept_guard(connection)
    status = quote(meta.get_field("status").column)
    origin = quote(meta.get_field("failure_origin").column)
    assignments = [
        f"{status} = CASE WHEN {ours} THEN %s ELSE {status} END",
        f"{origin} = CASE WHEN {ours} THEN '' ELSE {origin} END",
        *(f"{quote(field.column)} = %s" for field in columns),
    ]
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {', '.join(assignments)} "
        f"WHERE {quote(meta.pk.column)} = %s"
    )
    with connection.cursor() as cursor:
        cursor.executemany(
            sql, [[*guard, to_status, *guard, *values, pk] for pk, to_status, *values in rows]
        )


def fail(
    message: Message,
    *,
    retry_at: datetime | None,
    gave_up: bool,
    last_error: str,
    last_error_type: str,
    move_to: str = "",
    move_reason: str = "",
) -> bool:
    """Record a failed attempt: queued for ``retry_at``, or failed (ours) when None.

    Only while this attempt still owns the message ("sending" with its
    attempt number); returns False when something else moved it meanwhile (a
    delivery event, a cancel, another sender), which then stands. ``move_to``
    (with a retry): the FAILOVER account the next attempt goes to, and why.
    """
    if retry_at is not None:
        cause, status, origin = Cause.TRANSIENT, S.QUEUED, ""
    else:
        cause, status, origin = (
            (Cause.GIVE_UP if gave_up else Cause.PERMANENT),
            S.FAILED,
            Origin.OURS,
        )
    now = timezone.now()
    owned = Message.objects.filter(
        _sources(cause), pk=message.pk, attempts=message.attempts
    ).update(
        status=status,
        failure_origin=origin,
        next_attempt_at=retry_at,
        last_error=last_error,
        last_error_type=last_error_type,
        updated_at=now,
        **(_moved(message, move_to, move_reason) if move_to and retry_at else {}),
    )
    if owned:
        message.status, message.failure_origin, message.next_attempt_at = status, origin, retry_at
        message.last_error, message.last_error_type = last_error, last_error_type
        message.updated_at = now
        if move_to and retry_at:
            _moved_in_memory(message, move_to, move_reason)
    else:
        follow([message])
    return bool(owned)


def move(message: Message, to: str, reason: str) -> bool:
    """Give back a claimed message, unattempted, for account ``to`` (its account is down
    and no attempt of it may have been accepted): queued, due now."""
    return _give_back(message, Cause.RELEASE, **_moved(message, to, reason))


def _moved(message: Message, to: str, reason: str) -> dict:
    """The fields a move to a FAILOVER account writes (the first account is kept)."""
    return {
        "provider": to,
        "failover_from": message.failover_from or message.provider,
        "failover_reason": reason,
    }


def _moved_in_memory(message: Message, to: str, reason: str) -> None:
    for name, value in _moved(message, to, reason).items():
        setattr(message, name, value)


# --- Support actions ---------------------------------------------------------


def cancel(message: Message, *, held_by_provider: bool = False) -> bool:
    """Cancel a message that has not been sent; False if it moved on first.

    ``held_by_provider``: the provider already agreed to drop the message it
    held for its send_at, so only that "scheduled" row is cancelled.
    """
    statuses = {S.SCHEDULED} if held_by_provider else TRANSITIONS[Cause.CANCEL].sources
    return bool(
        Message.objects.filter(_sources(Cause.CANCEL), pk=message.pk, status__in=statuses).update(
            status=S.CANCELLED, next_attempt_at=None, updated_at=timezone.now()
        )
    )


def retryable(message: Message) -> bool:
    """Whether :func:`retry_now` would take ``message`` (for offering the action)."""
    failed_by_us = message.status == S.FAILED and message.failure_origin != Origin.PROVIDER
    return failed_by_us or (message.status == S.QUEUED and message.next_attempt_at is not None)


def retry_now(message: Message) -> bool:
    """Queue a failed message (our verdict), or one waiting for its retry, due now."""
    now = timezone.now()
    failed_by_us = Q(status=S.FAILED) & ~Q(failure_origin=Origin.PROVIDER)
    waiting = Q(status=S.QUEUED, next_attempt_at__isnull=False)
    return bool(
        Message.objects.filter(
            _sources(Cause.RETRY_NOW), failed_by_us | waiting, pk=message.pk
        ).update(status=S.QUEUED, failure_origin="", next_attempt_at=now, updated_at=now)
    )


def suppress(message: Message) -> bool:
    """A message about to be retried whose every recipient is now suppressed: never sent.

    Each recipient's status says so too. False when it moved on first (a
    worker claimed it, an event arrived).
    """
    recipient_status = {
        **message.recipient_status,
        **{address.lower(): RECIPIENT_SUPPRESSED for address in message.recipients},
    }
    moved = Message.objects.filter(
        _sources(Cause.SUPPRESS), pk=message.pk, status=message.status
    ).update(
        status=S.SUPPRESSED,
        failure_origin="",
        next_attempt_at=None,
        recipient_status=recipient_status,
        updated_at=timezone.now(),
    )
    if moved:
        message.status, message.recipient_status = S.SUPPRESSED, recipient_status
    return bool(moved)


# --- Provider events -----------------------------------------------------------


def apply_events(messages: list[tuple[Message, str]]) -> None:
    """Write the statuses ingestion worked out for ``(message, status read)`` pairs.

    The rows were read and locked (``select_for_update``) in this
    transaction; each UPDATE is still guarded by the status read, and sent
    as one prepared statement with executemany (``bulk_update``'s CASE over
    every row costs more than the rest of ingestion for a batch of 500).
    """
    if not messages:
        return
    connection = transaction.get_connection(router.db_for_write(Message))
    quote = connection.ops.quote_name
    fields = [
        Message._meta.get_field(name)
        for name in ("status", "failure_origin", "recipient_status", "updated_at")
    ]
    pk, status = Message._meta.pk, Message._meta.get_field("status")
    sql = "UPDATE {} SET {} WHERE {} = %s AND {} = %s".format(
        quote(Message._meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in fields),
        quote(pk.column),
        quote(status.column),
    )
    params = [
        [field.get_db_prep_save(getattr(message, field.attname), connection) for field in fields]
        + [pk.get_db_prep_value(message.pk, connection), before]
        for message, before in messages
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
