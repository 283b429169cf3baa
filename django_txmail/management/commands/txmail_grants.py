"""``manage.py txmail_grants``: ask the provider for each connected mailbox's status.

For projects without grant webhooks (or to catch up after an outage): each
active grant is read back (``GET /v3/grants/{id}``) and its status set from
the answer, with the same effects as a webhook — ``grant_status_changed``,
and mail held for a grant that is valid again made due. ``--email`` limits
it to some addresses. Safe to run from cron.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_txmail.exceptions import ProviderAPIError
from django_txmail.grants import refresh
from django_txmail.models import Grant


class Command(BaseCommand):
    help = "Check every connected mailbox's grant at its provider and record its status."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", nargs="*", default=[], help="only these addresses")

    def handle(self, *args: Any, **options: Any) -> None:
        found = Grant.objects.filter(is_active=True).exclude(status=Grant.Status.REVOKED)
        if options["email"]:
            found = found.filter(email__in=[e.strip().lower() for e in options["email"]])
        try:
            report = refresh(found)
        except (ProviderAPIError, ValueError) as exc:
            raise CommandError(f"Checking grants stopped: {exc}") from None
        for grant, before, after in report:
            change = f"{before} -> {after}" if before != after else after
            self.stdout.write(f"{grant.email} ({grant.provider}): {change}")
        if not report:
            self.stdout.write("No connected mailbox to check.")
