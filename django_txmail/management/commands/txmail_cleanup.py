"""``manage.py txmail_cleanup --older-than 90d``: delete old messages and what belongs to them.

Deletes messages created before the cut-off with their attempts, delivery
events and attachment files, in batches, plus delivery events older than
the cut-off that never matched a message. Messages still to be sent
(queued, scheduled, sending) are kept whatever their age. ``--dry-run``
only counts. Safe to run from cron.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from django_txmail.outbox.cleanup import CleanupReport, cleanup, parse_age, preview


class Command(BaseCommand):
    help = "Delete messages (with their attempts, events and files) older than an age."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="age of what is deleted: days or hours, such as 90d or 36h",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="messages deleted per transaction (500)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would be deleted, delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_age(options["older_than"])
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from None
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be a whole number of at least 1.")
        cutoff = timezone.now() - age
        when = cutoff.strftime("%Y-%m-%d %H:%M %Z")
        if options["dry_run"]:
            report = preview(cutoff)
            self.stdout.write(f"Dry run: nothing deleted. Created before {when}:")
            self.stdout.write(self._counts(report, "would be deleted"))
        else:
            progress = self._progress if options["verbosity"] >= 2 else None
            report = cleanup(cutoff, batch_size=options["batch_size"], on_batch=progress)
            self.stdout.write(f"Created before {when}:")
            self.stdout.write(self._counts(report, "deleted"))
            if report.files_failed:
                self.stderr.write(
                    f"{report.files_failed} attachment file(s) could not be deleted from "
                    "storage (see the log); their messages are gone, the files are orphans."
                )
        if report.kept_unsent:
            self.stdout.write(
                f"Kept {report.kept_unsent} older message(s) still to be sent (queued, "
                "scheduled or sending): deleting them would drop mail that is on its way. "
                "Cancel them in the admin if they should not go; they are removed by a later "
                "clean-up once done."
            )

    @staticmethod
    def _counts(report: CleanupReport, verb: str) -> str:
        return (
            f"  {report.messages} message(s) {verb}, with {report.attempts} attempt(s), "
            f"{report.events} delivery event(s) and {report.attachment_files} attachment "
            f"file(s);\n  {report.unattached_events} delivery event(s) that matched no "
            f"message {verb}."
        )

    def _progress(self, report: CleanupReport) -> None:
        self.stdout.write(
            f"... {report.messages} message(s), {report.unattached_events} unattached event(s)"
        )
