"""Webhook ingestion benchmark: delivery events stored per second, per process.

Run by hand from the repository root (never from the test suite)::

    python bench/webhooks.py                              # SQLite
    scripts/postgres.sh run -- python bench/webhooks.py --db postgres

It configures Django itself (a fresh SQLite file in a temporary directory,
or a fresh database on the PostgreSQL server the ``PG*`` variables point at,
dropped at the end), records ``--messages`` sent messages, and posts
``--events`` Mailtrap events to the webhook view in signed batches of
``--batch`` (Mailtrap's maximum is 500), with ``--duplicates`` of them sent
twice and everything shuffled, through Django's request handling (the test
client: no sockets, every middleware-free layer of a real request). It
reports events/second for the whole request path, then checks that exactly
the unique events were stored. Target: at least 2,000 events/s.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)

SECRET = "bench-secret"
TARGET = 2000


def configure(db: str, tmp: str) -> str:
    return benchdb.setup_txmail(
        db,
        tmp,
        {
            "mailtrap": {
                "ADAPTER": "mailtrap",
                "API_TOKEN": "t",
                "API_URI": "http://127.0.0.1:9",
                "WEBHOOK_SECRET": SECRET,
            }
        },
    )


def run(args: argparse.Namespace) -> int:
    from django.test import Client

    from django_txmail.models import DeliveryEvent, Message

    kinds = ["delivery", "open", "click", "soft bounce", "bounce", "spam"]
    messages = Message.objects.bulk_create(
        Message(
            route="domain",
            provider="mailtrap",
            route_domain="example.com",
            from_email={"email": "noreply@example.com", "name": ""},
            from_address="noreply@example.com",
            to=[{"email": f"u{i}@x.example", "name": ""}],
            status="sent",
            idempotency_key=f"bench-{i}",
            provider_message_id=f"mt-{i}",
        )
        for i in range(args.messages)
    )
    rng = random.Random(1)
    unique = []
    for n in range(args.events):
        i = n % args.messages
        unique.append(
            {
                "event": rng.choice(kinds),
                "event_id": f"ev-{n}",
                "message_id": f"mt-{i}",
                "email": f"u{i}@x.example",
                "timestamp": 1_800_000_000 + n,
                "custom_variables": {"txmail_id": str(messages[i].pk)},
            }
        )
    events = unique + rng.sample(unique, int(len(unique) * args.duplicates))
    rng.shuffle(events)
    bodies = []
    for start in range(0, len(events), args.batch):
        body = json.dumps({"events": events[start : start + args.batch]}).encode()
        bodies.append((body, hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()))

    client = Client()
    clock = time.perf_counter()
    stored = 0
    for body, signature in bodies:
        response = client.post(
            "/webhooks/mailtrap/",
            body,
            content_type="application/json",
            HTTP_MAILTRAP_SIGNATURE=signature,
        )
        if response.status_code != 200:
            print(f"request refused: {response.status_code} {response.content[:200]!r}")
            return 1
        stored += response.json()["stored"]
    elapsed = time.perf_counter() - clock

    rate = len(events) / elapsed
    in_db = DeliveryEvent.objects.count()
    print(f"database          {args.db}")
    print(
        f"events posted     {len(events):,} ({len(unique):,} unique, "
        f"{len(events) - len(unique):,} duplicates) in {len(bodies)} requests of "
        f"<= {args.batch}"
    )
    print(f"time              {elapsed:.2f} s")
    print(
        f"events/s          {rate:,.0f}  (target >= {TARGET:,}: "
        f"{'PASS' if rate >= TARGET else 'MISS'})"
    )
    print(f"stored            {stored:,} reported, {in_db:,} in the database")
    if stored != len(unique) or in_db != len(unique):
        print("WRONG: the stored events are not exactly the unique ones")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=4_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--duplicates", type=float, default=0.2)
    return benchdb.run_in_database(parser.parse_args(), configure, run)


if __name__ == "__main__":
    sys.exit(main())
