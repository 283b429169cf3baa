"""Send the shop's welcome mail through both routes and show what happened.

Run with the sandbox up (``make demo`` starts it, and the example app so the
sandbox's webhooks arrive). The sandbox decides each outcome by address, as
Amazon SES's mailbox simulator does: ``bounce@`` bounces, ``complaint@``
complains, anything else is delivered.
"""

import time

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from django_txmail.message import TxMessage
from django_txmail.models import Message
from django_txmail.stored_templates.render import send_template

WELCOME = [
    ("Ann Example <ann@example.net>", "Ann"),
    ("bounce@example.net", "Bea"),
    ("complaint@example.net", "Carl"),
]


class Command(BaseCommand):
    help = "Send welcome messages from the shop's domain and one through a grant."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait-for-events",
            type=float,
            default=0,
            metavar="SECONDS",
            help="wait up to this long for the sandbox's webhooks to settle each status",
        )

    def handle(self, *args, **options):
        sandbox = settings.TXMAIL["PROVIDERS"]["nylas"]["API_URI"]
        try:
            requests.delete(f"{sandbox}/_sandbox/messages", timeout=5)
        except requests.RequestException as exc:
            raise CommandError(f"The sandbox at {sandbox} is not running: {exc}") from None
        started = time.time()

        for (address, name), language in zip(WELCOME, ["en", "de", "en"], strict=True):
            # The stored template "welcome" (shop/migrations/0002), from DEFAULT_FROM_EMAIL:
            # the shop's sending domain (domain route).
            send_template(
                "welcome",
                address,
                {"name": name, "shop_url": "https://shop.example.com/"},
                language=language,
            )
        TxMessage(
            "Welcome from Alice",
            "Hi Ann, I'm Alice, your account manager. Reply any time.",
            "Alice Manager <alice@example.org>",  # a connected mailbox (grant route)
            ["ann@example.net"],
            metadata={"campaign": "onboarding"},
        ).send()

        received = requests.get(f"{sandbox}/_sandbox/messages", timeout=5).json()
        self.stdout.write(self.style.MIGRATE_HEADING(f"The sandbox received {len(received)}:"))
        for item in received:
            payload = item["payload"]
            sender = payload["from"][0] if isinstance(payload["from"], list) else payload["from"]
            where = item.get("domain") or item.get("grant_id")
            to = ", ".join(r["email"] for r in payload["to"])
            self.stdout.write(
                f"  {item['route']:6} {where:18} id={item['id']}  "
                f"{sender['email']} -> {to}  {payload.get('subject', '')!r}"
            )

        messages = Message.objects.filter(created_at__gte=self._since(started))
        self._wait_for_events(messages, options["wait_for_events"])
        self.stdout.write(self.style.MIGRATE_HEADING("Message rows:"))
        for message in messages.order_by("created_at").prefetch_related("events"):
            self.stdout.write(
                f"  {message.pk}  {message.route:6} status={message.status:10} "
                f"provider_id={message.provider_message_id}  to={message.recipient_summary}"
            )
            for event in message.events.all():
                detail = event.bounce_type or event.reason
                self.stdout.write(f"      event {event.type:10} {event.recipient} {detail}")

    @staticmethod
    def _since(started: float):
        from datetime import UTC, datetime

        return datetime.fromtimestamp(started - 1, UTC)

    def _wait_for_events(self, messages, seconds: float) -> None:
        """Until every domain-route message has heard from the provider, or time is up."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            waiting = messages.filter(route="domain", status="sent").count()
            if not waiting:
                return
            time.sleep(0.2)
        if seconds:
            self.stdout.write("  (some delivery events did not arrive in time)")
