"""Running the sandbox in the foreground: the command-line options it shares,
one log line per request, and a clean stop on SIGINT or SIGTERM. Shared by
``manage.py txmail_sandbox`` and ``python -m txmail_sandbox``, so the
two commands take the same options and print the same lines."""

from __future__ import annotations

import argparse
import math
import signal
import threading
from collections.abc import Callable
from typing import Any

from .fault_plan import FAULT_KINDS, FaultPlan, parse_kinds
from .server import SandboxServer
from .state import RequestRecord

_PLAN_DEFAULTS = FaultPlan()
#: The options that make a plan: dest → (flag, FaultPlan field).
_RATES = {
    "fault_rate": ("--fault-rate", "rate"),
    "outage_rate": ("--outage-rate", "outage_rate"),
}
#: Options that only mean something with ``--fault-rate`` or ``--outage-rate``.
_PLAN_OPTIONS = {
    "fault_seed": ("--fault-seed", "seed"),
    "fault_kinds": ("--fault-kinds", "kinds"),
    "retry_after": ("--retry-after", "retry_after"),
    "hang": ("--hang", "hang"),
    "slow": ("--slow", "slow"),
    "outage_requests": ("--outage-requests", "outage_requests"),
}
_DURATIONS = frozenset({"retry_after", "hang", "slow"})


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """The fault plan options (see ``fault_plan.py``)."""
    group = parser.add_argument_group("random faults (reproducible from the seed)")
    group.add_argument(
        "--fault-rate",
        type=float,
        metavar="P",
        help="share of sends that get a fault, 0 to 1 (default: no random faults)",
    )
    group.add_argument(
        "--fault-seed",
        type=int,
        metavar="N",
        help=f"seed of the fault decisions (default {_PLAN_DEFAULTS.seed})",
    )
    group.add_argument(
        "--fault-kinds",
        metavar="KIND[:WEIGHT],...",
        help=f"faults to draw from, with relative weights (default: all, equally): "
        f"{', '.join(FAULT_KINDS)}",
    )
    group.add_argument(
        "--retry-after",
        type=int,
        metavar="SECONDS",
        help=f"Retry-After of a '429' fault (default {_PLAN_DEFAULTS.retry_after})",
    )
    group.add_argument(
        "--hang",
        type=float,
        metavar="SECONDS",
        help="how long 'timeout-after-accept' holds the connection before closing it "
        f"(default {_PLAN_DEFAULTS.hang:g})",
    )
    group.add_argument(
        "--slow",
        type=float,
        metavar="SECONDS",
        help=f"how late a 'slow' answer comes (default {_PLAN_DEFAULTS.slow:g})",
    )
    group.add_argument(
        "--outage-rate",
        type=float,
        metavar="P",
        help="share of requests, 0 to 1, that start an outage: that request and the next "
        "ones are answered 503 (default: no outages; works with or without --fault-rate)",
    )
    group.add_argument(
        "--outage-requests",
        type=int,
        metavar="N",
        help=f"how many requests an outage answers 503 (default {_PLAN_DEFAULTS.outage_requests})",
    )


def fault_plan_from_options(options: dict[str, Any]) -> FaultPlan | None:
    """The plan the options ask for, or None; ValueError names the bad option."""
    given = {name: options[name] for name in _PLAN_OPTIONS if options.get(name) is not None}
    rates = {name: options[name] for name in _RATES if options.get(name) is not None}
    if not rates:
        if given:
            flags = ", ".join(_PLAN_OPTIONS[name][0] for name in given)
            verb = "needs" if len(given) == 1 else "need"
            raise ValueError(
                f"{flags} {verb} --fault-rate (the share of sends that fail) or "
                "--outage-rate (the share of requests that start an outage)."
            )
        return None
    # Outages alone: no other random faults.
    settings: dict[str, Any] = {"rate": 0.0}
    for name, value in rates.items():
        flag, field_name = _RATES[name]
        if not 0 <= value <= 1:
            raise ValueError(f"{flag} must be between 0 and 1, not {value:g}.")
        settings[field_name] = value
    if given.get("outage_requests", 1) < 1:
        raise ValueError(
            f"--outage-requests must be a whole number >= 1, not {given['outage_requests']}."
        )
    for name, value in given.items():
        flag, field_name = _PLAN_OPTIONS[name]
        if name == "fault_kinds":
            try:
                value = parse_kinds(value)
            except ValueError as exc:
                raise ValueError(f"{flag}: {exc}") from None
        elif name in _DURATIONS and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{flag} must be a number of seconds >= 0, not {value:g}.")
        settings[field_name] = value
    return FaultPlan(**settings)


def describe_faults(plan: FaultPlan | None) -> str:
    return f"faults: {plan.describe()}" if plan else "no random faults"


def format_record(record: RequestRecord) -> str:
    """``POST /v3/domains/acme.io/messages/send 200 1.2 ms``, with ``-`` for
    no answer and the fault, if any: ``... - 30001.0 ms [timeout-after-accept]``."""
    status = "-" if record.status is None else record.status
    line = f"{record.method} {record.path} {status} {record.duration * 1000:.1f} ms"
    return f"{line} [{record.fault}]" if record.fault else line


def line_writer(write: Callable[[str], object]) -> Callable[[RequestRecord], None]:
    """An ``on_request`` callback writing one line per request. Requests are
    served by many threads; the lock keeps their lines whole."""
    lock = threading.Lock()

    def log(record: RequestRecord) -> None:
        with lock:
            write(format_record(record))

    return log


def serve_until_signalled(
    server: SandboxServer, on_ready: Callable[[], object] | None = None
) -> None:
    """Block until SIGINT or SIGTERM, then stop the (started) server.

    ``on_ready`` (printing the "listening" line) runs once the signal
    handlers are in place, so whoever waits for that line to send SIGTERM
    gets a clean stop. Signal handlers can only be installed from the main
    thread; elsewhere this returns when the calling thread is interrupted
    some other way.
    """
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    if on_ready is not None:
        on_ready()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.stop()
