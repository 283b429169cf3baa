"""Quota bookkeeping benchmark: 1,000 messages with and without a generous RATE_LIMIT.

Run by hand from the repository root (never from the test suite)::

    python bench/quotas.py                                   # SQLite
    TXMAIL_PG_DURABLE=1 scripts/postgres.sh run -- python bench/quotas.py --db postgres

The sandbox answers at once (no latency), so what is measured is our own
work. Two scenarios, each run ``--repeat`` times in turns with and without
``RATE_LIMIT = "1000000/s"`` (a budget that never makes anyone wait):

* one ``send_messages()`` call with every message (immediate delivery: one
  quota transaction for the whole call);
* ``Worker(concurrency=8)`` draining as many recorded, due messages (one
  quota transaction per claimed batch).

It also prints how long one fsync takes where the database lives: the
figures mean little without it.

Target: the bookkeeping adds at most 10 % (medians compared).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)
from delivery import fsync_ms  # noqa: E402

KEY = "bench-nylas-key"
#: Where the database's files are: the SQLite file's folder, or (PostgreSQL from
#: scripts/postgres.sh, under .tmp/) the repository's.
DISK = [str(Path(__file__).resolve().parent.parent)]
GENEROUS = "1000000/s"


def txmail(url: str, rate_limit: str | None) -> dict:
    account = {"ADAPTER": "nylas", "API_KEY": KEY, "API_URI": url, "SANDBOX": True}
    if rate_limit:
        account["RATE_LIMIT"] = rate_limit
    return {"PROVIDERS": {"nylas": account}, "DEFAULT_PROVIDER": "nylas", "TIMEOUT": 10}


def messages(n: int, run: str) -> list:
    from django_txmail.message import TxMessage

    return [
        TxMessage(f"m{i}", "Hello", "noreply@example.com", [f"u{i}@x.example"]) for i in range(n)
    ]


def immediate(n: int, run: str) -> float:
    from django.core import mail

    batch = messages(n, run)
    started = time.perf_counter()
    assert mail.get_connection().send_messages(batch) == n
    return time.perf_counter() - started


def worker(n: int, run: str) -> float:
    from django.utils import timezone

    from django_txmail.compose import compose
    from django_txmail.models import Message
    from django_txmail.outbox.store import plan, record
    from django_txmail.routing import resolve
    from django_txmail.sending.worker import Worker

    for message in messages(n, run):  # recorded, untimed
        email = compose(message)
        record(plan(email), resolve(email))
    Message.objects.update(next_attempt_at=timezone.now())
    started = time.perf_counter()
    stats = Worker(concurrency=8, batch=100).run(once=True)
    took = time.perf_counter() - started
    assert stats.sent == n, stats
    return took


def main(args: argparse.Namespace) -> int:
    from django.test import override_settings

    from django_txmail.models import AccountThrottle, Attempt, Message, SendingDomain
    from txmail_sandbox import SandboxServer

    SendingDomain.objects.create(name="example.com", provider="nylas")
    results: dict[tuple[str, str], list[float]] = {}
    with SandboxServer(nylas_api_keys=[KEY]) as sandbox:
        for round_ in range(args.repeat):
            for scenario, function in (("immediate", immediate), ("worker c=8", worker)):
                for label, rate in (("no quota", None), ("quota", GENEROUS)):
                    Attempt.objects.all().delete()
                    Message.objects.all().delete()
                    AccountThrottle.objects.all().delete()
                    sandbox.reset()
                    with override_settings(TXMAIL=txmail(sandbox.url, rate)):
                        seconds = function(args.messages, f"{round_}{label}")
                    results.setdefault((scenario, label), []).append(seconds)
    print(f"\n{args.messages} messages, {args.db}, medians of {args.repeat} runs (msg/s)")
    worst = 0.0
    for scenario in ("immediate", "worker c=8"):
        plain = statistics.median(results[(scenario, "no quota")])
        paced = statistics.median(results[(scenario, "quota")])
        added = 100 * (paced - plain) / plain
        worst = max(worst, added)
        print(
            f"{scenario:12} no quota {args.messages / plain:7.0f}   "
            f"RATE_LIMIT {GENEROUS} {args.messages / paced:7.0f}   "
            f"bookkeeping adds {added:+.1f} %"
        )
    print(f"disk: fsync {fsync_ms(DISK[0]):.2f} ms (median of 50, {DISK[0]})")
    print(f"target: at most +10 % -> {'met' if worst <= 10 else 'MISSED'}")
    return 0 if worst <= 10 else 1


def configure(db: str, tmp: str) -> str:
    if db == "sqlite":
        DISK[0] = tmp
    return benchdb.setup(
        db,
        tmp,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "django_txmail",
        ],
        EMAIL_BACKEND="django_txmail.backends.EmailBackend",
        TXMAIL=txmail("http://127.0.0.1:9", None),
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(benchdb.run_in_database(parse_args(), configure, main))
