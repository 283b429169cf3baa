"""``manage.py txmail_register_webhooks``: tell providers where to post delivery events.

For each named account (default: every ``TXMAIL["PROVIDERS"]`` account) whose
provider's API can register webhooks (Nylas ``POST /v3/webhooks``), it
registers the app's endpoint for every event type the adapter reads::

    manage.py txmail_register_webhooks --base-url https://app.example
    manage.py txmail_register_webhooks nylas --url https://app.example/txmail/webhooks/nylas/

The provider answers with the webhook's signing secret, once: the command
prints it, with the setting it goes into. It is a credential, so it goes
where credentials go: the account's ``WEBHOOK_SECRET``, read from the
environment; the command stores it nowhere else. A webhook already
registered for the same URL is left alone, with a message: its secret cannot
be shown again, so ``--replace`` deletes it and registers a new one with a
new secret. Accounts whose provider has no such API are listed with the
advice to register the URL in the provider's dashboard.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import NoReverseMatch, reverse

from django_txmail.conf import ProviderAccount, get_settings
from django_txmail.exceptions import ProviderAPIError, TxMailError, UnsupportedFeature
from django_txmail.providers import load_adapter
from django_txmail.sending.transport import Transport


class Command(BaseCommand):
    help = (
        "Register the app's webhook endpoint at each provider whose API allows it, and say "
        "where its signing secret goes."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "accounts",
            nargs="*",
            metavar="ACCOUNT",
            help="TXMAIL['PROVIDERS'] accounts to register (default: all)",
        )
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument(
            "--base-url",
            metavar="URL",
            help="the app's public origin, e.g. https://app.example; each account's endpoint "
            "is this plus its webhook path (reverse('txmail:webhook', args=[account]))",
        )
        where.add_argument(
            "--url",
            metavar="URL",
            help="the full endpoint URL, for a single ACCOUNT",
        )
        parser.add_argument(
            "--replace",
            action="store_true",
            help="delete a webhook already registered for the same URL and register a new "
            "one, with a new signing secret",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            settings = get_settings()
            accounts = [settings.account(name) for name in options["accounts"]]
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        accounts = accounts or list(settings.providers.values())
        if not accounts:
            raise CommandError("TXMAIL['PROVIDERS'] has no accounts to register webhooks for.")
        if options["url"] and len(accounts) != 1:
            raise CommandError(
                "--url is one endpoint, for one account: name a single ACCOUNT, or use "
                "--base-url to register each account's own endpoint."
            )
        failed = []
        with Transport(pool_size=1) as transport:
            for account in accounts:
                url = options["url"] or endpoint(options["base_url"], account.name)
                if not self._register(transport, account, url, options["replace"]):
                    failed.append(account.name)
        if failed:
            raise CommandError(f"Registration failed for {', '.join(failed)}; see above.")

    def _register(
        self, transport: Transport, account: ProviderAccount, url: str, replace: bool
    ) -> bool:
        adapter = load_adapter(account)
        try:
            request = adapter.build_register_webhook(url)
        except UnsupportedFeature:
            self.stdout.write(
                f"{account.name}: webhook registration is not supported by the provider's API; "
                f"register {url} in the provider's dashboard, and put its signing secret into "
                f"WEBHOOK_SECRET."
            )
            return True
        try:
            webhooks = transport.call(
                adapter, adapter.build_list_webhooks(), adapter.parse_list_webhooks
            )
            existing = [webhook.id for webhook in webhooks if webhook.url == url]
            if existing and not replace:
                self.stderr.write(
                    f"{account.name}: a webhook for {url} exists already ({', '.join(existing)}). "
                    "The provider shows a webhook's signing secret only when it is created; if "
                    "yours is not in WEBHOOK_SECRET, run the command again with --replace to "
                    "register a new one with a new secret."
                )
                return False
            for webhook_id in existing:
                delete = adapter.build_delete_webhook(webhook_id)
                transport.call(adapter, delete, adapter.parse_delete_webhook)
                self.stdout.write(f"{account.name}: deleted webhook {webhook_id} for {url}.")
            webhook = transport.call(adapter, request, adapter.parse_register_webhook)
        except ProviderAPIError as exc:
            if exc.transient:  # no answer: the error names the account and the host
                self.stderr.write(f"{exc}; run the command again once it answers.")
                return False
            self.stderr.write(f"{account.name}: the provider refused the webhook: {exc}")
            return False
        except TxMailError as exc:
            self.stderr.write(f"{account.name}: the provider refused the webhook: {exc}")
            return False
        self.stdout.write(
            f"{account.name}: registered webhook {webhook.id} for {webhook.url or url} "
            f"({', '.join(webhook.triggers)})."
        )
        setting = f"TXMAIL['PROVIDERS'][{account.name!r}]['WEBHOOK_SECRET']"
        self.stdout.write(f"  Signing secret: {webhook.secret}")
        advice = (
            f"  Put it into {setting}, read from the environment; the provider shows it only "
            "now, and it is stored nowhere else. Until the app has it, the provider's posts "
            "are refused (403) and retried."
        )
        if account.webhook_secrets:
            advice += " Keep the current secret in WEBHOOK_SECRETS until the old webhook is gone."
        self.stdout.write(advice)
        return True


def endpoint(base_url: str, account: str) -> str:
    """The account's webhook URL under the app's public origin."""
    try:
        path = reverse("txmail:webhook", args=[account])
    except NoReverseMatch:
        raise CommandError(
            "The webhook URL cannot be built: include django_txmail.urls in the URLconf, "
            "e.g. path('txmail/', include('django_txmail.urls')), or pass --url."
        ) from None
    return base_url.rstrip("/") + path
