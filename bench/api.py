"""The REST API's send against ``send_mail()`` in-process, for the same messages.

Run by hand from the repository root (never from the test suite)::

    scripts/postgres.sh run -- python bench/api.py --db postgres     # the figure
    python bench/api.py --db sqlite --messages 200

It configures Django itself (a fresh database, dropped at the end), starts
the sandbox in this process and Django's test server (``LiveServerThread``,
the server pytest-django's ``live_server`` runs, with TCP_NODELAY) on loopback, then sends
``--messages`` messages one at a time: first ``POST api/messages/`` over HTTP
(a DRF token, one keep-alive connection), then ``send_mail()`` in-process.
Both go to the same sandbox with no added latency. It prints messages per
second for each and their ratio; the target is the API within 2x of
``send_mail()`` (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)

from txmail_sandbox import DEFAULT_NYLAS_API_KEY, SandboxServer  # noqa: E402

TARGET_RATIO = 2.0
DOMAIN = "bench.example"
urlpatterns: list = []  # ROOT_URLCONF is this module: filled once Django is set up


def configure(sandbox_url: str):
    def setup(db: str, tmp: str) -> str:
        return benchdb.setup(
            db,
            tmp,
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "rest_framework",
                "rest_framework.authtoken",
                "django_txmail",
            ],
            # A service's token: HTTP Basic would hash the password on every request.
            REST_FRAMEWORK={
                "DEFAULT_AUTHENTICATION_CLASSES": [
                    "rest_framework.authentication.TokenAuthentication"
                ]
            },
            ROOT_URLCONF="__main__",
            EMAIL_BACKEND="django_txmail.backends.EmailBackend",
            TXMAIL={
                "PROVIDERS": {
                    "nylas": {
                        "ADAPTER": "nylas",
                        "API_KEY": DEFAULT_NYLAS_API_KEY,
                        "API_URI": sandbox_url,
                        "SANDBOX": True,
                    }
                },
                "DEFAULT_PROVIDER": "nylas",
            },
        )

    return setup


def body(number: int) -> dict:
    return {
        "from": f"Shop <noreply@{DOMAIN}>",
        "to": [f"customer{number}@example.org"],
        "subject": f"Receipt {number}",
        "text": "Thanks for your order.",
        "html": "<p>Thanks for your order.</p>",
    }


def run(args: argparse.Namespace) -> int:
    import requests
    from django.conf import settings
    from django.contrib.auth.models import Permission, User
    from django.core import mail
    from django.db import connections
    from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
    from django.urls import include, path
    from rest_framework.authtoken.models import Token

    from django_txmail.models import Message, SendingDomain

    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    urlpatterns.append(path("txmail/", include("django_txmail.urls")))
    SendingDomain.objects.create(name=DOMAIN, provider="nylas", status="verified")
    user = User.objects.create_user("bench", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="send_message"))
    token = Token.objects.create(user=user)
    connections.close_all()

    class Handler(QuietWSGIRequestHandler):
        # Django's handler writes headers and body apart: without TCP_NODELAY each
        # keep-alive request stalls ~40 ms (Nagle + delayed ACK), which is not ours.
        disable_nagle_algorithm = True

    class Server(LiveServerThread):
        def _create_server(self, connections_override=None):
            return self.server_class(
                (self.host, self.port),
                Handler,
                allow_reuse_address=False,
                connections_override=connections_override,
            )

    server = Server("127.0.0.1", static_handler=lambda app: app, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    url = f"http://127.0.0.1:{server.port}/txmail/api/messages/"
    try:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Token {token.key}"
            session.post(url, json=body(-1)).raise_for_status()  # warm-up
            start = time.perf_counter()
            for number in range(args.messages):
                session.post(url, json=body(number)).raise_for_status()
            api = args.messages / (time.perf_counter() - start)
    finally:
        server.terminate()
    data = body(-2)
    mail.send_mail(data["subject"], data["text"], data["from"], data["to"])  # warm-up
    start = time.perf_counter()
    for number in range(args.messages):
        data = body(number)
        mail.send_mail(
            data["subject"], data["text"], data["from"], data["to"], html_message=data["html"]
        )
    python = args.messages / (time.perf_counter() - start)
    sent = Message.objects.filter(status="sent").count()
    ratio = python / api
    print(
        f"django-txmail API send benchmark — {args.db}, {args.messages} messages each\n"
        f"  POST api/messages/ (Django's test server): {api:8.1f} messages/s\n"
        f"  send_mail() in-process:                     {python:8.1f} messages/s\n"
        f"  send_mail() / API: {ratio:.2f}x (target: under {TARGET_RATIO:.0f}x); "
        f"{sent} of {2 * args.messages + 2} recorded sent"
    )
    return 0 if ratio <= TARGET_RATIO and sent == 2 * args.messages + 2 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=500)
    args = parser.parse_args(argv)
    with SandboxServer(latency=0.0) as sandbox:
        return benchdb.run_in_database(args, configure(sandbox.url), run)


if __name__ == "__main__":
    sys.exit(main())
