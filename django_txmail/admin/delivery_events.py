"""Delivery events in the admin (all of them; each message shows its own timeline).

The events table grows faster than the outbox (several events per
message), so its list pages without counting either, newest first on the
``occurred_at`` index, with filters that cost no query to list. Its
message column links by ``message_id``, so a page is one query whatever
its size (no join, no query per row).

The provider's payload (``raw``) is never decoded with the row: it is read
as text for the one event shown, and shown indented only when it is small
and shallow enough, so no stored payload can break a page.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db.models import TextField
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_txmail.admin.filters import ProviderFilter
from django_txmail.admin.paginators import CountlessList
from django_txmail.models import DeliveryEvent, WebhookPayload
from django_txmail.tracking.depth import MAX_JSON_DEPTH, nesting_depth

#: The most of a payload an event's page shows.
SHOWN_PAYLOAD_CHARS = 100_000


def payload_display(text: str | None):
    """A stored JSON payload (as text) for display: indented, or raw and cut when unusual."""
    if text is None:
        return "-"
    if len(text) > SHOWN_PAYLOAD_CHARS or nesting_depth(text.encode()) > MAX_JSON_DEPTH:
        return format_html(
            '<p>{}</p><pre class="txmail-json">{}</pre>',
            _("This payload is too large or nests too deeply to show in full; its beginning:"),
            text[:2000],
        )
    return format_html(
        '<pre class="txmail-json">{}</pre>',
        json.dumps(json.loads(text), indent=2, ensure_ascii=False),
    )


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

    def get_queryset(self, request):
        return super().get_queryset(request).defer("raw")

    def get_fields(self, request, obj=None):
        hidden = {"raw", "payload"}
        return [f.name for f in self.model._meta.fields if f.name not in hidden] + ["provider_data"]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("payload"))
    def provider_data(self, obj: DeliveryEvent):
        """The event's own payload, or the one it shares with the other events of its item."""
        if obj.payload_id is None:
            rows, pk = DeliveryEvent.objects, obj.pk
        else:
            rows, pk = WebhookPayload.objects, obj.payload_id
        return payload_display(
            rows.filter(pk=pk).values_list(Cast("raw", TextField()), flat=True).first()
        )

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
