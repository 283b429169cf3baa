"""Cancelling messages that have not been sent yet.

A message waiting in the outbox ("queued" for a retry, or "scheduled" and
held until its ``send_at``) is cancelled in the database, in one statement
that cannot race a worker claiming it. A message the provider holds for
later ("scheduled" with a ``provider_schedule_id``) is cancelled through the
provider's API first, and marked cancelled only once the provider agrees.
"""

from __future__ import annotations

from django_txmail.exceptions import CannotCancel, ProviderAPIError
from django_txmail.models import Message
from django_txmail.outbox import states
from django_txmail.sending.attempt import Sender, route_of


def cancel(message: Message, *, sender: Sender | None = None) -> None:
    """Cancel ``message``; raise ``CannotCancel`` if it is no longer waiting to be sent."""
    message.refresh_from_db()
    if message.status == Message.Status.SCHEDULED and message.provider_schedule_id:
        _cancel_at_provider(message, sender)
    elif message.status in states.WAITING:
        if not states.cancel(message):
            message.refresh_from_db()
            raise CannotCancel(f"Message {message.pk} is {message.status} now; too late to cancel.")
    else:
        raise CannotCancel(
            f"Message {message.pk} is {message.status}; only queued or scheduled messages "
            "can be cancelled."
        )
    message.refresh_from_db()


def _cancel_at_provider(message: Message, sender: Sender | None) -> None:
    own = sender is None
    sender = sender or Sender(pool_size=1)
    try:
        adapter = sender.adapter(message.provider)
        request = adapter.build_cancel(route_of(message), message.provider_schedule_id)
        try:
            sender.transport.call(adapter, request, adapter.parse_cancel)
        except ProviderAPIError as exc:
            if exc.status in (400, 404):
                raise CannotCancel(
                    f"{message.provider} no longer holds message {message.pk} for later "
                    f"({exc}); it has probably been sent already."
                ) from exc
            raise
    finally:
        if own:
            sender.close()
    states.cancel(message, held_by_provider=True)
