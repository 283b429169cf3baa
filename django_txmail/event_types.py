"""The normalized delivery event types: our one vocabulary for what providers report.

Adapters translate each provider's own event names into these (anything
they do not know becomes ``unknown``); ``DeliveryEvent.Type`` is built from
this enum, so the two can never disagree. It imports nothing of Django, so
provider adapters may use it.
"""

from __future__ import annotations

import enum


class EventType(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REJECTED = "rejected"
    OPENED = "opened"
    CLICKED = "clicked"
    UNSUBSCRIBED = "unsubscribed"
    FAILED = "failed"
    UNKNOWN = "unknown"
