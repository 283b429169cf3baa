"""Signals django-txmail sends.

``message_sent(sender=Message, message=..., result=SendResult)`` — the
provider accepted a message.

``delivery_event(sender=DeliveryEvent, event=..., message=...)`` — a
delivery event was recorded from a provider's webhook.
"""

from django.dispatch import Signal

message_sent = Signal()
delivery_event = Signal()
