"""``python -m txmail_sandbox``: the sandbox without Django (for
benchmarks and non-Django tools). ``manage.py txmail_sandbox`` is the same
with API keys read from ``settings.TXMAIL``."""

from __future__ import annotations

import argparse

from .console import (
    add_fault_arguments,
    describe_faults,
    fault_plan_from_options,
    line_writer,
    serve_until_signalled,
)
from .server import (
    DEFAULT_MAILERLOGIC_API_KEY,
    DEFAULT_MAILTRAP_API_TOKEN,
    DEFAULT_NYLAS_API_KEY,
    SandboxServer,
)
from .webhook_console import (
    add_webhook_arguments,
    describe_webhooks,
    webhook_options_from_options,
    webhook_targets_from_options,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m txmail_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"a Nylas API key to accept (repeatable; default {DEFAULT_NYLAS_API_KEY!r})",
    )
    parser.add_argument(
        "--mailtrap-token",
        action="append",
        dest="mailtrap_tokens",
        help=f"a Mailtrap API token to accept (repeatable; default {DEFAULT_MAILTRAP_API_TOKEN!r})",
    )
    parser.add_argument(
        "--mailerlogic-key",
        action="append",
        dest="mailerlogic_keys",
        help="a MailerLogic API key to accept (repeatable; default "
        f"{DEFAULT_MAILERLOGIC_API_KEY!r})",
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each send")
    parser.add_argument("--quiet", action="store_true", help="no line per request")
    add_fault_arguments(parser)
    add_webhook_arguments(parser)
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    try:
        plan = fault_plan_from_options(vars(args))
        webhook_options = webhook_options_from_options(vars(args))
        webhooks = webhook_targets_from_options(vars(args), lambda provider: None)
        server = SandboxServer(
            args.host,
            args.port,
            nylas_api_keys=args.api_keys or [DEFAULT_NYLAS_API_KEY],
            mailtrap_api_tokens=args.mailtrap_tokens or [DEFAULT_MAILTRAP_API_TOKEN],
            mailerlogic_api_keys=args.mailerlogic_keys or [DEFAULT_MAILERLOGIC_API_KEY],
            latency=args.latency,
            faults=plan,
            on_request=None if args.quiet else line_writer(lambda line: print(line, flush=True)),
            webhooks=webhooks,
            webhook_options=webhook_options,
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        server.start()
    except OSError as exc:
        parser.exit(1, f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}\n")
    ready = (
        f"Sandbox listening on {server.url} ({describe_faults(plan)}; "
        f"{describe_webhooks(webhooks, webhook_options)}); Ctrl-C to stop."
    )
    serve_until_signalled(server, on_ready=lambda: print(ready, flush=True))


if __name__ == "__main__":
    main()
