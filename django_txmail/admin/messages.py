"""The outbox in the admin: every message, read-only, with its attempts and events."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ..delivery import Sender
from ..exceptions import TxMailError
from ..models import Attempt, DeliveryEvent, Message, MessageAttachment
from ..scheduling import cancel
from .base import ReadOnlyInline


class AttachmentInline(ReadOnlyInline):
    model = MessageAttachment
    fields = ["position", "filename", "mimetype", "size", "inline", "content_id", "sha256"]


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "outcome",
        "http_status",
        "error_type",
        "error_message",
        "request_id",
    ]


class EventInline(ReadOnlyInline):
    model = DeliveryEvent
    verbose_name_plural = _("delivery events (timeline)")
    fields = [
        "occurred_at",
        "type",
        "recipient",
        "bounce_type",
        "reason",
        "click_url",
        "provider_type",
        "provider_event_id",
    ]
    ordering = ["occurred_at", "id"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "subject",
        "recipients",
        "from_address",
        "status",
        "route",
        "provider",
        "attempts",
        "created_at",
    ]
    list_filter = ["status", "route", "provider"]
    search_fields = ["=id", "subject", "from_address", "=provider_message_id", "=idempotency_key"]
    date_hierarchy = "created_at"
    list_select_related = False
    show_full_result_count = False
    inlines = [AttachmentInline, AttemptInline, EventInline]
    actions = ["cancel_messages"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "status",
                    "recipient_status",
                    "route",
                    "provider",
                    "sending_domain",
                    "grant",
                ]
            },
        ),
        (
            _("Addresses"),
            {
                "fields": [
                    "from_display",
                    "to_display",
                    "cc_display",
                    "bcc_display",
                    "reply_to_display",
                ]
            },
        ),
        (
            _("Content"),
            {
                "fields": [
                    "subject",
                    "text_body",
                    "html_body",
                    "headers",
                    "metadata",
                    "tags",
                    "options",
                    "send_at",
                ]
            },
        ),
        (
            _("Delivery"),
            {
                "fields": [
                    "idempotency_key",
                    "provider_message_id",
                    "provider_schedule_id",
                    "provider_request_id",
                    "attempts",
                    "next_attempt_at",
                    "last_error",
                    "last_error_type",
                    "resent_from",
                    "created_at",
                    "sent_at",
                    "updated_at",
                ]
            },
        ),
    ]

    def get_readonly_fields(self, request, obj=None):
        return [f for fields in (fs[1]["fields"] for fs in self.fieldsets) for f in fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_cancel_permission(self, request) -> bool:
        return request.user.has_perm("django_txmail.cancel_message")

    @admin.action(description=_("Cancel selected messages not sent yet"), permissions=["cancel"])
    def cancel_messages(self, request, queryset):
        cancelled, refused = 0, []
        sender = Sender(pool_size=1)
        try:
            for message in queryset:
                try:
                    cancel(message, sender=sender)
                    cancelled += 1
                except TxMailError as exc:
                    refused.append(str(exc))
        finally:
            sender.close()
        if cancelled:
            self.message_user(
                request,
                ngettext("Cancelled %d message.", "Cancelled %d messages.", cancelled) % cancelled,
                messages.SUCCESS,
            )
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    @staticmethod
    def _addresses(values):
        return (
            format_html_join(
                ", ", "{} &lt;{}&gt;", ((v.get("name") or "", v["email"]) for v in values)
            )
            or "-"
        )

    @admin.display(description=_("recipients"))
    def recipients(self, obj: Message) -> str:
        return obj.recipient_summary

    @admin.display(description=_("from"))
    def from_display(self, obj: Message):
        return self._addresses([obj.from_email])

    @admin.display(description=_("to"))
    def to_display(self, obj: Message):
        return self._addresses(obj.to)

    @admin.display(description=_("cc"))
    def cc_display(self, obj: Message):
        return self._addresses(obj.cc)

    @admin.display(description=_("bcc"))
    def bcc_display(self, obj: Message):
        return self._addresses(obj.bcc)

    @admin.display(description=_("reply to"))
    def reply_to_display(self, obj: Message):
        return self._addresses(obj.reply_to)
