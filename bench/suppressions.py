"""What the suppression check costs a big call: the target is at most 5 % of its time.

Run by hand from the repository root (never from the test suite)::

    python bench/suppressions.py                              # SQLite
    TXMAIL_PG_DURABLE=1 scripts/postgres.sh run -- python bench/suppressions.py --db postgres

It configures Django itself (a fresh database, dropped at the end), fills the
suppression list with ``--suppressions`` entries (default 100,000), then
times ``send_messages()`` of ``--messages`` messages (default 1,000) in one
call, ``--hits`` of whose recipients (default 100) are on the list, sent
through the sandbox's Mailtrap endpoint over loopback (batch requests).

Two scenarios take turns, ``--repeat`` rounds each (default 7), and the
median of each is reported with every run:

* ``with the check``: the call as it is, reading the list (one query);
* ``check answered from memory``: the same call with the lookup replaced by
  a function returning the very same answer, precomputed, so both record
  and send exactly the same rows and requests, and the difference is the
  query alone.

The overhead is (with - without) / without. The query is also timed alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)

TARGET_PERCENT = 5.0
FROM = "Shop <noreply@shop.example>"


def configure_for(url: str):
    def configure(db: str, tmp: str) -> str:
        from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN

        return benchdb.setup_txmail(
            db,
            tmp,
            {
                "mailtrap": {
                    "ADAPTER": "mailtrap",
                    "API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN,
                    "API_URI": url,
                    "SANDBOX": True,
                }
            },
            TIMEOUT=30,
        )

    return configure


def fill(suppressions: int, messages: int, hits: int) -> list[str]:
    """Put ``suppressions`` addresses on the list, ``hits`` of them among the recipients;
    return the recipients, one per message."""
    from django_txmail.models import SendingDomain, Suppression

    SendingDomain.objects.create(name="shop.example", provider="mailtrap")
    recipients = [f"user{n}@customers.example" for n in range(messages)]
    listed = recipients[:: max(1, messages // hits)][:hits]
    others = (f"gone{n}@elsewhere.example" for n in range(suppressions - len(listed)))
    rows = [Suppression(address=a, reason="hard_bounce") for a in (*listed, *others)]
    Suppression.objects.bulk_create(rows, batch_size=5000)
    from django.db import connection

    if connection.vendor == "postgresql":  # what autovacuum does after a bulk load
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE django_txmail_suppression")
    return recipients


def one_call(recipients: list[str]) -> float:
    from django.core import mail

    from django_txmail.message import TxMessage

    batch = [TxMessage("Receipt", "Thanks for your order.", FROM, [r]) for r in recipients]
    started = time.perf_counter()
    sent = mail.get_connection().send_messages(batch)
    elapsed = time.perf_counter() - started
    assert sent == len(recipients) - sum(1 for m in batch if m.txmail.status == "suppressed")
    return elapsed


def run_with(sandbox, recipients: list[str], repeat: int) -> int:
    from django.db import connection

    from django_txmail import suppressions
    from django_txmail.models import Message

    real = suppressions.lookup
    streams = {"transactional"}
    addresses = [r.lower() for r in recipients]
    answer = real(addresses, streams)

    def lookup_timed() -> float:
        started = time.perf_counter()
        real(addresses, streams)
        return time.perf_counter() - started

    times: dict[str, list[float]] = {"with the check": [], "check answered from memory": []}
    query: list[float] = []
    one_call(recipients)  # warm-up: connections, caches, the first INSERT's plan
    for _ in range(repeat):
        for scenario in times:
            Message.objects.all().delete()
            sandbox.reset()
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("VACUUM ANALYZE django_txmail_message")
            suppressions.lookup = real if scenario == "with the check" else (lambda *a: answer)
            try:
                times[scenario].append(one_call(recipients))
            finally:
                suppressions.lookup = real
        query.append(lookup_timed())
    suppressed = Message.objects.filter(status="suppressed").count()
    with_check = statistics.median(times["with the check"])
    without = statistics.median(times["check answered from memory"])
    overhead = 100 * (with_check - without) / without
    print(f"database          {connection.vendor}")
    print(f"call              {len(recipients):,} messages, {len(answer)} recipients suppressed")
    for scenario, runs in times.items():
        listed = ", ".join(f"{t * 1000:.0f}" for t in runs)
        print(f"{scenario:<27} median {statistics.median(runs) * 1000:8.1f} ms  ({listed})")
    print(f"the query alone             median {statistics.median(query) * 1000:8.2f} ms")
    print(f"its plan          {plan(addresses, streams)}")
    verdict = "PASS" if overhead <= TARGET_PERCENT else "MISS"
    print(f"overhead          {overhead:+.2f} % (target <= {TARGET_PERCENT:g} %: {verdict})")
    if suppressed != len(answer):
        print(f"WRONG: {suppressed} messages recorded suppressed, expected {len(answer)}")
        return 1
    return 0


def plan(addresses: list[str], streams: set[str]) -> str:
    """The first line of the lookup's query plan (an index scan, not a full read)."""
    from django.db import connection

    from django_txmail import suppressions

    sql, params = suppressions.lookup_query(addresses, streams)
    with connection.cursor() as cursor:
        prefix = "EXPLAIN QUERY PLAN " if connection.vendor == "sqlite" else "EXPLAIN "
        cursor.execute(prefix + sql, params)
        return " | ".join(str(row[-1]).strip() for row in cursor.fetchall()[:3])


def main() -> int:
    from txmail_sandbox import SandboxServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--suppressions", type=int, default=100_000)
    parser.add_argument("--hits", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with SandboxServer() as sandbox:

        def run(args: argparse.Namespace) -> int:
            recipients = fill(args.suppressions, args.messages, args.hits)
            return run_with(sandbox, recipients, args.repeat)

        return benchdb.run_in_database(args, configure_for(sandbox.url), run)


if __name__ == "__main__":
    sys.exit(main())
