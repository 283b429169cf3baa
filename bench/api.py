"""The REST API's send against ``send_mail()`` in-process, for the same messages.

Run by hand from the repository root (never from the test suite)::

    TXMAIL_PG_DURABLE=1 scripts/postgres.sh run -- python bench/api.py --db postgres  # the figure
    python bench/api.py --db sqlite --messages 100 --rounds 3

It configures Django itself as ``startproject`` makes a project (its
MIDDLEWARE; a fresh database, dropped at the end), starts the sandbox in
this process and Django's test server (``LiveServerThread``, the server
pytest-django's ``live_server`` runs, with TCP_NODELAY) on loopback, then
takes ``--rounds`` turns of three runs of ``--messages`` requests or calls
each, one at a time:

* ``POST api/messages/`` over HTTP (a DRF token, one keep-alive connection);
* ``send_mail()`` in-process, the same messages;
* the floor: a view that only answers ``{}``, POSTed the same bodies through
  the same server and client: what Django's test server and the client cost
  before any of our code runs.

Both sends go to the same sandbox with no added latency. It prints the
median messages per second of each (every run listed), the ratio of the two
sends in each round (the runs of a round meet the same load) and its median, the
database statements and connections per message on each side, the client's
own CPU time per request, the load average and the disk's fsync time. The
target is the API within 2x of ``send_mail()`` (exit status 1 otherwise).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402  (next to this script, so on sys.path)
from delivery import fsync_ms  # noqa: E402

from txmail_sandbox import DEFAULT_NYLAS_API_KEY, SandboxServer  # noqa: E402

TARGET_RATIO = 2.0
DOMAIN = "bench.example"
urlpatterns: list = []  # ROOT_URLCONF is this module: filled once Django is set up

#: ``startproject``'s MIDDLEWARE. CommonMiddleware sets Content-Length, without which
#: Django's test server closes the connection after each answer.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def configure(sandbox_url: str, conn_max_age: int | None):
    def setup(db: str, tmp: str) -> str:
        return benchdb.setup(
            db,
            tmp,
            database_options={"CONN_MAX_AGE": conn_max_age},
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "django.contrib.messages",
                "rest_framework",
                "rest_framework.authtoken",
                "django_txmail",
            ],
            MIDDLEWARE=MIDDLEWARE,
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


class Counts:
    """Database statements and new connections, per thread that makes them."""

    def __init__(self) -> None:
        self.statements: Counter[str] = Counter()
        self.connections: Counter[str] = Counter()

    def statement(self, execute, sql, params, many, context):
        self.statements[threading.current_thread().name] += 1
        return execute(sql, params, many, context)

    def connected(self, **kwargs) -> None:
        self.connections[threading.current_thread().name] += 1

    def total(self) -> tuple[int, int]:
        return sum(self.statements.values()), sum(self.connections.values())


def run(args: argparse.Namespace) -> int:
    import requests
    from django.conf import settings
    from django.contrib.auth.models import Permission, User
    from django.core import mail
    from django.db import connections
    from django.db.backends.signals import connection_created
    from django.http import JsonResponse
    from django.test.testcases import LiveServerThread, QuietWSGIRequestHandler
    from django.urls import include, path
    from django.views.decorators.csrf import csrf_exempt
    from rest_framework.authtoken.models import Token

    from django_txmail.models import Message, SendingDomain

    settings.ALLOWED_HOSTS = ["127.0.0.1", "testserver"]
    urlpatterns.append(path("txmail/", include("django_txmail.urls")))
    urlpatterns.append(path("floor/", csrf_exempt(lambda request: JsonResponse({}))))
    SendingDomain.objects.create(name=DOMAIN, provider="nylas", status="verified")
    user = User.objects.create_user("bench", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="send_message"))
    token = Token.objects.create(user=user)
    connections.close_all()
    counts = Counts()
    connection_created.connect(counts.connected, weak=False)

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

    profiler = cProfile.Profile() if args.profile else None
    handler_ms: list[float] = []

    def counted(app):
        def application(environ, start_response):
            started = time.perf_counter()
            with connections["default"].execute_wrapper(counts.statement):
                if profiler is not None and environ["PATH_INFO"].endswith("/messages/"):
                    answer = profiler.runcall(app, environ, start_response)
                else:
                    answer = app(environ, start_response)
            handler_ms.append(1000 * (time.perf_counter() - started))
            return answer

        return application

    server = Server("127.0.0.1", static_handler=counted, port=0)
    server.daemon = True
    server.start()
    server.is_ready.wait()
    if server.error:
        raise server.error
    base = f"http://127.0.0.1:{server.port}"
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token.key}"
    client_cpu: list[float] = []

    def over_http(url: str, code: int):
        def send(numbers: range) -> None:
            cpu = time.thread_time()
            for number in numbers:
                answer = session.post(url, json=body(number))
                if answer.status_code != code:
                    raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:300]}")
            client_cpu.append(1000 * (time.thread_time() - cpu) / len(numbers))

        return send

    def in_process(numbers: range) -> None:
        with connections["default"].execute_wrapper(counts.statement):
            for number in numbers:
                data = body(number)
                mail.send_mail(
                    data["subject"],
                    data["text"],
                    data["from"],
                    data["to"],
                    html_message=data["html"],
                )

    scenarios = {
        "POST api/messages/": over_http(f"{base}/txmail/api/messages/", 201),
        "send_mail() in-process": in_process,
        "floor: a view answering {}": over_http(f"{base}/floor/", 200),
    }
    rates: dict[str, list[float]] = {name: [] for name in scenarios}
    per_message: dict[str, tuple[float, float]] = {}
    handler: dict[str, list[float]] = {name: [] for name in scenarios}
    load = [os.getloadavg()[0]]
    try:
        for send in scenarios.values():  # warm-up: imports, first connection, first queries
            send(range(-3, -1))
        for turn in range(args.rounds):
            numbers = range(turn * args.messages, (turn + 1) * args.messages)
            for name, send in scenarios.items():
                before = counts.total()
                del handler_ms[:]
                started = time.perf_counter()
                send(numbers)
                if handler_ms:
                    handler[name].append(statistics.median(handler_ms))
                rates[name].append(args.messages / (time.perf_counter() - started))
                after = counts.total()
                per_message[name] = tuple(  # type: ignore[assignment]
                    (a - b) / args.messages for a, b in zip(after, before, strict=True)
                )
            load.append(os.getloadavg()[0])
    finally:
        session.close()
        server.terminate()

    median = {name: statistics.median(runs) for name, runs in rates.items()}
    api, python, floor = median.values()
    api_runs, python_runs, _ = rates.values()
    by_round = [p / a for p, a in zip(python_runs, api_runs, strict=True)]
    ratio = statistics.median(by_round)
    expected = 2 * (2 + args.rounds * args.messages)
    sent = Message.objects.filter(status="sent").count()
    http_cpu = statistics.median(client_cpu)
    print(
        f"django-txmail API send benchmark — {args.db} "
        f"(CONN_MAX_AGE={args.conn_max_age}), {args.rounds} rounds of "
        f"{args.messages} messages each; disk: fsync {fsync_ms(tempfile.gettempdir()):.2f} ms "
        f"(median of 50); load average {min(load):.1f}–{max(load):.1f} (1 min)"
    )
    for name, runs in rates.items():
        statements, opened = per_message[name]
        print(
            f"  {name:28} {median[name]:7.1f} /s (median; "
            f"{', '.join(f'{r:.1f}' for r in runs)}); per message: {statements:.1f} "
            f"statements, {opened:.2f} new database connections"
        )
    print(
        "  inside Django's handler (middleware, view, response), median ms per request: "
        + ", ".join(f"{name} {statistics.median(ms):.1f}" for name, ms in handler.items() if ms)
        + f"\n  client's own CPU per HTTP request (requests): {http_cpu:.2f} ms (median)\n"
        f"  ms per message: API {1000 / api:.1f}, send_mail() {1000 / python:.1f}, "
        f"floor {1000 / floor:.1f}; API minus floor {1000 / api - 1000 / floor:.1f}\n"
        f"  send_mail() / API, each round: {', '.join(f'{r:.2f}' for r in by_round)}; "
        f"of the medians {python / api:.2f}x\n"
        f"  send_mail() / API, median of the rounds: {ratio:.2f}x "
        f"(target: under {TARGET_RATIO:.0f}x); "
        f"{sent} of {expected} recorded sent"
    )
    if profiler is not None:
        print("\nServer side of every POST api/messages/ (cProfile, the server thread only):")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(15)
    return 0 if ratio <= TARGET_RATIO and sent == expected else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--messages", type=int, default=200, help="per run (default 200)")
    parser.add_argument("--rounds", type=int, default=5, help="turns of the three runs")
    parser.add_argument(
        "--conn-max-age",
        type=lambda text: None if text == "none" else int(text),
        default=None,
        help="the database's CONN_MAX_AGE: 'none' (the default) keeps one connection "
        "per server thread, as a service would; 0 is Django's default, a new "
        "connection per request",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile the server side of the API's requests (slows them; figures only indicative)",
    )
    args = parser.parse_args(argv)
    with SandboxServer(latency=0.0) as sandbox:
        return benchdb.run_in_database(args, configure(sandbox.url, args.conn_max_age), run)


if __name__ == "__main__":
    sys.exit(main())
