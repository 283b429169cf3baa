"""Sending domains and grants in the admin.

A domain's list row carries its DNS status as a badge; the "Check DNS now"
action (a POST with CSRF, for users with the ``verify_sendingdomain``
permission who may also see the domain) runs the same check as
``manage.py txmail_verify_domains``, and the change page shows the last
check's table: each record, what was expected, what was found, and the fix.
The same check is offered on the change page as a button, posting to
``<id>/verify/``.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from django_txmail.conf import get_settings
from django_txmail.dns.records import ERROR, FAILED, OK, PENDING, WARNING
from django_txmail.dns.verify import make_lookup, verify_domains
from django_txmail.exceptions import TxMailError
from django_txmail.grants import disconnect
from django_txmail.models import Grant, SendingDomain

_BADGE_COLOURS = {
    SendingDomain.Status.VERIFIED: "#2e7d32",
    SendingDomain.Status.PENDING: "#8a6d00",
    SendingDomain.Status.FAILED: "#c62828",
}
_MARKS = {OK: "✓", FAILED: "✗", WARNING: "!", ERROR: "?", PENDING: "…"}


class AccountChoiceForm(forms.ModelForm):
    """``provider`` chosen from the accounts of ``TXMAIL["PROVIDERS"]`` (the model validates it).

    A row naming an account that is no longer configured shows that name, marked,
    so saving it unchanged says what is wrong instead of quietly picking another.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        config = get_settings()
        current = self.initial.get("provider") or ""
        choices = [("", "---------"), *((name, name) for name in sorted(config.providers))]
        if current and current not in config.providers:
            choices.append((current, _("%(name)s (not configured)") % {"name": current}))
        if self.instance._state.adding and not current:
            self.initial["provider"] = config.default_provider or ""
        self.fields["provider"].widget = forms.Select(choices=choices)


@admin.register(SendingDomain)
class SendingDomainAdmin(admin.ModelAdmin):
    form = AccountChoiceForm
    list_display = ["name", "provider", "status_badge", "allow_unverified", "last_checked"]
    list_filter = ["status", "provider", "allow_unverified"]
    search_fields = ["name"]
    actions = ["verify_now"]
    readonly_fields = ["status", "dns_report", "last_checked", "created_at", "updated_at"]
    fields = [
        "name",
        "provider",
        "allow_unverified",
        "status",
        "last_checked",
        "dns_report",
        "provider_domain_id",
        "dns_records",
        "created_at",
        "updated_at",
    ]
    change_form_template = "admin/django_txmail/sendingdomain/change_form.html"

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: SendingDomain) -> str:
        return format_html(
            '<span class="txmail-badge" style="background:{};color:#fff;padding:1px 8px;'
            'border-radius:9px;font-size:11px">{}</span>',
            _BADGE_COLOURS.get(obj.status, "#555"),
            obj.get_status_display(),
        )

    @admin.display(description=_("DNS records at the last check"))
    def dns_report(self, obj: SendingDomain) -> str:
        report = obj.records or {}
        rows = [
            {**row, "mark": _MARKS.get(row.get("status"), "?")} for row in report.get("records", [])
        ]
        return render_to_string(
            "admin/django_txmail/sendingdomain/records.html",
            {"report": report, "rows": rows, "problems": report.get("problems", [])},
        )

    def has_verify_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_txmail.verify_sendingdomain")

    @admin.action(description=_("Check DNS now"), permissions=["verify"])
    def verify_now(self, request: HttpRequest, queryset) -> None:
        self._verify(request, list(queryset))

    def get_urls(self):
        verify = self.admin_site.admin_view(self.verify_view)
        return [
            path("<int:pk>/verify/", verify, name="django_txmail_sendingdomain_verify"),
            *super().get_urls(),
        ]

    def verify_view(self, request: HttpRequest, pk: int):
        """The change page's "Check DNS now" button: POST only (CSRF-checked by the admin)."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_verify_permission(request):
            raise PermissionDenied
        domain = get_object_or_404(self.get_queryset(request), pk=pk)
        if not self.has_view_or_change_permission(request, domain):
            raise PermissionDenied  # acting on a domain means seeing it first
        self._verify(request, [domain])
        return HttpResponseRedirect(
            reverse("admin:django_txmail_sendingdomain_change", args=[domain.pk])
        )

    def render_change_form(self, request, context, *args, **kwargs):
        context["can_verify"] = self.has_verify_permission(request)
        return super().render_change_form(request, context, *args, **kwargs)

    def _verify(self, request: HttpRequest, domains: list[SendingDomain]) -> None:
        try:
            lookup = make_lookup()
        except ValueError as exc:
            self.message_user(request, f"TXMAIL['DNS_NAMESERVERS']: {exc}", messages.ERROR)
            return
        reports = verify_domains(domains, lookup)
        passed = [r.domain for r in reports if r.passed]
        if passed:
            self.message_user(
                request,
                f"DNS of {', '.join(passed)}: every required record passes.",
                messages.SUCCESS,
            )
        for report in reports:
            if report.passed:
                continue
            blocking = [c for c in report.checks if c.blocking]
            found = []
            if report.problems:
                found.append(f"{len(report.problems)} problem(s) with the domain")
            if blocking:
                found.append(f"{len(blocking)} record(s) to fix or recheck")
            first = report.problems[0] if report.problems else blocking[0].problem
            self.message_user(
                request,
                f"DNS of {report.domain}: {' and '.join(found)}. {first} "
                "See the domain's page for every record and its fix.",
                messages.WARNING,
            )


@admin.register(Grant)
class GrantAdmin(admin.ModelAdmin):
    """Connected mailboxes, by user; "Disconnect" revokes them at the provider."""

    form = AccountChoiceForm
    list_display = ["email", "user", "status", "provider", "grant_id", "is_active", "connected_at"]
    list_filter = ["status", ("user", admin.RelatedOnlyFieldListFilter), "is_active", "provider"]
    search_fields = ["email", "grant_id", "user__username", "user__email"]
    raw_id_fields = ["user"]
    readonly_fields = ["status", "scopes", "connected_at", "created_at", "updated_at"]
    actions = ["disconnect_grants"]

    @admin.action(description=_("Disconnect selected mailboxes"), permissions=["change"])
    def disconnect_grants(self, request, queryset):
        done = 0
        for grant in queryset.exclude(status=Grant.Status.REVOKED):
            try:
                disconnect(grant)
            except (TxMailError, ValueError) as exc:
                self.message_user(request, f"{grant.email}: {exc}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"Disconnected {done} mailbox(es).", messages.SUCCESS)
