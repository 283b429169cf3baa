"""``Worker``: deliver whatever is due, with a bounded pool of threads.

What is due (see ``claims.due``): retries whose time has come, held
scheduled mail, sends abandoned past their lease, and queued messages that
no process or task delivered. The worker claims them in batches — never more
than its threads can start soon, so a stopped worker holds few claims — and
its threads share one ``Sender`` (one pooled HTTP session). Each claimed
batch takes its slots in the accounts' quotas at once, in one transaction
(``Sender.pace``); a thread then waits for its message's slot, or takes a
new one if that slot went by too long ago (``quota.Slots.late``).

Any number of workers may run on any number of machines: claims are taken
in the database, each row by exactly one worker. On ``stop()`` (SIGTERM or
SIGINT from the command) the threads finish the messages they are sending,
claimed messages not yet started are given back, and ``run()`` returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connections

from django_txmail.exceptions import TxMailError
from django_txmail.models import Message
from django_txmail.outbox.claims import claim_batch
from django_txmail.outbox.states import release
from django_txmail.sending.attempt import Sender, Slot

logger = logging.getLogger("django_txmail.sending.worker")

#: Seconds between sweeps for messages abandoned too often (see claims.py).
SWEEP_EVERY = 5.0


@dataclass
class WorkerStats:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    released: int = 0

    @property
    def attempted(self) -> int:
        return self.sent + self.retrying + self.failed


class Worker:
    def __init__(
        self,
        *,
        batch: int = 100,
        concurrency: int = 1,
        interval: float = 1.0,
        on_result: Callable[[Message, str], None] | None = None,
    ) -> None:
        if batch < 1 or concurrency < 1 or interval <= 0:
            raise ValueError("batch and concurrency must be >= 1 and interval > 0.")
        self.batch = batch
        self.concurrency = concurrency
        self.interval = interval
        self.on_result = on_result
        self.stats = WorkerStats()
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._in_flight = 0
        self._last_sweep = -SWEEP_EVERY

    def stop(self) -> None:
        """Finish what is being sent, give back the rest, and return from run()."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()

    def run(self, *, once: bool = False) -> WorkerStats:
        """Deliver due messages until stopped, or, with ``once``, until none is due."""
        sender = Sender(pool_size=self.concurrency)
        jobs: queue.Queue[tuple[Message, Slot | None] | None] = queue.Queue()
        threads = [
            threading.Thread(target=self._work, args=(sender, jobs), name=f"txmail-worker-{i}")
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        try:
            self._feed(sender, jobs, once)
        finally:
            self._stopping.set()
            for _ in threads:
                jobs.put(None)
            for thread in threads:
                thread.join()
            sender.close()
        return self.stats

    def _feed(
        self, sender: Sender, jobs: queue.Queue[tuple[Message, Slot | None] | None], once: bool
    ) -> None:
        # Keep at most two messages per thread claimed ahead of sending, and claim again
        # once at most one per thread is left: batches of at least one per thread, so
        # claims and quota transactions are shared by several messages.
        capacity = 2 * self.concurrency
        while not self._stopping.is_set():
            with self._changed:
                while self._in_flight > self.concurrency and not self._stopping.is_set():
                    self._changed.wait(self.interval)
                free = capacity - self._in_flight
            if self._stopping.is_set():
                return
            now = time.monotonic()
            sweep = now - self._last_sweep >= SWEEP_EVERY
            if sweep:
                self._last_sweep = now
            claimed = claim_batch(min(self.batch, free), sweep=sweep)
            if claimed:
                slots = sender.pace(claimed)  # one quota transaction for the batch
                with self._changed:
                    self._in_flight += len(claimed)
                for message in claimed:
                    jobs.put((message, slots.get(message.pk)))
                continue
            with self._changed:
                if once and self._in_flight == 0:
                    return
                # Nothing due: wait for a thread to finish (it may have queued a
                # retry) or for the next poll.
                self._changed.wait(0.05 if once else self.interval)
            # Idle: drop a database connection that broke or outlived CONN_MAX_AGE
            # (not on every claim: with CONN_MAX_AGE = 0 that reconnects each time).
            close_old_connections()

    def _work(self, sender: Sender, jobs: queue.Queue[tuple[Message, Slot | None] | None]) -> None:
        try:
            while (job := jobs.get()) is not None:
                message, slot = job
                try:
                    self._send(sender, message, slot)
                finally:
                    with self._changed:
                        self._in_flight -= 1
                        self._changed.notify_all()
        finally:
            connections.close_all()

    def _send(self, sender: Sender, message: Message, slot: Slot | None) -> None:
        if self._stopping.is_set():
            release(message)
            outcome = "released"
        elif slot is None:
            outcome = "retrying"  # given back for a later slot, or moved to a fallback
        else:
            try:
                outcome = "sent" if sender.attempt(message, slot=slot) else "retrying"
            except TxMailError:
                outcome = "failed"
            except Exception:
                # attempt() records unexpected errors itself; this is a database outage.
                logger.exception("Message %s: could not record the attempt", message.pk)
                outcome = "failed"
        with self._changed:
            setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        if self.on_result:
            self.on_result(message, outcome)
