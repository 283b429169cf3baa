"""django-anymail's Mailtrap backend against ours, side by side in one run.

Run by hand from the repository root (never from the test suite), with
django-txmail, its sandbox and django-anymail installed
(``pip install -e ./sandbox -e ".[bench]"``)::

    python bench/anymail_vs_txmail.py                       # 1,000 + 300 messages, 20 ms
    python bench/anymail_vs_txmail.py --messages 200 --single 100 --repeat 1
    python bench/anymail_vs_txmail.py --profile             # where our time goes
    scripts/postgres.sh run -- python bench/anymail_vs_txmail.py --db postgres

Everything runs on this machine, over loopback: the script configures
Django itself (a fresh SQLite file in a temporary directory, or a fresh
PostgreSQL database, dropped at the end) and starts the sandbox, whose
Mailtrap endpoints (``/api/send``, ``/api/batch``) answer after
``--latency`` seconds. Both backends send the same messages (one To
recipient, a subject, a text and an HTML part) to the same sandbox:

* **many messages**: one ``send_messages()`` call with ``--messages``
  messages. django-anymail makes one ``/api/send`` request per message; ours
  records every message, then sends them in ``/api/batch`` requests of up
  to 500. Target: our throughput at least 10x anymail's.
* **single messages**: ``--single`` calls of ``send_messages([msg])`` on one
  backend instance opened beforehand (so both reuse one HTTP connection).
  Target: our total time at most 1.2x anymail's, although ours also records
  each message in the outbox.

Each scenario runs ``--repeat`` times per backend, alternating, and the
median run is reported (every run listed). After every run the sandbox must
hold exactly the messages sent, each once (the recipient and subject of each
distinct, the same set as sent), and for ours every outbox row must be
``sent`` and carry the id the sandbox received in ``custom_variables``. A run
that loses or doubles a message is reported and makes the script exit 1.
"""

from __future__ import annotations

import argparse
import cProfile
import faulthandler
import io
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import benchdb  # noqa: E402
import django  # noqa: E402
from delivery import (  # noqa: E402
    DOMAIN,
    ChildProcessSandbox,
    InProcessSandbox,
    Sandbox,
    database_description,
    database_setting,
    email_messages,
    fresh_database,
    fsync_ms,
    positive_int,
    shorten_paths,
    table,
    verdict,
)
from django.conf import settings  # noqa: E402

from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN  # noqa: E402


def targets(args: argparse.Namespace) -> tuple[float | None, float]:
    """(throughput ours / anymail at least, single-message time ours / anymail at most).

    With latency: 10x on Django's default SQLite settings, 15x on WAL and on
    PostgreSQL; with none, 2x on WAL and PostgreSQL (none set for the
    default SQLite settings). One message at a time: 1.2x on WAL and
    PostgreSQL, 1.5x on the default SQLite settings.
    """
    default = args.db == "sqlite-default"
    if args.latency > 0:
        throughput: float | None = 10.0 if default else 15.0
    else:
        throughput = None if default else 2.0
    return throughput, 1.5 if default else 1.2


WARM_UP_MESSAGES = 10
ANYMAIL = "django-anymail"
OURS = "django-txmail"


def configure(args: argparse.Namespace, tmp: Path, sandbox_url: str) -> None:
    settings.configure(
        **benchdb.BASE_SETTINGS,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "anymail",
            "django_txmail",
        ],
        DATABASES={"default": database_setting(args, tmp)},
        MEDIA_ROOT=str(tmp / "media"),
        EMAIL_BACKEND="django_txmail.backends.EmailBackend",
        TXMAIL={
            "PROVIDERS": {
                "mailtrap": {
                    "ADAPTER": "mailtrap",
                    "API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN,
                    "API_URI": sandbox_url,
                    "SANDBOX": True,
                }
            },
            "DEFAULT_PROVIDER": "mailtrap",
            "TIMEOUT": 30,
        },
        ANYMAIL={
            "MAILTRAP_API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN,
            "MAILTRAP_API_URL": f"{sandbox_url}/api/",
            "REQUESTS_TIMEOUT": 30,
        },
    )
    django.setup()


# -- the two backends ----------------------------------------------------------------------------


def anymail_backend():
    from anymail.backends.mailtrap import EmailBackend

    return EmailBackend()


def our_backend():
    from django_txmail.backends import EmailBackend

    return EmailBackend()


BACKENDS: dict[str, Callable[[], Any]] = {ANYMAIL: anymail_backend, OURS: our_backend}


# -- runs --------------------------------------------------------------------------------------


@dataclass
class Run:
    backend: str
    messages: int
    seconds: float
    requests: int
    problems: list[str] = field(default_factory=list)


def expected_keys(messages) -> set[tuple[str, str]]:
    return {(msg.to[0].rsplit("<", 1)[-1].rstrip(">").lower(), msg.subject) for msg in messages}


def check(run: Run, sandbox: Sandbox, messages, counted: int) -> Run:
    """Exactly the messages sent, each once, at the sandbox; our outbox all ``sent``."""
    from django_txmail.models import Message

    n = run.messages
    if counted != n:
        run.problems.append(f"send_messages() returned {counted}, expected {n}")
    received = sandbox.payloads()
    keys = [(m["to"][0]["email"].lower(), m.get("subject")) for m in received]
    if len(received) != n:
        run.problems.append(f"the sandbox received {len(received)} messages, expected {n}")
    if len(set(keys)) != len(keys):
        run.problems.append(f"{len(keys) - len(set(keys))} duplicate(s) received")
    if set(keys) != expected_keys(messages):
        run.problems.append("the messages received differ from those sent")
    if refused := sandbox.refused():
        run.problems.append(f"non-2xx answers: {refused}")
    if run.backend == OURS:
        statuses = Counter(Message.objects.values_list("status", flat=True))
        if statuses != Counter({"sent": n}):
            run.problems.append(f"outbox statuses {dict(statuses)}, expected {{'sent': {n}}}")
        ids = {str(pk) for pk in Message.objects.values_list("pk", flat=True)}
        got = {m.get("custom_variables", {}).get("txmail_id") for m in received}
        if got != ids:
            run.problems.append("the txmail_ids received differ from the outbox's ids")
    elif Message.objects.exists():
        run.problems.append("django-anymail's run left rows in our outbox")
    return run


def reset(sandbox: Sandbox) -> None:
    from django_txmail.models import Message

    Message.objects.all().delete()
    sandbox.reset()


def send(
    backend_name: str,
    scenario: str,
    n: int,
    sandbox: Sandbox,
    profiler: cProfile.Profile | None = None,
) -> Run:
    """One timed run of ``scenario`` ("many" or "single") through one backend."""
    reset(sandbox)
    before = sandbox.requests_answered()
    messages = email_messages(n)
    backend = BACKENDS[backend_name]()
    backend.open()
    try:
        with profiler or nullcontext():
            started = time.perf_counter()
            if scenario == "many":
                counted = backend.send_messages(messages)
            else:
                counted = sum(backend.send_messages([msg]) for msg in messages)
            seconds = time.perf_counter() - started
    finally:
        backend.close()
    answered = sandbox.requests_answered() - before - sandbox.own_requests
    run = Run(backend_name, n, seconds, answered)
    check(run, sandbox, messages, counted)
    reset(sandbox)
    state = "ok" if not run.problems else "FAILED: " + "; ".join(run.problems)
    print(
        f"  {scenario:6} {backend_name:14} {n:5} msgs  {seconds:6.2f} s  "
        f"{run.requests:4} requests  {state}",
        file=sys.stderr,
        flush=True,
    )
    return run


@dataclass
class Result:
    backend: str
    runs: list[Run]

    @property
    def median(self) -> Run:
        ordered = sorted(self.runs, key=lambda r: r.seconds)
        return ordered[len(ordered) // 2]

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def messages(self) -> int:
        return self.runs[0].messages

    @property
    def per_second(self) -> float:
        return self.messages / self.seconds

    @property
    def problems(self) -> list[str]:
        return [p for r in self.runs for p in r.problems]


def scenario(name: str, n: int, repeat: int, sandbox: Sandbox) -> dict[str, Result]:
    """``repeat`` runs of each backend, alternating so drift hits both alike."""
    runs: dict[str, list[Run]] = {ANYMAIL: [], OURS: []}
    for _ in range(repeat):
        for backend_name in (ANYMAIL, OURS):
            runs[backend_name].append(send(backend_name, name, n, sandbox))
    return {b: Result(b, r) for b, r in runs.items()}


# -- report ------------------------------------------------------------------------------------


def result_table(results: dict[str, Result]) -> str:
    rows = []
    for r in results.values():
        rows.append(
            [
                r.backend,
                str(r.messages),
                f"{r.seconds:.2f}",
                " ".join(f"{run.seconds:.2f}" for run in sorted(r.runs, key=lambda x: x.seconds)),
                f"{r.per_second:.1f}",
                f"{1000 * r.seconds / r.messages:.2f}",
                str(r.median.requests),
                "ok" if not r.problems else "FAILED",
            ]
        )
    headers = [
        "backend",
        "messages",
        "seconds",
        "every run",
        "msg/s",
        "ms/msg",
        "HTTP requests",
        "check",
    ]
    return table(headers, rows)


def profile(n_many: int, n_single: int, sandbox: Sandbox, top: int = 25) -> str:
    """Our backend in both scenarios once more, under cProfile (this thread only:
    the in-process sandbox's work shows as time waiting for its answer)."""
    out = io.StringIO()
    for name, n in (("many", n_many), ("single", n_single)):
        profiler = cProfile.Profile()
        run = send(OURS, name, n, sandbox, profiler)
        out.write(
            f"\ncProfile: django-txmail, scenario {name!r}, {n} messages, "
            f"{run.seconds:.2f} s under the profiler, check "
            f"{'ok' if not run.problems else 'FAILED'}\n"
        )
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(15)
    return shorten_paths(out.getvalue())


# -- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="django-anymail's Mailtrap backend against ours, through the sandbox.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--messages", type=positive_int, default=1000, help="messages in the one send_messages()"
    )
    parser.add_argument(
        "--single", type=positive_int, default=300, help="single-message send_messages() calls"
    )
    parser.add_argument(
        "--sandbox-process",
        action="store_true",
        help="run the sandbox in a child process, so its work is not counted as ours",
    )
    parser.add_argument("--latency", type=float, default=0.02, help="provider latency, seconds")
    parser.add_argument("--repeat", type=positive_int, default=3, help="runs of each scenario")
    parser.add_argument(
        "--db",
        choices=("sqlite", "sqlite-default", "postgres"),
        default="sqlite",
        help="sqlite: WAL, as the README configures it; sqlite-default: Django's defaults",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("OFF", "NORMAL", "FULL"),
        default=None,
        help="PRAGMA synchronous for SQLite (default: SQLite's own)",
    )
    parser.add_argument(
        "--only", choices=("many", "single"), default=None, help="run only one scenario"
    )
    parser.add_argument(
        "--profile", action="store_true", help="also profile our backend in both scenarios"
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=600,
        help="seconds after which the run is abandoned (stacks dumped, exit status 1)",
    )
    args = parser.parse_args(argv)
    if args.latency < 0:
        parser.error("--latency must be >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faulthandler.dump_traceback_later(args.deadline, exit=True)
    many: dict[str, Result] = {}
    single: dict[str, Result] = {}
    warm_up: dict[str, dict[str, Result]] = {}
    profiled = ""
    with (
        tempfile.TemporaryDirectory(prefix="txmail-bench-") as tmp,
        (ChildProcessSandbox if args.sandbox_process else InProcessSandbox)(
            args.latency
        ) as sandbox,
    ):
        configure(args, Path(tmp), sandbox.url)
        import anymail

        with fresh_database():
            from django_txmail.models import SendingDomain

            SendingDomain.objects.create(
                name=DOMAIN, provider="mailtrap", status=SendingDomain.Status.VERIFIED
            )
            heading = (
                f"django-anymail {anymail.__version__} (Mailtrap backend) "
                f"vs django-txmail — {database_description(args)}\n"
                f"Python {platform.python_version()}, Django {django.get_version()}, "
                f"{os.cpu_count()} CPUs; {sandbox.where}, over loopback, "
                f"Mailtrap latency {1000 * args.latency:.0f} ms; "
                f"disk: fsync {fsync_ms(tmp):.2f} ms (median of 50)"
            )
            print(heading, file=sys.stderr, flush=True)
            for backend_name in (ANYMAIL, OURS):  # imports, first connection, first queries
                for name in ("many", "single"):
                    run = send(backend_name, name, WARM_UP_MESSAGES, sandbox)
                    warm_up.setdefault(f"warm-up {name}", {})[backend_name] = Result(
                        backend_name, [run]
                    )
            if args.only in (None, "many"):
                many = scenario("many", args.messages, args.repeat, sandbox)
            if args.only in (None, "single"):
                single = scenario("single", args.single, args.repeat, sandbox)
            if args.profile:
                profiled = profile(args.messages, args.single, sandbox)

    print(heading)
    print(
        f"Median of {args.repeat} run(s) per backend, alternating; every run listed, fastest first."
    )
    if many:
        ratio = many[OURS].per_second / many[ANYMAIL].per_second
        print(f"\nMany messages: one send_messages() with {args.messages} messages")
        print(result_table(many))
        wanted = targets(args)[0]
        aim = f"(>= {wanted:.0f}x)  {verdict(ratio >= wanted)}" if wanted else "(no target set)"
        print(f"\nTarget: throughput ours / anymail = {ratio:.1f}x {aim}")
    if single:
        ratio = single[OURS].seconds / single[ANYMAIL].seconds
        extra_ms = 1000 * (single[OURS].seconds - single[ANYMAIL].seconds) / args.single
        print(f"\nSingle messages: {args.single} calls of send_messages([msg]) on one open backend")
        print(result_table(single))
        wanted = targets(args)[1]
        print(
            f"\nTarget: time ours / anymail = {ratio:.2f}x (<= {wanted}x; "
            f"{extra_ms:+.2f} ms per message)  {verdict(ratio <= wanted)}"
        )
    results = [*many.values(), *single.values()]
    groups = [("many", many), ("single", single), *warm_up.items()]
    failed = [(name, r) for name, group in groups for r in group.values() if r.problems]
    for name, result in failed:
        print(f"FAILED CHECK {name} / {result.backend}: {'; '.join(result.problems)}")
    if results and not failed:
        print(
            "\nChecks: every run delivered each message exactly once; "
            "every outbox row of ours is 'sent'."
        )
    if profiled:
        print("\n" + profiled)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
