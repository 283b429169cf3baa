"""Handing a recorded message to whatever delivers it.

A message just recorded (or queued again for a retry, or resent) is sent
by one of three things, decided here:

* a Django Task, when ``TXMAIL["DELIVERY"]`` is ``"task"`` (enqueued when
  the transaction commits);
* this process once the caller's transaction commits, when it was recorded
  inside one (a rolled-back transaction sends nothing);
* this process now, which the caller does itself (``deliver_quietly``, or
  the backend's own batch).

Held mail waits in the outbox until it is due, for ``txmail_worker``; a
message recorded "suppressed" is sent by nothing (``message_suppressed`` says so).
"""

from __future__ import annotations

import logging

from django.core.exceptions import ImproperlyConfigured
from django.db import router, transaction

from django_txmail.checks import task_delivery_error
from django_txmail.conf import get_settings
from django_txmail.exceptions import TxMailError
from django_txmail.models import Message
from django_txmail.sending.attempt import Sender
from django_txmail.signals import message_suppressed

logger = logging.getLogger("django_txmail.outbox.dispatch")


def in_caller_transaction() -> bool:
    """True inside an atomic block of the caller's (not one of Django's test cases)."""
    connection = transaction.get_connection(router.db_for_write(Message))
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def delivery_mode() -> tuple[bool, bool]:
    """How a message recorded now is delivered: ``(by_task, after_commit)``.

    Asked before anything is recorded: when ``TXMAIL["DELIVERY"]`` is "task"
    and no task can be enqueued (no Tasks framework, an unknown or broken
    ``TXMAIL["TASK_BACKEND"]``) it raises ``ImproperlyConfigured``, so a send
    that raises leaves no row behind for a worker to send later.
    """
    config = get_settings()
    by_task = config.delivery == "task"
    if by_task:
        error = task_delivery_error(config)
        if error is not None:
            raise ImproperlyConfigured(f"{error.msg} {error.hint or ''}".strip())
        from django_txmail.sending import tasks  # noqa: F401  (binds the delivery task)
    return by_task, not by_task and in_caller_transaction()


def hand_over(
    message: Message, *, by_task: bool, after_commit: bool, timeout: float | None = None
) -> bool:
    """Have a recorded message delivered later: by a task, or once the caller's transaction
    commits (if it is queued). Returns whether it was handed over; if not, the caller
    sends it now (``deliver_quietly``) or it waits in the outbox."""
    if not (by_task or (after_commit and message.status == Message.Status.QUEUED)):
        return False
    hand_over_all([message], by_task=by_task, after_commit=after_commit, timeout=timeout)
    return True


def hand_over_all(
    messages: list[Message], *, by_task: bool, after_commit: bool, timeout: float | None = None
) -> None:
    """Have the messages one call recorded delivered once the transaction commits, with
    one callback for them all: their tasks enqueued together (``enqueue_deliveries``:
    one transaction where the task backend keeps tasks in a database), or, recorded
    inside the caller's transaction, the queued ones sent through one HTTP session.
    Messages held until later wait in the outbox; with neither mode, nothing is done."""
    using = router.db_for_write(Message)
    if by_task:
        from django_txmail.sending.tasks import (
            enqueue_deliveries,  # imports the Tasks framework only when used
        )

        transaction.on_commit(lambda: enqueue_deliveries(messages), using=using)
    elif after_commit:
        queued = [m for m in messages if m.status == Message.Status.QUEUED]
        if queued:
            transaction.on_commit(lambda: _deliver_all_quietly(queued, timeout), using=using)


def announce_suppressed(taken_off: list[tuple[Message, dict[str, str]]]) -> None:
    """Send ``message_suppressed`` for each newly recorded message that had recipients
    taken off (address → reason), once the transaction that recorded it commits."""
    if not taken_off:
        return

    def announce() -> None:
        for message, recipients in taken_off:
            message_suppressed.send_robust(sender=Message, message=message, recipients=recipients)

    transaction.on_commit(announce, using=router.db_for_write(Message))


def _deliver_all_quietly(messages: list[Message], timeout: float | None) -> None:
    sender = Sender(pool_size=1, timeout=timeout)
    try:
        for message in messages:
            deliver_quietly(message, sender)
    finally:
        sender.close()


def deliver_quietly(
    message: Message,
    sender: Sender | None = None,
    *,
    claimed: bool = False,
    timeout: float | None = None,
) -> None:
    """Send ``message`` for a caller that has no one to raise to (after a commit, an admin
    action): a permanent failure is recorded on the message and logged, not raised.

    ``claimed``: the message was recorded already claimed by this process, so
    this makes the attempt; otherwise it is claimed first, as a worker would.
    """
    own = sender is None
    sender = sender or Sender(pool_size=1, timeout=timeout)
    try:
        if claimed:
            sender.attempt(message)
        else:
            sender.deliver(message)
    except TxMailError:
        logger.warning("Message %s was not sent", message.pk, exc_info=True)
    finally:
        if own:
            sender.close()
