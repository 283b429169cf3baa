"""Delivery events in the admin (all of them; each message shows its own timeline).

The events table grows faster than the outbox (several events per
message), so its list pages without counting either, newest first on the
``occurred_at`` index, with filters that cost no query to list. Its
message column links by ``message_id``, so a page is one query whatever
its size (no join, no query per row).
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_txmail.admin.filters import ProviderFilter
from django_txmail.admin.paginators import CountlessList
from django_txmail.models import DeliveryEvent


@admin.register(DeliveryEvent)
class DeliveryEventAdmin(CountlessList, admin.ModelAdmin):
    list_display = ["occurred_at", "type", "recipient", "provider", "message_link", "received_at"]
    list_filter = ["type", ProviderFilter, ("occurred_at", admin.DateFieldListFilter)]
    search_fields = ["=provider_event_id", "=provider_message_id", "recipient"]
    search_help_text = _(
        "A recipient address or part of one, or the provider's event id or message id."
    )
    ordering = ["-occurred_at", "-id"]
    show_facets = admin.ShowFacets.NEVER
    raw_id_fields = ["message"]

    @admin.display(description=_("message"))
    def message_link(self, obj: DeliveryEvent):
        if obj.message_id is None:
            return "-"
        url = reverse(f"{self.admin_site.name}:django_txmail_message_change", args=[obj.message_id])
        return format_html('<a href="{}">{}</a>', url, obj.message_id)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
