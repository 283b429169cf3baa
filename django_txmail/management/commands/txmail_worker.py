"""``manage.py txmail_worker``: deliver what is due, on as many machines as you like.

Run it alongside the web processes: it sends retries whose time has come,
scheduled mail held in the outbox, sends abandoned by a process that died,
and queued messages no task delivered. ``--once`` delivers everything due
now and exits (for cron or tests). SIGTERM/SIGINT stop it cleanly.
"""

from __future__ import annotations

import argparse
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_txmail.models import Message
from django_txmail.sending.worker import Worker


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {value!r}")
    return number


class Command(BaseCommand):
    help = "Deliver queued retries, due scheduled mail and abandoned sends."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="deliver what is due now, then exit"
        )
        parser.add_argument(
            "--batch", type=_positive_int, default=100, help="messages claimed per query (100)"
        )
        parser.add_argument(
            "--concurrency",
            type=_positive_int,
            default=4,
            help="messages sent at the same time, each in its own thread (4)",
        )
        parser.add_argument(
            "--interval", type=float, default=1.0, help="seconds between polls when idle (1)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["interval"] <= 0:
            raise CommandError("--interval must be a positive number of seconds.")
        verbose = options["verbosity"] >= 2
        worker = Worker(
            batch=options["batch"],
            concurrency=options["concurrency"],
            interval=options["interval"],
            on_result=self._report if verbose else None,
        )
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: worker.stop())
        if not options["once"]:
            self.stdout.write(
                f"txmail worker: concurrency {worker.concurrency}, batch {worker.batch}. "
                "Stop with Ctrl-C."
            )
        stats = worker.run(once=options["once"])
        self.stdout.write(
            f"Delivered {stats.sent}, retrying {stats.retrying}, failed {stats.failed}"
            + (f", released {stats.released}" if stats.released else "")
            + "."
        )

    def _report(self, message: Message, outcome: str) -> None:
        self.stdout.write(f"{message.pk} {outcome}")
