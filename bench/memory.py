"""Peak memory of one big ``send_messages()`` call: ours against django-anymail's Mailtrap backend.

Run by hand from the repository root (never from the test suite)::

    python bench/memory.py                          # 10,000 messages, SQLite WAL (~2 min)
    python bench/memory.py --db sqlite-default      # Django's own SQLite settings
    scripts/postgres.sh run -- python bench/memory.py --db postgres

Each run is a process of its own (peak RSS is a process's high-water mark):
it configures Django, starts the sandbox in a child process (its memory is
not counted), sends a few messages to warm up, builds ``--messages``
messages (one recipient, a text and an HTML part, about 1 kB), reads its
resident size, sends them all in one ``send_messages()`` call, and reads
its peak resident size. The growth (peak minus the size once the messages
were built) is what sending them cost. The backends take turns, ``--repeat``
runs each; medians are reported.

**Target**: ours grows by at most 100 MB for 10,000 messages, and each run
delivers every message exactly once (the sandbox holds as many messages as
were sent, each recipient once; for ours every outbox row is ``sent``).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGET_MB = 100.0
BACKENDS = ("django-txmail", "django-anymail")


def resident_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def one_run(args: argparse.Namespace) -> dict:
    """In this process: send ``args.messages`` with ``args.backend``; return the figures."""
    import anymail_vs_txmail as compared
    from delivery import DOMAIN, ChildProcessSandbox, email_messages, fresh_database

    with tempfile.TemporaryDirectory(prefix="txmail-bench-") as tmp:
        with ChildProcessSandbox(0.0) as sandbox:
            compared.configure(args, Path(tmp), sandbox.url)
            with fresh_database():
                from django_txmail.models import Message, SendingDomain

                SendingDomain.objects.create(
                    name=DOMAIN, provider="mailtrap", status=SendingDomain.Status.VERIFIED
                )
                ours = args.backend == BACKENDS[0]
                make = compared.our_backend if ours else compared.anymail_backend
                warm = make()
                warm.send_messages(email_messages(20))
                sandbox.reset()
                Message.objects.all().delete()
                messages = email_messages(args.messages)
                backend = make()
                backend.open()
                before = resident_mb()
                sent = backend.send_messages(messages)
                peak = peak_mb()
                backend.close()
                problems = []
                received = sandbox.payloads()
                recipients = [payload["to"][0]["email"] for payload in received]
                if sent != args.messages:
                    problems.append(f"send_messages() returned {sent}")
                if len(received) != args.messages or len(set(recipients)) != args.messages:
                    problems.append(
                        f"the sandbox holds {len(received)} messages "
                        f"({len(set(recipients))} recipients), expected {args.messages}"
                    )
                if ours:
                    statuses = set(Message.objects.values_list("status", flat=True))
                    if statuses != {"sent"} or Message.objects.count() != args.messages:
                        problems.append(f"outbox: {Message.objects.count()} rows, {statuses}")
                return {"before": before, "peak": peak, "problems": problems}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "sqlite-default", "postgres"], default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--backend", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--sqlite-synchronous", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backend:  # a child: one run, figures as JSON on stdout
        print(json.dumps(one_run(args)))
        return 0
    runs: dict[str, list[dict]] = {name: [] for name in BACKENDS}
    for _ in range(args.repeat):
        for name in BACKENDS:
            command = [sys.executable, __file__, "--backend", name, "--db", args.db]
            command += ["--messages", str(args.messages)]
            output = subprocess.run(command, check=True, capture_output=True, text=True)
            runs[name].append(json.loads(output.stdout.strip().splitlines()[-1]))
            growth = runs[name][-1]["peak"] - runs[name][-1]["before"]
            print(f"  {name}: +{growth:.1f} MB", file=sys.stderr, flush=True)
    print(
        f"{args.messages:,} messages in one send_messages() (Mailtrap, sandbox in its own "
        f"process), {args.db}; median of {args.repeat} runs each, alternating"
    )
    print(f"{'backend':16} {'RSS before MB':>14} {'peak MB':>9} {'growth MB':>10}  every run")
    failed = False
    growths = {}
    for name, results in runs.items():
        grown = sorted(r["peak"] - r["before"] for r in results)
        growths[name] = statistics.median(grown)
        before = statistics.median(r["before"] for r in results)
        peak = statistics.median(r["peak"] for r in results)
        every = " ".join(f"{g:.1f}" for g in grown)
        print(f"{name:16} {before:14.1f} {peak:9.1f} {growths[name]:10.1f}  {every}")
        for result in results:
            for problem in result["problems"]:
                print(f"FAILED CHECK {name}: {problem}")
                failed = True
    ours = growths[BACKENDS[0]]
    verdict = "PASS" if ours <= TARGET_MB else "MISS"
    print(f"\nTarget: ours grows by <= {TARGET_MB:.0f} MB: {ours:.1f} MB  {verdict}")
    if not failed:
        print("Checks: every run delivered each message exactly once.")
    return 1 if failed or ours > TARGET_MB else 0


if __name__ == "__main__":
    sys.exit(main())
