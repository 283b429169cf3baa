"""Running the sandbox in the foreground: one log line per request, and a
clean stop on SIGINT or SIGTERM. Shared by ``manage.py txmail_sandbox`` and
``python -m django_txmail.sandbox``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from .server import SandboxServer
from .state import RequestRecord


def format_record(record: RequestRecord) -> str:
    """``POST /v3/domains/acme.io/messages/send 200 1.2 ms``"""
    return f"{record.method} {record.path} {record.status} {record.duration * 1000:.1f} ms"


def line_writer(write: Callable[[str], object]) -> Callable[[RequestRecord], None]:
    """An ``on_request`` callback writing one line per request. Requests are
    served by many threads; the lock keeps their lines whole."""
    lock = threading.Lock()

    def log(record: RequestRecord) -> None:
        with lock:
            write(format_record(record))

    return log


def serve_until_signalled(server: SandboxServer) -> None:
    """Block until SIGINT or SIGTERM, then stop the (started) server.

    Signal handlers can only be installed from the main thread; elsewhere
    this returns when the calling thread is interrupted some other way.
    """
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        server.stop()
