"""``manage.py txmail_sandbox``: run the local provider sandbox.

Point an account's ``API_URI`` at the URL it prints and mail goes to the
sandbox instead of the provider. By default it accepts the ``API_KEY`` of
every ``TXMAIL["PROVIDERS"]`` account whose ``ADAPTER`` is ``"nylas"``, so
the project's own settings work unchanged. Keys are never printed.

``--fault-rate`` (with ``--fault-seed``, ``--fault-kinds``, ``--retry-after``,
``--hang``, ``--slow``) makes a reproducible share of sends fail, for trying
delivery under provider trouble; see ``django_txmail/sandbox/fault_plan.py``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_txmail.sandbox import SandboxServer
from django_txmail.sandbox.console import (
    add_fault_arguments,
    describe_faults,
    fault_plan_from_options,
    line_writer,
    serve_until_signalled,
)


class Command(BaseCommand):
    help = (
        "Run the local provider sandbox (Nylas v3 send endpoints) until interrupted, "
        "printing one line per request."
    )
    # The sandbox does not use the app's models or settings beyond API keys,
    # so it starts even while the project is misconfigured.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument("--port", type=int, default=8025, help="port to listen on (0: any)")
        parser.add_argument(
            "--api-key",
            action="append",
            dest="api_keys",
            metavar="KEY",
            help="a Nylas API key to accept (repeatable); default: the API_KEY of every "
            "TXMAIL['PROVIDERS'] account with ADAPTER 'nylas'",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0, help="seconds added to every send"
        )
        parser.add_argument("--quiet", action="store_true", help="no line per request")
        add_fault_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["latency"] < 0:
            raise CommandError("--latency must be >= 0 seconds.")
        try:
            plan = fault_plan_from_options(options)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        api_keys = options["api_keys"] or nylas_api_keys_from_settings()
        if not api_keys:
            raise CommandError(
                "No Nylas API key to accept: pass --api-key KEY, or set API_KEY on a "
                "TXMAIL['PROVIDERS'] account whose ADAPTER is 'nylas'."
            )
        server = SandboxServer(
            options["host"],
            options["port"],
            nylas_api_keys=api_keys,
            latency=options["latency"],
            faults=plan,
            on_request=None if options["quiet"] else line_writer(self._write_line),
        )
        try:
            server.start()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}"
            ) from exc
        count = len(set(api_keys))
        self._write_line(
            f"Sandbox listening on {server.url} (Nylas: {count} API key{'s' * (count != 1)}; "
            f"{describe_faults(plan)}). Stop with Ctrl-C."
        )
        serve_until_signalled(server)
        self._write_line("Sandbox stopped.")

    def _write_line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()


def nylas_api_keys_from_settings() -> list[str]:
    providers = getattr(settings, "TXMAIL", {}).get("PROVIDERS", {})
    return [
        account["API_KEY"]
        for account in providers.values()
        if account.get("ADAPTER") == "nylas" and account.get("API_KEY")
    ]
