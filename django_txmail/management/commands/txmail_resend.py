"""``manage.py txmail_resend``: send chosen messages again, each as a new message.

Choose messages with ``--id`` (repeatable), ``--status``, ``--since`` /
``--until``, ``--to``, ``--domain`` and ``--template`` (all given must
match). Without any of them nothing is chosen: the command refuses rather
than resend the whole outbox. ``--dry-run`` lists the selection; otherwise
the command asks first (``--yes`` skips the question; without a terminal it
refuses unless ``--yes``). A message already resent, or cancelled, is
skipped unless ``--force``; one not sent yet (queued, scheduled, sending)
always is.
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from django_txmail.exceptions import CannotResend
from django_txmail.models import Message
from django_txmail.outbox.resend import resend, with_first_resend
from django_txmail.outbox.states import NOT_SENT_YET
from django_txmail.sending.attempt import Sender


def _moment(value: str, option: str, *, end_of_day: bool) -> datetime:
    """A date (whole day) or date-time from the command line, in the current time zone.

    A bare date is read as a date first: ``parse_datetime`` accepts one too
    (as its midnight), which would make ``--until`` stop at the start of the day.
    """
    try:
        day = parse_date(value)
        moment = None if day else parse_datetime(value)
    except ValueError:
        moment = day = None
    if day is not None:
        moment = datetime.combine(day + timedelta(days=end_of_day), time())
    if moment is None:
        raise CommandError(
            f"{option} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+HH:MM]."
        )
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _recipient_is(address: str) -> Q:
    """Messages with ``address`` among To, Cc and Bcc (one address per line in the column)."""
    address = address.strip().lower()
    return (
        Q(recipient_emails=address)
        | Q(recipient_emails__startswith=f"{address}\n")
        | Q(recipient_emails__endswith=f"\n{address}")
        | Q(recipient_emails__contains=f"\n{address}\n")
    )


class Command(BaseCommand):
    help = "Resend chosen messages, each as a new message with a new idempotency key."

    def add_arguments(self, parser: CommandParser) -> None:
        select = parser.add_argument_group("choosing messages (all given must match)")
        select.add_argument(
            "--id", action="append", default=[], dest="ids", help="a message's id (repeatable)"
        )
        select.add_argument(
            "--status",
            action="append",
            default=[],
            choices=Message.Status.values,
            help="a status (repeatable: any of them)",
        )
        select.add_argument("--since", help="created at or after: YYYY-MM-DD or a date-time")
        select.add_argument("--until", help="created before the end of this day, or this time")
        select.add_argument("--to", help="a recipient address (To, Cc or Bcc)")
        select.add_argument("--domain", help="the sending domain (domain route)")
        select.add_argument("--template", help="the slug of the stored template it came from")
        parser.add_argument("--dry-run", action="store_true", help="list what would be resent")
        parser.add_argument("--yes", action="store_true", help="do not ask before resending")
        parser.add_argument(
            "--force",
            action="store_true",
            help="also resend messages already resent, and cancelled ones",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        selection = self._select(options)
        rows = list(
            with_first_resend(
                selection.only("pk", "created_at", "status", "subject", "to", "cc", "bcc")
            ).order_by("created_at")
        )
        if not rows:
            self.stdout.write("No message matches; nothing to resend.")
            return
        todo, skipped = [], Counter()
        for row in rows:
            if row.status in NOT_SENT_YET:
                skipped["not sent yet"] += 1
            elif row.status == Message.Status.CANCELLED and not options["force"]:
                skipped["cancelled (use --force to send them after all)"] += 1
            elif row.first_resend and not options["force"]:
                skipped["already resent (use --force to send another copy)"] += 1
            else:
                todo.append(row)
        if options["dry_run"]:
            going = {row.pk for row in todo}
            for row in rows:
                mark = "resend" if row.pk in going else "skip"
                self.stdout.write(
                    f"{mark:6} {row.pk}  {row.created_at:%Y-%m-%d %H:%M}  {row.status:10}  "
                    f"{row.recipient_summary}  {row.subject[:60]}"
                )
            self.stdout.write(
                f"Dry run: would resend {len(todo)} of {len(rows)} message(s)"
                + self._skips(skipped)
                + "."
            )
            return
        if not todo:
            self.stdout.write("Nothing to resend" + self._skips(skipped) + ".")
            return
        self._confirm(len(todo), options["yes"])
        outcomes: Counter = Counter()
        sender = Sender(pool_size=4)
        try:
            for done, row in enumerate(todo, 1):
                try:
                    copy = resend(row, force=options["force"], sender=sender)
                except CannotResend as exc:
                    self.stderr.write(f"\nSkipped: {exc}")
                    skipped["refused"] += 1
                else:
                    outcomes[copy.status] += 1
                    if options["verbosity"] >= 2:
                        self.stdout.write(f"{row.pk} -> {copy.pk} {copy.status}")
                self._progress(done, len(todo))
        finally:
            sender.close()
        parts = ", ".join(f"{count} {status}" for status, count in sorted(outcomes.items()))
        self.stdout.write(
            f"Resent {sum(outcomes.values())} message(s)"
            + (f" ({parts})" if parts else "")
            + self._skips(skipped)
            + "."
        )
        if outcomes.get(Message.Status.FAILED):
            self.stdout.write(
                "Failed resends keep their error in the admin (Messages, status failed)."
            )

    def _select(self, options: dict[str, Any]) -> QuerySet[Message]:
        chosen = [options[k] for k in ("ids", "status", "since", "until", "to", "domain")]
        if not any(chosen) and not options["template"]:
            raise CommandError(
                "Choose messages with --id, --status, --since/--until, --to, --domain or "
                "--template; the command will not resend every message."
            )
        selection = Message.objects.all()
        if options["ids"]:
            ids = set()
            for value in options["ids"]:
                try:
                    ids.add(uuid.UUID(value))
                except ValueError:
                    raise CommandError(f"--id {value!r} is not a message id (a UUID).") from None
            found = set(Message.objects.filter(pk__in=ids).values_list("pk", flat=True))
            if missing := ids - found:
                raise CommandError(
                    "No message with id " + ", ".join(sorted(map(str, missing))) + "."
                )
            selection = selection.filter(pk__in=ids)
        if options["status"]:
            selection = selection.filter(status__in=options["status"])
        since = options["since"] and _moment(options["since"], "--since", end_of_day=False)
        until = options["until"] and _moment(options["until"], "--until", end_of_day=True)
        if since and until and since >= until:
            raise CommandError("--since must come before --until.")
        if since:
            selection = selection.filter(created_at__gte=since)
        if until:
            selection = selection.filter(created_at__lt=until)
        if options["to"]:
            selection = selection.filter(_recipient_is(options["to"]))
        if options["domain"]:
            selection = selection.filter(route_domain=options["domain"].strip().lower())
        if options["template"]:
            selection = selection.filter(template=options["template"])
        return selection

    def _confirm(self, count: int, yes: bool) -> None:
        if yes:
            return
        if not sys.stdin.isatty():
            raise CommandError(
                f"Not resending {count} message(s) without confirmation, and there is no "
                "terminal to ask on. Check the selection with --dry-run, then add --yes."
            )
        answer = input(f"Resend {count} message(s) to their recipients now? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("Cancelled; nothing was resent.")

    def _progress(self, done: int, total: int) -> None:
        """A bar on a terminal; a line every tenth of the way (and at the end) otherwise."""
        if self.stderr.isatty():
            width = 30
            filled = width * done // total
            self.stderr.write(
                f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}",
                ending="\n" if done == total else "",
            )
            self.stderr.flush()
        elif total >= 10 and (done == total or done % max(1, total // 10) == 0):
            self.stderr.write(f"resent {done}/{total}")

    @staticmethod
    def _skips(skipped: Counter) -> str:
        return "".join(f"; skipped {count} {why}" for why, count in skipped.items())
