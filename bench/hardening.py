"""Hardening benchmark: a Nylas notification naming thousands of strangers, the worst template.

Run by hand from the repository root (never from the test suite)::

    python bench/hardening.py                              # SQLite
    scripts/postgres.sh run -- python bench/hardening.py --db postgres

1. A signed ``message.transactional.delivered`` notification naming
   ``--recipients`` addresses (default 2,000) for a message sent to two of
   them is posted to the webhook view (Django's request handling through the
   test client). Targets: ingested in under 0.2 s, storing (every stored
   payload, as the database holds it) under 3 times the body's size.
2. The two templates of the hardening issue are rendered with the default
   budgets (``TEMPLATE_TIME_LIMIT`` 1 s of CPU, ``TEMPLATE_MAX_SIZE``
   1,000,000 characters). Target: each is refused, within its budget.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import resource
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)

SECRET = "bench-secret"
TEMPLATES = {
    "nested loops": (
        '{% for a in "x"|rjust:30000 %}{% for b in "x"|rjust:30000 %}{% endfor %}{% endfor %}'
    ),
    "large output": '{% for a in "x"|rjust:2000 %}{{ "y"|rjust:100000 }}{% endfor %}',
}


def configure(db: str, tmp: str) -> str:
    return benchdb.setup_txmail(
        db,
        tmp,
        {
            "nylas": {
                "ADAPTER": "nylas",
                "API_KEY": "k",
                "API_URI": "http://127.0.0.1:9",
                "WEBHOOK_SECRET": SECRET,
            }
        },
    )


def stored_bytes() -> int:
    from django.db import connection

    total = 0
    with connection.cursor() as cursor:
        for table in ("django_txmail_deliveryevent", "django_txmail_webhookpayload"):
            cursor.execute(f"SELECT COALESCE(SUM(LENGTH(CAST(raw AS TEXT))), 0) FROM {table}")
            total += cursor.fetchone()[0]
    return total


def notification(args: argparse.Namespace) -> bool:
    from django.test import Client

    from django_txmail.models import DeliveryEvent, Message

    Message.objects.create(
        route="domain",
        provider="nylas",
        route_domain="example.com",
        from_email={"email": "noreply@example.com", "name": ""},
        from_address="noreply@example.com",
        to=[{"email": "ann@x.example", "name": ""}, {"email": "bob@x.example", "name": ""}],
        subject="Hi",
        status="sent",
        idempotency_key=f"k-{uuid.uuid4()}",
        provider_message_id="nylas-bench",
    )
    recipients = ["ann@x.example", "bob@x.example"]
    recipients += [f"r{n}@y.example" for n in range(args.recipients - 2)]
    body = json.dumps(
        {
            "specversion": "1.0",
            "type": "message.transactional.delivered",
            "source": "/nylas/transactional",
            "id": f"evt-{uuid.uuid4().hex}",
            "time": 1_800_000_000,
            "webhook_delivery_attempt": 1,
            "data": {
                "application_id": "app",
                "object": {
                    "message": {"id": "nylas-bench", "metadata": {}},
                    "delivered": {"delivered_at": 1_800_000_010, "recipients": recipients},
                },
            },
        }
    ).encode()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    client = Client()
    client.get("/webhooks/nylas/?challenge=warm-up")
    started = time.perf_counter()
    response = client.post(
        "/webhooks/nylas/", body, content_type="application/json", HTTP_X_NYLAS_SIGNATURE=signature
    )
    elapsed = time.perf_counter() - started
    stored = stored_bytes()
    ok = response.status_code == 200 and elapsed < 0.2 and stored < 3 * len(body)
    print(
        f"notification naming {args.recipients} recipients ({len(body):,} bytes) for a "
        f"2-recipient message: {response.status_code} {response.json()} "
        f"in {elapsed * 1000:.0f} ms; "
        f"stored {stored:,} bytes ({stored / len(body):.2f}x the body), "
        f"{DeliveryEvent.objects.count()} events; target < 200 ms and < 3x: "
        f"{'met' if ok else 'MISSED'}"
    )
    return ok


def templates() -> bool:
    from django_txmail.conf import get_settings
    from django_txmail.exceptions import TemplateError
    from django_txmail.models import Template
    from django_txmail.stored_templates.render import render_template

    config = get_settings()
    print(
        f"template budgets: {config.template_time_limit:g} s of CPU, "
        f"{config.template_max_size:,} characters"
    )
    ok = True
    for name, source in TEMPLATES.items():
        template = Template.objects.create(
            slug=name.replace(" ", "-"), name=name, subject="s", html=source
        )
        memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            render_template(template)
            outcome = "RENDERED (not refused)"
            refused = False
        except TemplateError as exc:
            outcome = f"refused: {exc}"
            refused = True
        elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before
        within = cpu <= config.template_time_limit * 1.1
        ok &= refused and within
        print(
            f"{name}: {outcome}\n  after {elapsed:.3f} s ({cpu:.3f} s CPU); peak memory grew "
            f"{grown / 1024:.1f} MB; within budget: {'yes' if within else 'NO'}"
        )
    return ok


def run(args: argparse.Namespace) -> int:
    ok = notification(args)
    ok &= templates()
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--recipients", type=int, default=2000)
    return benchdb.run_in_database(parser.parse_args(), configure, run)


if __name__ == "__main__":
    sys.exit(main())
