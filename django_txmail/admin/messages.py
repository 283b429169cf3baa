"""The outbox in the admin: every message, read-only, with its attempts and events.

Built for a support team on a big table: the list never counts the table
(``OutboxPaginator``), every filter runs on an index and takes its choices
from small tables (``filters.py``), and no column follows a foreign key,
so a page is two short queries whatever its size. A message shows its HTML
in a sandboxed frame (``preview.py``), its text, attachments to download,
every attempt and the delivery-event timeline; resend, retry and cancel are
in ``actions.py``; the dashboard in ``dashboard.py``.
"""

from __future__ import annotations

import re
import unicodedata

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.forms.models import BaseInlineFormSet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from django_txmail.admin import dashboard
from django_txmail.admin.actions import MessageActions
from django_txmail.admin.base import ReadOnlyInline
from django_txmail.admin.filters import DomainFilter, ProviderFilter, StreamFilter, TemplateFilter
from django_txmail.admin.paginators import CountlessList
from django_txmail.admin.preview import preview_frame
from django_txmail.conf import get_settings
from django_txmail.models import Attempt, DeliveryEvent, Message, MessageAttachment
from django_txmail.outbox import states
from django_txmail.outbox.store import attachment_storage

#: Badge colour per status: good, on its way, bad, neutral.
BADGE = {
    Message.Status.DELIVERED: "good",
    Message.Status.SENT: "good",
    Message.Status.QUEUED: "waiting",
    Message.Status.SCHEDULED: "waiting",
    Message.Status.SENDING: "waiting",
    Message.Status.DEFERRED: "waiting",
    Message.Status.BOUNCED: "bad",
    Message.Status.COMPLAINED: "bad",
    Message.Status.REJECTED: "bad",
    Message.Status.FAILED: "bad",
    Message.Status.CANCELLED: "neutral",
    Message.Status.SUPPRESSED: "neutral",
}


def download_name(attachment: MessageAttachment) -> str:
    """A filename safe to offer for download: no folders, no control characters."""
    name = attachment.filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip(" .")
    return re.sub(r"\s+", " ", name)[:200] or f"attachment-{attachment.position}"


class AttachmentInline(ReadOnlyInline):
    model = MessageAttachment
    fields = ["position", "download", "mimetype", "size", "inline", "content_id", "sha256"]
    readonly_fields = fields

    @admin.display(description=_("file"))
    def download(self, obj: MessageAttachment):
        url = reverse(
            f"{self.admin_site.name}:django_txmail_message_attachment",
            args=[obj.message_id, obj.position],
        )
        return format_html('<a href="{}" download>{}</a>', url, download_name(obj))


class AttemptInline(ReadOnlyInline):
    model = Attempt
    fields = [
        "number",
        "provider",
        "started_at",
        "duration_ms",
        "outcome",
        "http_status",
        "error_type",
        "error_message",
        "request_id",
    ]


#: The most delivery events a message's page lists; the rest are a link away.
SHOWN_EVENTS = 100


class LatestEventsFormSet(BaseInlineFormSet):
    """A message's latest ``SHOWN_EVENTS`` events, oldest first: a page of bounded size."""

    def get_queryset(self):
        if not hasattr(self, "_latest"):
            events = super().get_queryset()
            latest = events.order_by("-occurred_at", "-id").values_list("pk", flat=True)
            self._latest = events.filter(pk__in=list(latest[:SHOWN_EVENTS]))
        return self._latest


class EventInline(ReadOnlyInline):
    model = DeliveryEvent
    formset = LatestEventsFormSet
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

    def get_queryset(self, request):
        # The payload is not shown here; never decode it (see delivery_events.py).
        return super().get_queryset(request).defer("raw")


@admin.register(Message)
class MessageAdmin(MessageActions, CountlessList, admin.ModelAdmin):
    list_display = [
        "subject",
        "recipients",
        "from_address",
        "status_badge",
        "route",
        "provider",
        "stream",
        "template",
        "attempts",
        "created_at",
    ]
    list_filter = [
        "status",
        "priority",
        StreamFilter,
        ProviderFilter,
        "route",
        DomainFilter,
        TemplateFilter,
        ("created_at", admin.DateFieldListFilter),
    ]
    search_fields = [
        "=id",
        "=provider_message_id",
        "=idempotency_key",
        "recipient_emails",
        "subject",
    ]
    search_help_text = _(
        "A recipient address or part of one with its @ (ann@, @example.com), words of the "
        "subject, our message id or the provider's."
    )
    list_select_related = False
    show_facets = admin.ShowFacets.NEVER
    inlines = [AttachmentInline, AttemptInline, EventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "id",
                    "status_badge",
                    "recipient_status",
                    "suppressed_display",
                    "stream",
                    "priority",
                    "route",
                    "provider",
                    "failover_from",
                    "failover_reason",
                    "sending_domain",
                    "grant",
                    "template_display",
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
                    "html_preview",
                    "text_display",
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
                    "failure_origin",
                    "resent_from",
                    "resends_display",
                    "events_display",
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

    def has_delete_permission(self, request, obj=None) -> bool:
        # Deleting here would leave the attachment files behind and drop mail still
        # on its way; ``manage.py txmail_cleanup`` deletes old messages properly.
        return False

    # --- the list -----------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        extra = {"dashboard_url": reverse(f"{self.admin_site.name}:django_txmail_dashboard")}
        return super().changelist_view(request, {**extra, **(extra_context or {})})

    def get_search_results(self, request, queryset, search_term):
        """A term with an @ is (part of) an address, or a key or provider id holding one.

        It looks at the recipients, and at the idempotency key and the
        provider's message id as a whole (``welcome:ann@example.net``,
        ``<abc@mta.example>``), skipping the subject: that halves the work on
        a big table. The recipients column holds lowercased addresses, so a
        plain LIKE does (no UPPER() on every row); the ids match exactly, on
        their indexes.
        """
        term = search_term.strip()
        if "@" in term and not any(c.isspace() for c in term):
            return queryset.filter(
                Q(recipient_emails__contains=term.lower())
                | Q(idempotency_key=term)
                | Q(provider_message_id=term)
            ), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: Message):
        return format_html(
            '<span class="txmail-badge txmail-{}">{}</span>',
            BADGE.get(obj.status, "neutral"),
            obj.get_status_display(),
        )

    @admin.display(description=_("recipients"))
    def recipients(self, obj: Message) -> str:
        return obj.recipient_summary

    # --- one message --------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        message = self.get_object(request, object_id)
        extra = {
            "can_resend": message is not None and self.has_resend_permission(request),
            "can_retry": message is not None
            and self.has_retry_permission(request)
            and states.retryable(message),
            "can_cancel": message is not None
            and self.has_cancel_permission(request)
            and message.status in states.WAITING,
        }
        return super().change_view(request, object_id, form_url, {**extra, **(extra_context or {})})

    @admin.display(description=_("HTML part"))
    def html_preview(self, obj: Message):
        if not obj.html_body:
            return "-"
        return preview_frame(obj.html_body)

    @admin.display(description=_("text part"))
    def text_display(self, obj: Message):
        if obj.text_body is None:
            return "-"
        return format_html('<pre class="txmail-text">{}</pre>', obj.text_body)

    @admin.display(description=_("template"))
    def template_display(self, obj: Message) -> str:
        if not obj.template:
            return "-"
        language = f" [{obj.template_language}]" if obj.template_language else ""
        return f"{obj.template} v{obj.template_version or '?'}{language}"

    @admin.display(description=_("resent as"))
    def resends_display(self, obj: Message):
        change = f"{self.admin_site.name}:django_txmail_message_change"
        resends = obj.resends.order_by("created_at").values_list("pk", "status")
        return (
            format_html_join(
                ", ",
                '<a href="{}">{}</a> ({})',
                ((reverse(change, args=[pk]), pk, s) for pk, s in resends),
            )
            or "-"
        )

    @admin.display(description=_("delivery events"))
    def events_display(self, obj: Message):
        count = obj.events.count()
        url = reverse(f"{self.admin_site.name}:django_txmail_deliveryevent_changelist")
        shown = (
            _("the latest %(shown)d are listed below") % {"shown": SHOWN_EVENTS}
            if count > SHOWN_EVENTS
            else _("listed below")
        )
        return format_html(
            '{} ({}): <a href="{}?message={}">{}</a>', count, shown, url, obj.pk, _("see them all")
        )

    @staticmethod
    def _addresses(values):
        return (
            format_html_join(
                ", ", "{} &lt;{}&gt;", ((v.get("name") or "", v["email"]) for v in values)
            )
            or "-"
        )

    @admin.display(description=_("suppressed recipients"))
    def suppressed_display(self, obj: Message):
        """The recipients left out because they are on the suppression list, each linked
        to its entries there."""
        addresses = [
            address
            for address, status in obj.recipient_status.items()
            if status == states.RECIPIENT_SUPPRESSED
        ]
        url = reverse(f"{self.admin_site.name}:django_txmail_suppression_changelist")
        return (
            format_html_join(", ", '<a href="{}?q={}">{}</a>', ((url, a, a) for a in addresses))
            or "-"
        )

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

    # --- extra pages --------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        extra = [
            path("dashboard/", view(self.dashboard_view), name="django_txmail_dashboard"),
            path(
                "<path:object_id>/attachments/<int:position>/",
                view(self.attachment_view),
                name="django_txmail_message_attachment",
            ),
        ]
        extra += [
            path(f"<path:object_id>/{name}/", view(function), name=f"django_txmail_message_{name}")
            for name, function in self.action_views().items()
        ]
        return extra + super().get_urls()

    def attachment_view(self, request: HttpRequest, object_id: str, position: int) -> HttpResponse:
        """Download one attachment from storage, for users who may view the message."""
        message = self.get_object(request, object_id)
        if message is None:
            raise Http404(f"No message {object_id}.")
        if not self.has_view_permission(request, message):
            raise PermissionDenied
        attachment = message.attachments.filter(position=position).first()
        if attachment is None:
            raise Http404(f"Message {object_id} has no attachment {position}.")
        try:
            stored = attachment_storage().open(attachment.storage_name, "rb")
        except OSError:
            raise Http404(
                f"The file of attachment {position} is no longer in storage "
                "(deleted by a clean-up?)."
            ) from None
        # Never rendered by the browser in the admin's origin, whatever it claims to be.
        response = FileResponse(
            stored,
            as_attachment=True,
            filename=download_name(attachment),
            content_type="application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def dashboard_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        config = get_settings()
        stream = request.GET.get("stream", "")
        stream = stream if stream in config.streams else ""
        days = dashboard.daily(stream=stream)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Transactional mail: the last %(days)d days") % {"days": dashboard.DAYS},
            "opts": self.model._meta,
            "chart": dashboard.chart(days),
            "domains": dashboard.domain_health(stream=stream),
            "streams": sorted(config.streams),
            "stream": stream,
            "bounce_warning": f"{config.bounce_warning_percent:g}",
            "complaint_warning": f"{config.complaint_warning_percent:g}",
        }
        return TemplateResponse(request, "admin/django_txmail/dashboard.html", context)
