"""Send the shop's welcome mail through both routes and show what happened.

Run with the sandbox up (``make demo`` does both).
"""

import requests
from django.conf import settings
from django.core.mail import send_mail
from django.core.management.base import BaseCommand, CommandError

from django_txmail.message import TxMessage
from django_txmail.models import Message


class Command(BaseCommand):
    help = "Send a welcome message from the shop's domain and one through a grant."

    def handle(self, *args, **options):
        sandbox = settings.TXMAIL["PROVIDERS"]["nylas"]["API_URI"]
        try:
            requests.delete(f"{sandbox}/_sandbox/messages", timeout=5)
        except requests.RequestException as exc:
            raise CommandError(f"The sandbox at {sandbox} is not running: {exc}") from None

        send_mail(
            "Welcome to Example Shop",
            "Hello Ann, thanks for signing up.",
            None,  # DEFAULT_FROM_EMAIL: the shop's sending domain (domain route)
            ["Ann Example <ann@example.net>"],
            html_message="<p>Hello Ann, thanks for <b>signing up</b>.</p>",
        )
        personal = TxMessage(
            "Welcome from Alice",
            "Hi Ann, I'm Alice, your account manager. Reply any time.",
            "Alice Manager <alice@example.org>",  # a connected mailbox (grant route)
            ["ann@example.net"],
            metadata={"campaign": "onboarding"},
        )
        personal.send()

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
        self.stdout.write(self.style.MIGRATE_HEADING("Message rows:"))
        for message in Message.objects.order_by("-created_at")[:2][::-1]:
            self.stdout.write(
                f"  {message.pk}  {message.route:6} status={message.status:9} "
                f"provider_id={message.provider_message_id}  {message.subject!r}"
            )
