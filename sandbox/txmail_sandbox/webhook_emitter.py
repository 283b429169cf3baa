"""Posting signed delivery notifications back to the app, as providers do.

Without webhooks a message in the sandbox stops at "sent". The emitter
closes the loop: for every message a provider emulator accepts, it asks that
provider's *format* (``nylas_notifications.py``, ...) what the provider would
report — the outcome comes from the recipients' addresses, see
``mailbox_simulator.py`` — and posts each notification to the provider's
webhook targets, signed as the provider signs (lowercase hex HMAC-SHA256 of
the raw body in the provider's header).

Providers deliver at least once, late and out of order, and an app that
only ever sees tidy webhooks learns nothing. So, as the options say:

* every notification waits ``delay`` seconds first;
* a non-2xx answer or a network error is retried, ``max_attempts`` in all,
  ``retry_delay`` (a minute by default, as providers spread retries over
  minutes) doubling each time; the format renders each attempt
  (Nylas counts it in ``webhook_delivery_attempt``, the ``id`` stays);
* ``duplicates`` is the share of notifications posted twice, same id;
* ``reorder`` spreads notifications over ``reorder_window`` extra seconds,
  so they arrive shuffled (a complaint before its delivery, ...).

Which notifications are duplicated and where they land is reproducible from
``seed`` whatever the thread scheduling and however fast the machine is, in
the way of the fault plan: each decision is a hash of the seed, the
notification's type and position, the target's place among the provider's
targets (the configured one first, then the registered ones in order; not
its URL, whose port a test server picks anew each run) and the message's
*identity* — what the format says makes two sends the same message (sender,
recipients, subject: not the ids a client generates), counted so that the
n-th identical message decides alike.

Posting happens on one background thread, so a send is never held up, and
in due order. Every post and the app's answer is logged
(``SandboxServer.webhook_log``, ``GET /_sandbox/webhooks``).
``flush(timeout)`` waits until nothing is left to post; ``stop()`` drops
what is left and interrupts a post in progress rather than wait for it.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from .state import ReceivedMessage
from .webhook_values import (
    Notification,
    WebhookDelivery,
    WebhookFormat,
    WebhookOptions,
    WebhookTarget,
)

logger = logging.getLogger("txmail_sandbox")

USER_AGENT = "txmail-sandbox-webhooks"
_RESPONSE_KEPT = 2000  # characters of the app's answer kept in the log


@dataclass(order=True)
class _Job:
    """One post to make. Ordered by ``due`` (monotonic clock), then by
    ``sequence``, so jobs due at the same time go in the order queued."""

    due: float
    sequence: int
    provider: str = field(compare=False)
    notification: Notification = field(compare=False)
    target: WebhookTarget = field(compare=False)
    generation: int = field(compare=False)
    attempt: int = field(default=1, compare=False)
    duplicate: bool = field(default=False, compare=False)


class WebhookEmitter:
    """Targets per provider, the queue of notifications and the thread posting them.

    ``formats`` maps a provider name (``ReceivedMessage.provider``) to its
    :class:`WebhookFormat`; messages of other providers emit nothing. A
    provider has at most one configured target (:meth:`set_target`) plus
    any number registered through its API (:meth:`register`).
    """

    def __init__(
        self,
        formats: Mapping[str, WebhookFormat],
        options: WebhookOptions | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.formats = dict(formats)
        self._options = options or WebhookOptions()
        self._wall_clock = wall_clock
        self._clock = clock
        self._cond = threading.Condition()
        self._configured: dict[str, WebhookTarget] = {}
        self._registered: dict[str, list[WebhookTarget]] = {}
        self._queue: list[_Job] = []
        self._sequence = itertools.count()
        self._seen: dict[str, int] = {}
        self._log: list[WebhookDelivery] = []
        self._in_flight = 0
        self._generation = 0
        self._token: object | None = None
        self._thread: threading.Thread | None = None
        self._connection: http.client.HTTPConnection | None = None

    # -- configuration -------------------------------------------------------

    @property
    def options(self) -> WebhookOptions:
        return self._options

    def set_options(self, options: WebhookOptions) -> None:
        """Use ``options`` from now on; seeded decisions start from scratch."""
        with self._cond:
            self._options = options
            self._seen.clear()

    def set_target(self, provider: str, target: WebhookTarget | None) -> None:
        """Post ``provider``'s notifications to ``target`` (None: stop)."""
        self._known(provider)
        with self._cond:
            if target is None:
                self._configured.pop(provider, None)
            else:
                self._configured[provider] = target

    def register(self, provider: str, target: WebhookTarget) -> None:
        """Add a webhook registered through the provider's API."""
        self._known(provider)
        with self._cond:
            self._registered.setdefault(provider, []).append(target)

    def unregister(self, provider: str, target: WebhookTarget) -> None:
        """Remove a webhook registered through the provider's API."""
        with self._cond:
            self._registered[provider].remove(target)

    def registered(self, provider: str) -> list[WebhookTarget]:
        with self._cond:
            return list(self._registered.get(provider, []))

    def targets(self, provider: str) -> list[WebhookTarget]:
        """Every target of ``provider``: the configured one first."""
        with self._cond:
            configured = [self._configured[provider]] if provider in self._configured else []
            return configured + self._registered.get(provider, [])

    def _known(self, provider: str) -> None:
        if provider not in self.formats:
            known = ", ".join(sorted(self.formats)) or "none"
            raise ValueError(
                f"The sandbox emits no webhooks for {provider!r} (it does for {known})."
            )

    # -- emitting ------------------------------------------------------------

    def accept(self, message: ReceivedMessage) -> None:
        """Queue the notifications for a newly accepted message.

        Called from the handler thread that accepted it; never raises, so a
        notification problem cannot fail the send.
        """
        try:
            self._accept(message)
        except Exception:
            logger.exception("sandbox webhooks: cannot emit for message %s", message.id)

    def _accept(self, message: ReceivedMessage) -> None:
        form = self.formats.get(message.provider)
        if form is None or not self.targets(message.provider):
            return
        self.emit(
            message.provider,
            form.notifications(message, self._wall_clock()),
            form.identity(message),
        )

    def emit(self, provider: str, notifications: list[Notification], identity: str) -> None:
        """Queue ``notifications`` for every target of ``provider`` that wants them
        (a message's, or ones not about a message, such as Nylas grant events)."""
        with self._cond:
            options, now = self._options, self._clock()
            seen = self._seen.get(identity, 0)
            self._seen[identity] = seen + 1
            for place, target in enumerate(self.targets(provider)):
                for index, notification in enumerate(notifications):
                    if not target.wants(notification.type):
                        continue
                    key = f"{identity}\0{seen}\0{index}\0{notification.type}\0{place}"
                    self._schedule(provider, notification, target, key, options, now)
            self._cond.notify_all()

    def _schedule(
        self,
        provider: str,
        notification: Notification,
        target: WebhookTarget,
        key: str,
        options: WebhookOptions,
        now: float,
    ) -> None:
        """Queue a notification, and its duplicate if the seed says so (lock held)."""
        spread = options.reorder_window if options.reorder else 0.0
        copies = [(False, _unit(options.seed, key, "at"))]
        if _unit(options.seed, key, "duplicate") < options.duplicates:
            copies.append((True, _unit(options.seed, key, "duplicate at")))
        for duplicate, point in copies:
            job = _Job(
                now + options.delay + point * spread,
                next(self._sequence),
                provider,
                notification,
                target,
                self._generation,
                duplicate=duplicate,
            )
            heapq.heappush(self._queue, job)

    # -- inspection ------------------------------------------------------------

    @property
    def log(self) -> list[WebhookDelivery]:
        """Every post so far, oldest first (a snapshot)."""
        with self._cond:
            return list(self._log)

    @property
    def pending(self) -> int:
        """Posts still to make (retries included) or in progress."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything queued has been posted (with its retries).

        Raises TimeoutError if that takes longer than ``timeout`` seconds.
        """
        deadline = self._clock() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - self._clock()
                if left <= 0:
                    raise TimeoutError(
                        f"{len(self._queue) + self._in_flight} webhook posts still pending "
                        f"after {timeout:g} s; is the webhook target answering?"
                    )
                self._cond.wait(left)

    def reset(self) -> None:
        """Forget the log, pending posts, registered webhooks and seeded
        counts; configured targets and options stay."""
        with self._cond:
            self._generation += 1
            self._queue.clear()
            self._log.clear()
            self._registered.clear()
            self._seen.clear()
            self._cond.notify_all()

    def clear(self) -> None:
        """Like :meth:`reset`, and also no configured targets, default options."""
        with self._cond:
            self._configured.clear()
            self._options = WebhookOptions()
        self.reset()

    # -- the posting thread ----------------------------------------------------

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            token = self._token = object()
            self._thread = threading.Thread(
                target=self._run, args=(token,), name="txmail-sandbox-webhooks", daemon=True
            )
        self._thread.start()

    def stop(self) -> None:
        """Drop pending posts and end the thread, interrupting a post in progress."""
        with self._cond:
            thread, self._thread, self._token = self._thread, None, None
            self._generation += 1
            self._queue.clear()
            connection = self._connection
            self._cond.notify_all()
        if connection is not None and connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        if thread is not None:
            thread.join(timeout=5)

    def _run(self, token: object) -> None:
        """Post due jobs until :meth:`stop` takes ``token`` away."""
        while True:
            with self._cond:
                job = self._next_job(token)
                if job is None:
                    return
                self._in_flight += 1
            record = None
            try:
                record = self._post(job)
            except Exception:
                logger.exception("sandbox webhooks: cannot post %s", job.notification.id)
            finally:
                with self._cond:
                    self._in_flight -= 1
                    if record is not None and job.generation == self._generation:
                        self._finished(job, record)
                    self._cond.notify_all()

    def _next_job(self, token: object) -> _Job | None:
        """The next due job, waiting for it; None once stopped (lock held)."""
        while self._token is token:
            if self._queue:
                wait = self._queue[0].due - self._clock()
                if wait <= 0:
                    return heapq.heappop(self._queue)
                self._cond.wait(wait)
            else:
                self._cond.wait()
        return None

    def _finished(self, job: _Job, record: WebhookDelivery) -> None:
        """Log a post and queue its retry if it failed (lock held)."""
        self._log.append(record)
        backoff = self._options.retry_after(job.attempt)
        if record.ok or backoff is None:
            return
        retry = _Job(
            self._clock() + backoff,
            next(self._sequence),
            job.provider,
            job.notification,
            job.target,
            job.generation,
            attempt=job.attempt + 1,
            duplicate=job.duplicate,
        )
        heapq.heappush(self._queue, retry)

    def _post(self, job: _Job) -> WebhookDelivery:
        form = self.formats[job.provider]
        body = form.body(job.notification, job.attempt)
        signature = hmac.new(job.target.secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            form.signature_header: signature,
        }
        posted_at, started = datetime.now(UTC), time.perf_counter()
        status, answer, error = None, "", None
        url = urlsplit(job.target.url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        connection = kind(url.hostname, url.port, timeout=self._options.timeout)
        with self._cond:
            self._connection = connection
        try:
            path = url.path or "/"
            connection.request("POST", f"{path}?{url.query}" if url.query else path, body, headers)
            response = connection.getresponse()
            status = response.status
            answer = response.read(_RESPONSE_KEPT * 4).decode("utf-8", "replace")[:_RESPONSE_KEPT]
        except (OSError, http.client.HTTPException) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._cond:
                self._connection = None
            connection.close()
        logger.debug("webhook %s %s -> %s", job.notification.type, job.target.url, status or error)
        return WebhookDelivery(
            provider=job.provider,
            notification_id=job.notification.id,
            type=job.notification.type,
            url=job.target.url,
            attempt=job.attempt,
            duplicate=job.duplicate,
            body=body,
            status=status,
            response=answer,
            error=error,
            posted_at=posted_at,
            duration=time.perf_counter() - started,
        )


def _unit(seed: int, key: str, purpose: str) -> float:
    """A number in [0, 1) that depends only on its arguments."""
    digest = hashlib.sha256(f"{seed}\0{purpose}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
