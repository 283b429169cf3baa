"""``TxMessage``: an EmailMultiAlternatives with django-txmail's extras as arguments.

Any ``EmailMessage`` can carry the same extras as plain attributes; this
class only makes them visible in the constructor. After sending,
``msg.txmail`` holds a :class:`TxMailResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.core.mail import EmailMultiAlternatives

EXTRAS = (
    "metadata",
    "tags",
    "send_at",
    "template",
    "template_vars",
    "language",
    "template_id",
    "merge_global_data",
    "track_opens",
    "track_clicks",
    "esp_extra",
    "idempotency_key",
    "reply_to_message_id",
    "grant_id",
    "provider",
    "ical_event",
    "stream_type",
    "stream",
    "priority",
    # django-anymail's names for what some providers carry and ours refuse
    # with UnsupportedFeature, accepted so an anymail app keeps its code.
    "merge_data",
    "merge_metadata",
    "merge_headers",
    "envelope_sender",
)


@dataclass
class TxMailResult:
    """What happened to a message handed to the backend."""

    message_id: UUID
    status: str
    provider: str
    provider_message_ids: list[str] = field(default_factory=list)
    recipients: dict[str, str] = field(default_factory=dict)  # email -> status
    #: Every Message recorded for it (several when the provider needs it split).
    message_ids: list[UUID] = field(default_factory=list)
    #: The recipients taken off it because they are on the suppression list, and why
    #: (hard_bounce, complaint, unsubscribe, manual); they show "suppressed" in ``recipients``.
    suppressed: dict[str, str] = field(default_factory=dict)
    #: False when its idempotency key named a message already in the outbox (or given to
    #: an earlier message of the same call): this message added nothing to the outbox
    #: and was not sent again, and ``message_id`` is that message.
    created: bool = True
    #: The ``Message`` row ``message_id`` names, as this call left it: what the call wrote,
    #: or the row itself where another writer got there first during the call (a delivery
    #: event, a task backend that runs each task as it is enqueued, another sender).
    #: ``refresh_from_db()`` shows what happened since: mail handed over on the caller's
    #: commit, a queued task, a retry, later events. It lives as long as ``msg``
    #: (about 3 kB beyond the message's own text). Typed ``Any``: this module sits below
    #: the models in the layers (``make imports``).
    message: Any = field(default=None, repr=False, compare=False)


class TxMessage(EmailMultiAlternatives):
    """``EmailMultiAlternatives`` that takes django-txmail's extras as keyword arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        extras = {name: kwargs.pop(name) for name in EXTRAS if name in kwargs}
        super().__init__(*args, **kwargs)
        for name in EXTRAS:
            setattr(self, name, extras.get(name))
        self.txmail: TxMailResult | None = None
