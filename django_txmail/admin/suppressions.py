"""The Suppressions page: who is never mailed, why, and lifting an entry.

Support searches by address (any spelling: it is normalised as entries
are), filters by reason and stream, and follows the delivery event that
caused an entry. Adding is the admin's add form (``add_suppression``).
Lifting an entry is a POST with a reason (``delete_suppression``): the
reason goes into the admin log, and the address comes off the provider's
own list too where it has one (``tracking/provider_lists.lift``). Entries
are not edited: lift one and add another.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_txmail import suppressions
from django_txmail.conf import get_settings
from django_txmail.exceptions import InvalidMessage, TxMailError
from django_txmail.models import Suppression
from django_txmail.tracking.provider_lists import lift, provider_of


class SuppressionStreamFilter(admin.SimpleListFilter):
    title = _("stream")
    parameter_name = "stream"

    def lookups(self, request, model_admin):
        return [("*", _("every stream")), *((n, n) for n in sorted(get_settings().streams))]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(stream="" if value == "*" else value)


class SuppressionForm(forms.ModelForm):
    stream = forms.ChoiceField(required=False)

    class Meta:
        model = Suppression
        fields = ["address", "stream", "reason", "note"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stream"].choices = [
            ("", _("every stream")),
            *((n, n) for n in sorted(get_settings().streams)),
        ]

    def clean_address(self) -> str:
        try:
            return suppressions.normalize(self.cleaned_data["address"])
        except InvalidMessage as exc:
            raise forms.ValidationError(str(exc)) from None


class LiftForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is it lifted?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text=_("Kept in the admin log, e.g. 'the recipient fixed their mailbox'."),
    )


@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    form = SuppressionForm
    list_display = ["address", "stream_display", "reason", "created_at", "event_link", "note"]
    list_filter = ["reason", SuppressionStreamFilter, ("created_at", admin.DateFieldListFilter)]
    search_fields = ["address"]
    search_help_text = _("An address, or its start (ann@, ann@example.com).")
    list_select_related = ["event"]
    show_facets = admin.ShowFacets.NEVER
    actions = None

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["address", "stream", "reason", "note"]
        return [
            "address",
            "stream_display",
            "reason",
            "note",
            "event_link",
            "created_at",
            "provider",
            "provider_suppression_id",
        ]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_search_results(self, request, queryset, search_term):
        """An address is looked up by its start, normalised as entries are (indexed)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            term = suppressions.normalize(term)
        except InvalidMessage:
            term = term.lower()
        return queryset.filter(address__startswith=term), False

    @admin.display(description=_("stream"), ordering="stream")
    def stream_display(self, obj: Suppression) -> str:
        return obj.stream or _("every stream")

    @admin.display(description=_("caused by"))
    def event_link(self, obj: Suppression):
        if obj.event_id is None:
            return "-"
        event = obj.event
        if event.message_id is not None:
            url = reverse(
                f"{self.admin_site.name}:django_txmail_message_change", args=[event.message_id]
            )
        else:
            url = reverse(
                f"{self.admin_site.name}:django_txmail_deliveryevent_change", args=[event.pk]
            )
        return format_html('<a href="{}">{} ({})</a>', url, event.type, event.provider)

    # --- lifting -----------------------------------------------------------------------

    def get_urls(self):
        lift_url = path(
            "<int:object_id>/lift/",
            self.admin_site.admin_view(self.lift_view),
            name="django_txmail_suppression_lift",
        )
        return [lift_url, *super().get_urls()]

    def delete_view(self, request, object_id, extra_context=None):
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_txmail_suppression_lift", args=[object_id])
        )

    def lift_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        entry = get_object_or_404(Suppression.objects.select_related("event"), pk=object_id)
        if not self.has_delete_permission(request, entry):
            raise PermissionDenied
        form = LiftForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                at_provider = lift(entry)
            except TxMailError as exc:
                self.message_user(
                    request,
                    f"The suppression of {entry.address} was not lifted: its provider could not "
                    f"remove it ({exc}).",
                    messages.ERROR,
                )
            else:
                LogEntry.objects.create(
                    user_id=request.user.pk,
                    content_type_id=ContentType.objects.get_for_model(Suppression).pk,
                    object_id=str(object_id),
                    object_repr=str(entry)[:200],
                    action_flag=DELETION,
                    change_message=form.cleaned_data["reason"],
                )
                also = f" (and removed from {provider_of(entry)}'s list)" if at_provider else ""
                self.message_user(
                    request,
                    f"The suppression of {entry.address} was lifted{also}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse(f"{self.admin_site.name}:django_txmail_suppression_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Lift the suppression of %(address)s") % {"address": entry.address},
            "opts": self.model._meta,
            "entry": entry,
            "form": form,
        }
        return TemplateResponse(request, "admin/django_txmail/suppression/lift.html", context)
