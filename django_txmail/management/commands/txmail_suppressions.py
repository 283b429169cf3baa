"""``manage.py txmail_suppressions``: the suppression list from the command line.

::

    manage.py txmail_suppressions list [--stream broadcast] [--reason hard_bounce]
    manage.py txmail_suppressions add ann@example.com [--stream broadcast] [--note "asked by phone"]
    manage.py txmail_suppressions remove ann@example.com [--stream broadcast]
    manage.py txmail_suppressions export [suppressions.csv]
    manage.py txmail_suppressions import suppressions.csv [--skip-bad]
    manage.py txmail_suppressions sync mailtrap

CSV files have the columns ``address,stream,reason,note`` (a header line
first; ``stream`` blank means every stream, ``reason`` blank means manual).
An import checks every row first: any bad row is reported with its line
number and nothing is imported, unless ``--skip-bad`` imports the good ones.
``remove`` also removes the address from the provider's own list where it
came from one (``tracking/provider_lists.lift``); ``sync`` imports an
account's list from its provider (Mailtrap) and can be run again safely.
"""

from __future__ import annotations

import csv
import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import router, transaction

from django_txmail import suppressions
from django_txmail.conf import SUPPRESSION_REASONS, get_settings
from django_txmail.exceptions import InvalidMessage, TxMailError
from django_txmail.models import Suppression
from django_txmail.tracking.provider_lists import lift, sync

COLUMNS = ("address", "stream", "reason", "note")


class Command(BaseCommand):
    help = "List, add, remove, import, export or sync the suppression list."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        listing = commands.add_parser("list", help="print the entries")
        listing.add_argument("--stream", help="only this stream ('' for every-stream entries)")
        listing.add_argument("--reason", choices=SUPPRESSION_REASONS)
        add = commands.add_parser("add", help="suppress addresses")
        add.add_argument("addresses", nargs="+", metavar="ADDRESS")
        add.add_argument("--stream", default="", help="a stream (default: every stream)")
        add.add_argument("--reason", choices=SUPPRESSION_REASONS, default="manual")
        add.add_argument("--note", default="")
        remove = commands.add_parser("remove", help="lift suppressions (here and at the provider)")
        remove.add_argument("addresses", nargs="+", metavar="ADDRESS")
        remove.add_argument("--stream", help="only this stream's entry (default: every entry)")
        export = commands.add_parser("export", help="write the list as CSV")
        export.add_argument("file", nargs="?", help="default: standard output")
        imports = commands.add_parser("import", help="read entries from CSV")
        imports.add_argument("file")
        imports.add_argument(
            "--skip-bad", action="store_true", help="import the good rows when some are bad"
        )
        syncing = commands.add_parser("sync", help="import a provider account's own list")
        syncing.add_argument("account", help="a TXMAIL['PROVIDERS'] account (Mailtrap)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(options)
        except (ImproperlyConfigured, TxMailError) as exc:
            raise CommandError(str(exc)) from None

    def _list(self, options: dict[str, Any]) -> None:
        entries = Suppression.objects.order_by("address", "stream")
        if options["stream"] is not None:
            entries = entries.filter(stream=options["stream"])
        if options["reason"]:
            entries = entries.filter(reason=options["reason"])
        for entry in entries.iterator():
            created = entry.created_at.isoformat(timespec="seconds")
            stream = entry.stream or "*"
            self.stdout.write(f"{entry.address}\t{stream}\t{entry.reason}\t{created}\t{entry.note}")

    def _add(self, options: dict[str, Any]) -> None:
        for address in options["addresses"]:
            entry, created = suppressions.suppress(
                address, stream=options["stream"], reason=options["reason"], note=options["note"]
            )
            self.stdout.write(f"{'added' if created else 'already suppressed'}: {entry}")

    def _remove(self, options: dict[str, Any]) -> None:
        for address in options["addresses"]:
            entries = Suppression.objects.filter(address=suppressions.normalize(address))
            if options["stream"] is not None:
                entries = entries.filter(stream=options["stream"])
            if not entries:
                self.stdout.write(f"not suppressed: {address}")
            for entry in entries:
                at_provider = lift(entry)
                also = f" (and {at_provider} at the provider)" if at_provider else ""
                self.stdout.write(f"removed: {entry}{also}")

    def _export(self, options: dict[str, Any]) -> None:
        out = open(options["file"], "w", newline="") if options["file"] else sys.stdout  # noqa: SIM115
        try:
            writer = csv.writer(out)
            writer.writerow(COLUMNS)
            for entry in Suppression.objects.order_by("address", "stream").iterator():
                writer.writerow([entry.address, entry.stream, entry.reason, entry.note])
        finally:
            if out is not sys.stdout:
                out.close()

    def _import(self, options: dict[str, Any]) -> None:
        try:
            with open(options["file"], newline="", encoding="utf-8") as source:
                rows, bad = read_csv(source)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc}") from None
        for line, problem in bad:
            self.stderr.write(f"line {line}: {problem}")
        if bad and not options["skip_bad"]:
            raise CommandError(
                f"{len(bad)} bad row(s); nothing was imported. Fix them, or pass --skip-bad "
                "to import the others."
            )
        with transaction.atomic(using=router.db_for_write(Suppression)):
            before = Suppression.objects.count()
            Suppression.objects.bulk_create(rows, ignore_conflicts=True)
            added = Suppression.objects.count() - before
        self.stdout.write(
            f"Imported {added} new entr{'y' if added == 1 else 'ies'} "
            f"({len(rows) - added} already suppressed"
            + (f", {len(bad)} bad row(s) skipped" if bad else "")
            + ")."
        )

    def _sync(self, options: dict[str, Any]) -> None:
        result = sync(options["account"])
        self.stdout.write(
            f"{options['account']}: {result.listed} listed, {result.added} added, "
            f"{result.linked} linked to entries we had, {result.skipped} skipped."
        )


def read_csv(source) -> tuple[list[Suppression], list[tuple[int, str]]]:
    """The entries of a CSV file, and (line, problem) for each bad row."""
    streams = get_settings().streams
    reader = csv.DictReader(source)
    if reader.fieldnames is None or "address" not in reader.fieldnames:
        return [], [(1, f"the first line must name the columns: {','.join(COLUMNS)}")]
    rows: dict[tuple[str, str], Suppression] = {}
    bad: list[tuple[int, str]] = []
    for record in reader:
        line = reader.line_num
        try:
            address = suppressions.normalize(record.get("address") or "")
        except InvalidMessage as exc:
            bad.append((line, str(exc)))
            continue
        stream = (record.get("stream") or "").strip()
        reason = (record.get("reason") or "").strip() or "manual"
        if stream and stream not in streams:
            bad.append((line, f"stream {stream!r} is not in TXMAIL['STREAMS']"))
        elif reason not in SUPPRESSION_REASONS:
            bad.append((line, f"reason {reason!r} is not one of {', '.join(SUPPRESSION_REASONS)}"))
        else:
            rows.setdefault(
                (address, stream),
                Suppression(
                    address=address,
                    stream=stream,
                    reason=reason,
                    note=(record.get("note") or "").strip(),
                ),
            )
    return list(rows.values()), bad
