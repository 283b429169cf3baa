"""Delivery through Django's Tasks framework: ``TXMAIL["DELIVERY"] = "task"``.

The backend records each message, then calls :func:`enqueue_delivery` when
the transaction commits. That enqueues one :func:`deliver_message` task on
the task backend ``TXMAIL["TASK_BACKEND"]`` (an alias of ``TASKS``); a worker
of that backend (django-tasks-db's ``db_worker``, django-rq's ``rqworker``,
...) runs it, and the task makes one attempt through a pooled session.

The outbox stays the source of truth; a task only says "look at this
message now". So:

* a transient failure leaves the message queued with its retry time, and
  the task enqueues itself again for that time when the backend can defer
  tasks (``supports_defer``);
* mail held in the outbox until ``send_at`` gets a task deferred to then;
* whatever a task cannot carry — a backend that cannot defer, a broker that
  is down at enqueue time, a worker that died — is picked up by
  ``manage.py txmail_worker``, which sends every message that is due;
* a task that runs twice, or after another sender took the message, finds
  it claimed or sent and does nothing: a claim lets one sender at a time
  send a message.

The module imports the Tasks framework — ``django.tasks`` on Django 6.0+,
the ``django_tasks`` backport on 5.2 — and binds :func:`deliver_message` to
the configured backend, so it is imported only when task delivery is used.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import django
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router, transaction
from django.utils import timezone

from django_txmail.conf import get_settings
from django_txmail.exceptions import TxMailError
from django_txmail.flow import PRIORITIES, TASK_PRIORITY
from django_txmail.models import Message
from django_txmail.outbox import states
from django_txmail.sending.attempt import Sender

if django.VERSION >= (6, 0):
    from django.tasks import task, task_backends
else:
    try:
        from django_tasks import task, task_backends
    except ImportError as exc:
        raise ImproperlyConfigured(
            "TXMAIL['DELIVERY'] = 'task' needs Django's Tasks framework, which Django 5.2 "
            "has as a backport: `pip install django-tasks` (or django-txmail[tasks]) and add "
            "'django_tasks' to INSTALLED_APPS."
        ) from exc

logger = logging.getLogger("django_txmail.sending.tasks")

#: Connections kept open per provider host by one task thread.
POOL_SIZE = 4

_local = threading.local()


def _sender() -> Sender:
    """This thread's Sender, kept between tasks so connections are reused.

    Threaded workers run tasks in several threads, so each thread has its
    own. A change of ``TXMAIL`` (tests) replaces it.
    """
    config = get_settings()
    if getattr(_local, "config", None) is not config:
        if getattr(_local, "sender", None) is not None:
            _local.sender.close()
        _local.sender, _local.config = Sender(POOL_SIZE), config
    return _local.sender


def _on_task_backend(function: Any) -> Any:
    """``@task`` on the backend ``TXMAIL["TASK_BACKEND"]``, with a clear error if it is unknown."""
    alias = get_settings().task_backend
    try:
        return task(backend=alias)(function)
    except task_backends.exception_class as exc:
        raise ImproperlyConfigured(
            f"TXMAIL['TASK_BACKEND'] is {alias!r}, which is not a usable TASKS backend ({exc}). "
            "Add it to TASKS or point TXMAIL['TASK_BACKEND'] at one that is there."
        ) from exc


@_on_task_backend
def deliver_message(message_id: str) -> None:
    """Make one attempt at a recorded message; enqueue the next one if it is retried.

    A permanent failure is recorded on the message (status "failed", with the
    reason) and not raised, so the task backend does not retry it on its own.
    """
    message = Message.objects.filter(pk=message_id).first()
    if message is None:
        logger.info("Message %s is gone; nothing to deliver", message_id)
        return
    if _waiting(message):
        _enqueue(message, message.next_attempt_at)  # ran early: come back when it is due
        return
    try:
        _sender().deliver(message)
    except TxMailError as exc:
        logger.info("Message %s was not sent: %s", message.pk, exc)
        return
    if message.status == Message.Status.QUEUED and message.next_attempt_at is not None:
        _enqueue(message, message.next_attempt_at)  # a transient failure: the retry


def enqueue_delivery(message: Message, *, quiet: bool = True) -> bool:
    """Enqueue the task that delivers a newly recorded message.

    A queued message gets a task now; one held in the outbox until its
    ``send_at`` gets a task deferred to then, or is left to ``txmail_worker``
    when the backend cannot defer. If enqueueing fails (the broker is down)
    the error is logged and the message stays queued: ``txmail_worker`` sends
    queued messages that no task took after a grace period, so it is not lost.
    Returns whether its task has already run (a backend that runs tasks as they are
    enqueued): the row, not ``message``, then says what became of it.
    """
    held = message.status == Message.Status.SCHEDULED and message.next_attempt_at is not None
    if message.status == Message.Status.QUEUED or held:
        return _enqueue(message, message.next_attempt_at, quiet=quiet)
    return False


def enqueue_deliveries(messages: list[Message]) -> None:
    """Enqueue the delivery tasks of the messages one call recorded, in as few round
    trips as the task backend allows.

    The Tasks API enqueues one task at a time. A backend that keeps its tasks
    in one of this project's databases (django-tasks-db's ``DatabaseBackend``)
    has them all written in one transaction: one commit per call, not one per
    message. If that transaction fails, no task of the call is enqueued, the
    error is logged, and ``txmail_worker`` sends the messages (as when a
    broker is down). Other backends (RQ: a few Redis commands per task) are
    called once per message. A backend that runs each task as it is enqueued (Django's
    ``ImmediateBackend``) has sent the messages by the time this returns: their
    instances then read their rows (``states.follow``), so ``msg.txmail`` says so.
    """
    database = _task_database(deliver_message.using(backend=get_settings().task_backend))
    if database is None:
        ran = [message for message in messages if enqueue_delivery(message)]
        try:
            states.follow(ran)
        except DatabaseError:
            # After the commit: the mail went, only what the caller is told lags behind.
            logger.warning("Could not read back the messages the tasks sent", exc_info=True)
        return
    try:
        with transaction.atomic(using=database):
            for message in messages:
                enqueue_delivery(message, quiet=False)
    except Exception:
        logger.error(
            "Could not enqueue the delivery tasks of %d message(s) on task backend %r; they "
            "stay in the outbox and txmail_worker will send them when they are due",
            len(messages),
            get_settings().task_backend,
            exc_info=True,
        )


def _task_database(delivery: Any) -> str | None:
    """The database alias a task backend writes its tasks to, if it is one of ours."""
    try:
        from django_tasks_db.backend import DatabaseBackend
        from django_tasks_db.models import DBTaskResult
    except ImportError:
        return None
    if not isinstance(delivery.get_backend(), DatabaseBackend):
        return None
    return router.db_for_write(DBTaskResult)


def _waiting(message: Message) -> bool:
    """True when the message waits in the outbox for a time still to come."""
    return (
        message.status in states.WAITING
        and message.next_attempt_at is not None
        and message.next_attempt_at > timezone.now()
    )


def _enqueue(message: Message, run_after: datetime | None, *, quiet: bool = True) -> bool:
    """Enqueue the task for ``message``, deferred to ``run_after`` if that is to come;
    return whether the task has already run.

    ``quiet``: an error is logged (the message stays in the outbox for
    ``txmail_worker``) rather than raised.
    """
    alias = get_settings().task_backend
    deferred = run_after is not None and run_after > timezone.now()
    try:
        delivery = deliver_message.using(backend=alias)
        if delivery.get_backend().supports_priority:
            # The message's lane, where the backend runs higher priorities first.
            priority = TASK_PRIORITY[PRIORITIES[message.priority]]
            delivery = delivery.using(priority=priority)
        if deferred:
            if not delivery.get_backend().supports_defer:
                logger.info(
                    "Message %s waits until %s; task backend %r cannot defer tasks, "
                    "so txmail_worker will send it",
                    message.pk,
                    run_after,
                    alias,
                )
                return False
            delivery = delivery.using(run_after=_next_whole_second(run_after))
        return bool(getattr(delivery.enqueue(str(message.pk)), "is_finished", False))
    except Exception:
        if not quiet:
            raise
        # Any broker error: the message is safe in the outbox either way.
        logger.error(
            "Message %s: could not enqueue its delivery task on task backend %r; it stays "
            "in the outbox and txmail_worker will send it when it is due",
            message.pk,
            alias,
            exc_info=True,
        )
        return False


def _next_whole_second(when: datetime) -> datetime:
    """``when`` rounded up to a whole second.

    RQ stores run times in whole seconds, rounded down, and would run the
    task up to a second before the message is due.
    """
    if when.microsecond == 0:
        return when
    return when.replace(microsecond=0) + timedelta(seconds=1)
