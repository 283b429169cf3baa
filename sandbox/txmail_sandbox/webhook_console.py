"""The command-line options of webhook emission, shared by ``manage.py
txmail_sandbox`` and ``python -m txmail_sandbox`` (see ``console.py``
for the others), so both take the same flags and say the same things.

``--webhook-url PROVIDER=URL`` (repeatable) posts that provider's delivery
notifications to the app, signed with ``--webhook-secret PROVIDER=SECRET``;
the Django command defaults the secret to the provider account's
``WEBHOOK_SECRET``. The rest shape the delivery (``webhook_emitter.py``).
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Mapping
from typing import Any

from .webhook_values import WebhookOptions

_DEFAULTS = WebhookOptions()


def add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("webhooks (delivery notifications posted to the app)")
    group.add_argument(
        "--webhook-url",
        action="append",
        dest="webhook_urls",
        metavar="PROVIDER=URL",
        help="post PROVIDER's (nylas, mailtrap or mailerlogic) notifications to URL, e.g. "
        "nylas=http://127.0.0.1:8000/txmail/webhooks/nylas/ (repeatable)",
    )
    group.add_argument(
        "--webhook-secret",
        action="append",
        dest="webhook_secrets",
        metavar="PROVIDER=SECRET",
        help="the secret PROVIDER's notifications are signed with (repeatable)",
    )
    group.add_argument(
        "--webhook-delay",
        type=float,
        metavar="SECONDS",
        help=f"wait before posting a notification (default {_DEFAULTS.delay:g})",
    )
    group.add_argument(
        "--webhook-retry-delay",
        type=float,
        metavar="SECONDS",
        help="wait before the first retry of a post the app did not answer with 2xx, doubling "
        f"for each further one; {_DEFAULTS.max_attempts} attempts in all "
        f"(default {_DEFAULTS.retry_delay:g})",
    )
    group.add_argument(
        "--webhook-duplicates",
        type=float,
        metavar="RATE",
        help="share of notifications posted twice with the same id, 0 to 1 (default 0)",
    )
    group.add_argument(
        "--webhook-reorder",
        action="store_true",
        help=f"shuffle notifications within {_DEFAULTS.reorder_window:g} s",
    )
    group.add_argument(
        "--webhook-seed",
        type=int,
        metavar="N",
        help=f"seed of the duplicate and reorder decisions (default {_DEFAULTS.seed})",
    )


def webhook_options_from_options(options: Mapping[str, Any]) -> WebhookOptions:
    """The :class:`WebhookOptions` asked for; ValueError names the bad flag."""
    settings: dict[str, Any] = {"reorder": bool(options.get("webhook_reorder"))}
    delay = options.get("webhook_delay")
    if delay is not None:
        if not (math.isfinite(delay) and delay >= 0):
            raise ValueError(f"--webhook-delay must be a number of seconds >= 0, not {delay:g}.")
        settings["delay"] = delay
    retry_delay = options.get("webhook_retry_delay")
    if retry_delay is not None:
        if not (math.isfinite(retry_delay) and retry_delay >= 0):
            raise ValueError(
                f"--webhook-retry-delay must be a number of seconds >= 0, not {retry_delay:g}."
            )
        settings["retry_delay"] = retry_delay
    rate = options.get("webhook_duplicates")
    if rate is not None:
        if not 0 <= rate <= 1:
            raise ValueError(f"--webhook-duplicates must be between 0 and 1, not {rate:g}.")
        settings["duplicates"] = rate
    if options.get("webhook_seed") is not None:
        settings["seed"] = options["webhook_seed"]
    return WebhookOptions(**settings)


def webhook_targets_from_options(
    options: Mapping[str, Any], default_secret: Callable[[str], str | None]
) -> dict[str, tuple[str, str]]:
    """``{provider: (url, secret)}`` from the flags; ``default_secret(provider)``
    gives the secret of a provider without ``--webhook-secret`` (it may raise
    ValueError to explain why there is none)."""
    urls = _pairs(options.get("webhook_urls"), "--webhook-url", "URL")
    secrets = _pairs(options.get("webhook_secrets"), "--webhook-secret", "SECRET")
    stray = sorted(set(secrets) - set(urls))
    if stray:
        raise ValueError(f"--webhook-secret for {', '.join(stray)} has no --webhook-url.")
    targets = {}
    for provider, url in urls.items():
        secret = secrets.get(provider) or default_secret(provider)
        if not secret:
            raise ValueError(
                f"--webhook-url {provider}=... needs a secret: pass "
                f"--webhook-secret {provider}=SECRET (the app's WEBHOOK_SECRET)."
            )
        targets[provider] = (url, secret)
    return targets


def describe_webhooks(targets: Mapping[str, tuple[str, str]], options: WebhookOptions) -> str:
    """One line for the startup message; no secrets."""
    if not targets:
        return "webhooks: none configured (POST /v3/webhooks registers one)"
    where = ", ".join(f"{provider} → {url}" for provider, (url, _) in targets.items())
    return f"webhooks: {where} ({options.describe()})"


def _pairs(values: list[str] | None, flag: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        provider, equals, rest = value.partition("=")
        if not equals or not provider.strip() or not rest.strip():
            raise ValueError(f"{flag} takes PROVIDER={what}, not {value!r}.")
        if provider.strip() in pairs:
            raise ValueError(f"{flag} is given twice for {provider.strip()!r}.")
        pairs[provider.strip()] = rest.strip()
    return pairs
