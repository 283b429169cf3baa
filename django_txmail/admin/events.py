"""Delivery events in the admin (all of them; each message shows its own timeline).

The events table grows faster than the outbox (several events per
message), so its list pages without counting either, newest first on the
``occurred_at`` index, with filters that cost no query to list.
"""

from __future__ import annotations

from django.contrib import admin

from ..models import DeliveryEvent
from .filters import ProviderFilter
from .paginators import CountlessList


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(CountlessList, admin.ModelAdmin):
    list_display = ["occurred_at", "type", "recipient", "provider", "message", "received_at"]
    list_filter = ["type", ProviderFilter, ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=provider_event_id", "=provider_message_id", "recipient"]
    ordering = ["-occurred_at", "-id"]
    show_facets = admin.ShowFacets.NEVER
    raw_id_fields = ["message"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
