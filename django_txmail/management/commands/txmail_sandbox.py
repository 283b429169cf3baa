"""``manage.py txmail_sandbox``: run the local provider sandbox.

Point an account's ``API_URI`` at the URL it prints and mail goes to the
sandbox instead of the provider. By default it accepts the credentials of
the project's own ``TXMAIL["PROVIDERS"]`` accounts — the ``API_KEY`` of
every ``"nylas"`` and ``"mailerlogic"`` account, the ``API_TOKEN`` of every
``"mailtrap"`` one — so its settings work unchanged; ``--api-key``,
``--mailtrap-token`` and ``--mailerlogic-key`` replace them per provider.
Keys are never printed.

``--fault-rate`` (with ``--fault-seed``, ``--fault-kinds``, ``--retry-after``,
``--hang``, ``--slow``) makes a reproducible share of sends fail, for trying
delivery under provider trouble, and ``--outage-rate`` (with
``--outage-requests``) plans outages of several requests in a row; see
``txmail_sandbox/fault_plan.py`` in the sandbox distribution.

``--webhook-url PROVIDER=URL`` (``nylas``, ``mailtrap``, ``mailerlogic``)
posts delivery notifications for the messages it accepts back to the app
(outcomes by recipient address, see ``txmail_sandbox/mailbox_simulator.py``),
signed with ``--webhook-secret PROVIDER=SECRET`` or else the
``WEBHOOK_SECRET`` of the project's account at that provider;
``--webhook-delay``, ``--webhook-retry-delay``, ``--webhook-duplicates``,
``--webhook-reorder`` and ``--webhook-seed`` shape their delivery. See
``docs/webhooks.md``.

The sandbox is its own distribution, ``django-txmail-sandbox`` (the extra
``django-txmail[sandbox]``); where it is not installed the command says how
to install it.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_txmail.conf import BUILTIN_ADAPTERS

SANDBOX_MISSING = (
    "The sandbox is not installed. It is a separate distribution: "
    'pip install django-txmail-sandbox (or pip install "django-txmail[sandbox]"); '
    "in a checkout of django-txmail, pip install -e ./sandbox."
)


def import_sandbox() -> tuple[ModuleType, ModuleType, ModuleType]:
    """The sandbox package and its command-line helpers.

    Imported here rather than at the top of the module, so that listing the
    commands (``manage.py help``) works where the sandbox is not installed.
    """
    try:
        import txmail_sandbox
        from txmail_sandbox import console, webhook_console
    except ModuleNotFoundError as exc:
        if exc.name != "txmail_sandbox":
            raise
        raise CommandError(SANDBOX_MISSING) from None
    return txmail_sandbox, console, webhook_console


class Command(BaseCommand):
    help = (
        "Run the local provider sandbox (Nylas, Mailtrap and MailerLogic send endpoints) "
        "until interrupted, "
        "printing one line per request."
    )
    # The sandbox does not use the app's models or settings beyond API keys,
    # so it starts even while the project is misconfigured.
    requires_system_checks: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        # Django reports a CommandError briefly only once the options are parsed,
        # and the sandbox's own options (--fault-rate, ...) need the sandbox.
        try:
            import_sandbox()
        except CommandError as exc:
            self.stderr.write(f"CommandError: {exc}")
            sys.exit(exc.returncode)
        super().run_from_argv(argv)

    def add_arguments(self, parser: CommandParser) -> None:
        _, console, webhook_console = import_sandbox()
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
            "--mailtrap-token",
            action="append",
            dest="mailtrap_tokens",
            metavar="TOKEN",
            help="a Mailtrap API token to accept (repeatable); default: the API_TOKEN of every "
            "account with ADAPTER 'mailtrap'",
        )
        parser.add_argument(
            "--mailerlogic-key",
            action="append",
            dest="mailerlogic_keys",
            metavar="KEY",
            help="a MailerLogic API key to accept (repeatable); default: the API_KEY of every "
            "account with ADAPTER 'mailerlogic'",
        )
        parser.add_argument(
            "--latency", type=float, default=0.0, help="seconds added to every send"
        )
        parser.add_argument("--quiet", action="store_true", help="no line per request")
        console.add_fault_arguments(parser)
        webhook_console.add_webhook_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        sandbox, console, webhook_console = import_sandbox()
        if options["latency"] < 0:
            raise CommandError("--latency must be >= 0 seconds.")
        try:
            plan = console.fault_plan_from_options(options)
            webhook_options = webhook_console.webhook_options_from_options(options)
            webhooks = webhook_console.webhook_targets_from_options(
                options, webhook_secret_from_settings
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        api_keys = options["api_keys"] or credentials_from_settings("nylas", "API_KEY")
        mailtrap_tokens = options["mailtrap_tokens"] or credentials_from_settings(
            "mailtrap", "API_TOKEN"
        )
        mailerlogic_keys = options["mailerlogic_keys"] or credentials_from_settings(
            "mailerlogic", "API_KEY"
        )
        if not (api_keys or mailtrap_tokens or mailerlogic_keys):
            raise CommandError(
                "No API key to accept: pass --api-key KEY (Nylas), --mailtrap-token TOKEN or "
                "--mailerlogic-key KEY, or set API_KEY (API_TOKEN for Mailtrap) on the "
                "TXMAIL['PROVIDERS'] accounts whose ADAPTER is 'nylas', 'mailtrap' or "
                "'mailerlogic'."
            )
        try:
            server = sandbox.SandboxServer(
                options["host"],
                options["port"],
                nylas_api_keys=api_keys,
                mailtrap_api_tokens=mailtrap_tokens,
                mailerlogic_api_keys=mailerlogic_keys,
                latency=options["latency"],
                faults=plan,
                on_request=None if options["quiet"] else console.line_writer(self._write_line),
                webhooks=webhooks,
                webhook_options=webhook_options,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            server.start()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc.strerror or exc}"
            ) from exc
        accepted = "; ".join(
            f"{provider}: {_count(keys, noun)}"
            for provider, keys, noun in (
                ("Nylas", api_keys, "API key"),
                ("Mailtrap", mailtrap_tokens, "API token"),
                ("MailerLogic", mailerlogic_keys, "API key"),
            )
        )
        ready = (
            f"Sandbox listening on {server.url} ({accepted}; "
            f"{console.describe_faults(plan)}; "
            f"{webhook_console.describe_webhooks(webhooks, webhook_options)}). "
            "Stop with Ctrl-C."
        )
        console.serve_until_signalled(server, on_ready=lambda: self._write_line(ready))
        self._write_line("Sandbox stopped.")

    def _write_line(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()


def credentials_from_settings(adapter: str, key: str) -> list[str]:
    """``key`` of every ``TXMAIL["PROVIDERS"]`` account using the built-in ``adapter``."""
    providers = getattr(settings, "TXMAIL", {}).get("PROVIDERS", {})
    names = {adapter, BUILTIN_ADAPTERS[adapter]}
    return [
        str(account[key])
        for account in providers.values()
        if account.get("ADAPTER") in names and account.get(key)
    ]


def _count(keys: list[str], noun: str) -> str:
    count = len(set(keys))
    return f"{count or 'no'} {noun}{'s' * (count != 1)}"


def webhook_secret_from_settings(provider: str) -> str | None:
    """The ``WEBHOOK_SECRET`` of the project's accounts at ``provider``, if
    they agree on one (each account's endpoint checks its own secret)."""
    providers = getattr(settings, "TXMAIL", {}).get("PROVIDERS", {})
    found = {
        account["WEBHOOK_SECRET"]
        for account in providers.values()
        if account.get("ADAPTER") == provider and account.get("WEBHOOK_SECRET")
    }
    if len(found) > 1:
        raise ValueError(
            f"Several TXMAIL['PROVIDERS'] accounts at {provider!r} have different "
            f"WEBHOOK_SECRETs; pass --webhook-secret {provider}=SECRET for the one "
            "the --webhook-url points at."
        )
    return found.pop() if found else None
