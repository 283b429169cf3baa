"""Delivery events in the admin (all of them; each message shows its own timeline)."""

from __future__ import annotations

from django.contrib import admin

from ..models import DeliveryEvent


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(admin.ModelAdmin):
    list_display = ["occurred_at", "type", "recipient", "provider", "message", "received_at"]
    list_filter = ["type", "provider"]
    search_fields = ["=provider_event_id", "=provider_message_id", "recipient"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    raw_id_fields = ["message"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
