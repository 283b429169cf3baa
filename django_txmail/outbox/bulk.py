"""Writing many rows at once, with the least Python per value.

Django's ``bulk_create`` and ``update`` compile every value through the
query compiler; for the outbox's hot paths (a call's messages, a batch's
attempts and outcomes) that is most of the cost. Here a value is prepared
by its field only where the database needs it (JSON, dates, UUIDs, foreign
keys); a ``str`` or an ``int`` for a text or integer column goes as it is.
Statements are prepared once and sent with ``executemany``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import models, transaction

#: Column types whose ``str`` or ``int`` values go to every database as they are.
_AS_THEY_ARE = frozenset(
    {
        "CharField",
        "TextField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "PositiveBigIntegerField",
        "IntegerField",
        "SmallIntegerField",
        "BigIntegerField",
    }
)


#: From this many rows on, PostgreSQL takes them with COPY: rows formatted in C and one
#: statement, where executemany quotes every value in Python and runs a statement a row.
COPY_FROM = 50
#: Rows whose values are prepared and sent together.
CHUNK = 500


def db_value(field: models.Field, value: Any, connection) -> Any:
    """``value`` as the database takes it for ``field``."""
    return converter(field, connection)(value)


def converter(field: models.Field, connection) -> Callable[[Any], Any]:
    """The function that makes a value of ``field`` what the database takes."""
    prepare = field.get_db_prep_save
    if field.get_internal_type() in _AS_THEY_ARE:
        return lambda value: value if type(value) in (str, int) else prepare(value, connection)
    return lambda value: prepare(value, connection)


def insert(rows: Sequence[models.Model], using: str) -> None:
    """INSERT new rows of one model with one prepared statement sent with executemany.

    What ``bulk_create`` does for them, as cheaply as it can be done: fields
    with ``auto_now``/``auto_now_add`` are stamped, an auto-increment key left
    unset is left to the database (the rows do not learn it), and no signals
    are sent.
    """
    if not rows:
        return
    connection = transaction.get_connection(using)
    sql, columns, names = insert_plan(
        type(rows[0]), connection, any(row.pk is None for row in rows)
    )
    # Prepared a chunk at a time: a big call never holds every row's values at once.
    chunks = (
        [[to_db(get(row)) for get, to_db in columns] for row in rows[start : start + CHUNK]]
        for start in range(0, len(rows), CHUNK)
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(rows) >= COPY_FROM:
            _copy(cursor, type(rows[0])._meta.db_table, names, chunks)
        else:
            for params in chunks:
                if len(params) == 1:  # one row: a plain execute (psycopg's executemany
                    cursor.execute(sql, params[0])  # takes a pipeline for it)
                else:
                    cursor.executemany(sql, params)
    for row in rows:
        row._state.adding, row._state.db = False, using


def insert_statement(rows: Sequence[models.Model], using: str) -> tuple[str, list]:
    """One ``INSERT ... VALUES (...), (...)`` of ``rows`` (a few, of one model) and its
    parameters, to be run by the caller: with another statement in one round trip
    (``states.accept_all``'s ``along``). Rows are stamped as :func:`insert` stamps them."""
    connection = transaction.get_connection(using)
    sql, columns, _ = insert_plan(type(rows[0]), connection, any(row.pk is None for row in rows))
    head, marks = sql.split(" VALUES ")
    params = [to_db(get(row)) for row in rows for get, to_db in columns]
    for row in rows:
        row._state.adding, row._state.db = False, using
    return f"{head} VALUES {', '.join([marks] * len(rows))}", params


def insert_plan(model: type[models.Model], connection, without_key: bool) -> tuple[str, list, list]:
    """The INSERT of ``model``'s rows on ``connection``: its SQL, per column how a row's
    value is read and made what the database takes, and the column names. Made
    once per connection (a single message's send inserts two rows) and kept on it,
    so that it goes with the connection."""
    plans = connection.__dict__.setdefault("_txmail_insert_plans", {})
    key = (model, without_key)
    if key not in plans:
        plans[key] = _insert_plan(model, connection, without_key)
    return plans[key]


def _insert_plan(
    model: type[models.Model], connection, without_key: bool
) -> tuple[str, list, list]:
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.generated]
    if without_key:
        fields = [f for f in fields if f is not meta.pk]
    stamped = {
        f for f in fields if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    }
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    read = [
        (lambda row, f=f: f.pre_save(row, add=True))
        if f in stamped
        else operator.attrgetter(f.attname)
        for f in fields
    ]
    columns = list(zip(read, [converter(f, connection) for f in fields], strict=True))
    return sql, columns, [f.column for f in fields]


def _copy(cursor, table: str, columns: list[str], chunks: Iterable[list[list]]) -> None:
    """``COPY table (columns) FROM STDIN`` with the rows of ``chunks``; errors as Django's,
    logged as a query (when queries are logged)."""
    connection = cursor.db
    quote = connection.ops.quote_name
    sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
    count = 0
    with connection.wrap_database_errors, cursor.cursor.copy(sql) as copy:
        for params in chunks:
            for values in params:
                copy.write_row(values)
            count += len(params)
    if connection.queries_logged:
        connection.queries_log.append({"sql": f"{count} rows: {sql}", "time": "0.000"})
