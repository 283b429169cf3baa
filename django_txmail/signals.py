"""Signals django-txmail sends.

``message_sent(sender=Message, message=..., result=SendResult)`` — the
provider accepted a message.

``delivery_event(sender=DeliveryEvent, event=..., message=...)`` — a
delivery event was recorded from a provider's webhook.

``message_suppressed(sender=Message, message=..., recipients={address: reason})``
— recipients of a message were taken off it because they are on the
suppression list (``message.status`` is "suppressed" when none was left).
Sent once the message is recorded (after the caller's transaction commits).

``grant_status_changed(sender=Grant, grant=..., previous=..., status=...)`` —
a connected mailbox's grant became valid, expired or revoked (a webhook, a
reconnect, a disconnect, ``txmail_grants``). An app emails the user to
reconnect when ``status`` is not "valid".
"""

from django.dispatch import Signal

message_sent = Signal()
delivery_event = Signal()
message_suppressed = Signal()
grant_status_changed = Signal()
