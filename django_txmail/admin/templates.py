"""Stored templates in the admin: edit (syntax checked on save), preview, send a test.

The preview renders with the template's sample variables in a sandboxed
iframe (no scripts, no same-origin access) and lists the variables the
samples lack. The test send is a POST with CSRF behind the
``django_txmail.send_test_template`` permission, and goes through the
configured email backend like any other message, so it is recorded in the
outbox and visible there. It sends only from an address of a sending
domain (the domain route) or from one of the requesting user's own
connected mailboxes: another user's mailbox needs
``django_txmail.send_as_any_grant``, since mail from it is mail in that
person's name.
"""

from __future__ import annotations

from email.utils import parseaddr

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.encoding import punycode
from django.utils.html import escape, format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from django_txmail.admin.preview import preview_frame
from django_txmail.exceptions import TxMailError
from django_txmail.models import (
    Grant,
    Message,
    SendingDomain,
    Template,
    TemplateVariant,
    normalize_language,
    one_version_bump,
)
from django_txmail.stored_templates.render import render_template, send_template


class TemplateVariantForm(forms.ModelForm):
    class Meta:
        model = TemplateVariant
        fields = ["language", "subject", "html", "text"]

    def clean_language(self) -> str:
        # Before the formset compares languages: "DE" and "de" are one language.
        return normalize_language(self.cleaned_data["language"])


class TemplateVariantInline(admin.StackedInline):
    model = TemplateVariant
    form = TemplateVariantForm
    extra = 0


class SuggestingEmailInput(forms.EmailInput):
    """An address input offering ``suggestions`` (an HTML datalist); any text may be typed."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.suggestions: list[str] = []

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{(attrs or {}).get('id') or name}-suggestions"
        html = super().render(name, value, {**(attrs or {}), "list": list_id}, renderer)
        options = format_html_join("", '<option value="{}">', ((s,) for s in self.suggestions))
        return format_html('{}<datalist id="{}">{}</datalist>', html, list_id, options)


def grants_usable_by(user) -> models.QuerySet[Grant]:
    """The active grants ``user`` may send a test from: their own, or all with the permission."""
    grants = Grant.objects.filter(is_active=True)
    if user.has_perm("django_txmail.send_as_any_grant"):
        return grants
    return grants.filter(user_id=user.pk)


class SendTestForm(forms.Form):
    to = forms.EmailField(label=_("Send to"))
    from_email = forms.EmailField(
        label=_("From"),
        widget=SuggestingEmailInput,
        help_text=_("An address of a sending domain, or one of your connected mailboxes."),
    )
    language = forms.ChoiceField(label=_("Language"))

    def __init__(self, *args, languages: list[str], user, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["language"].choices = [(code, code) for code in languages]
        default = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
        offered = [default] if default and self._refusal(default) is None else []
        offered += grants_usable_by(user).values_list("email", flat=True)
        self.fields["from_email"].widget.suggestions = list(dict.fromkeys(offered))

    def clean_from_email(self) -> str:
        address = self.cleaned_data["from_email"]
        refusal = self._refusal(address)
        if refusal:
            raise forms.ValidationError(refusal)
        return address

    def _refusal(self, address: str) -> str | None:
        """Why this user may not send a test from ``address``, or None.

        As routing decides: an active grant with the address is the grant route
        (the user's own, or any with ``send_as_any_grant``); otherwise the address
        must be at a sending domain.
        """
        address = address.strip().lower()
        grant = Grant.objects.filter(is_active=True, email=address).first()
        if grant is not None:
            if grants_usable_by(self.user).filter(pk=grant.pk).exists():
                return None
            return _(
                "%(address)s is another user's connected mailbox; a test can be sent from "
                "your own mailboxes or a sending domain's addresses."
            ) % {"address": address}
        domain = punycode(address.rpartition("@")[2])
        if SendingDomain.objects.filter(name=domain).exists():
            return None
        return _(
            "%(address)s is neither at a sending domain nor one of your connected mailboxes."
        ) % {"address": address}


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "version", "strict", "language_list", "updated_at"]
    list_filter = ["strict", "inline_css"]
    search_fields = ["slug", "name", "subject"]
    readonly_fields = ["version", "created_at", "updated_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TemplateVariantInline]
    change_form_template = "admin/django_txmail/template/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "slug", "description"]}),
        (_("Content"), {"fields": ["subject", "html", "text"]}),
        (_("Rendering"), {"fields": ["strict", "inline_css", "sample_vars"]}),
        (_("History"), {"fields": ["version", "created_at", "updated_at"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("variants")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and field.help_text:
            # The admin shows help text as HTML; ours is plain text that names tags
            # ("Move <style> rules..."), which would swallow the rest of the page.
            field.help_text = escape(field.help_text)
        return field

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # The template and its variants saved together are one new version.
        with one_version_bump():
            return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description=_("languages"))
    def language_list(self, obj: Template) -> str:
        return ", ".join(obj.languages())

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/preview/",
                view(self.preview_view),
                name="django_txmail_template_preview",
            ),
            path(
                "<path:object_id>/send-test/",
                view(self.send_test_view),
                name="django_txmail_template_send_test",
            ),
            *super().get_urls(),
        ]

    def has_send_test_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_txmail.send_test_template")

    def _template(self, request: HttpRequest, object_id: str) -> Template:
        template = get_object_or_404(self.get_queryset(request), pk=object_id)
        if not self.has_view_or_change_permission(request, template):
            raise PermissionDenied
        return template

    def _context(self, request: HttpRequest, template: Template, title: str) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": template,
            "title": title,
            "has_send_test_permission": self.has_send_test_permission(request),
        }

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self._template(request, object_id)
        languages = template.languages()
        language = request.GET.get("language") or languages[0]
        try:
            rendered, error = (
                render_template(template, template.sample_vars, language=language, strict=False),
                "",
            )
        except TxMailError as exc:
            rendered, error = None, str(exc)
        context = self._context(request, template, _("Preview of %s") % template)
        context |= {
            "rendered": rendered,
            "error": error,
            "language": language,
            "languages": languages,
            # Shown as a message's preview is: sanitised, no network loads (its CSP).
            "html_preview": preview_frame(rendered.html or "") if rendered else "",
        }
        return TemplateResponse(request, "admin/django_txmail/template/preview.html", context)

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        template = self._template(request, object_id)
        if not self.has_send_test_permission(request):
            raise PermissionDenied
        languages = template.languages()
        initial = {
            "to": request.user.email,
            "from_email": parseaddr(settings.DEFAULT_FROM_EMAIL)[1],
            "language": languages[0],
        }
        form = SendTestForm(
            request.POST or None, initial=initial, languages=languages, user=request.user
        )
        if request.method == "POST" and form.is_valid():
            try:
                result = send_template(
                    template.slug,
                    form.cleaned_data["to"],
                    template.sample_vars,
                    from_email=form.cleaned_data["from_email"],
                    language=form.cleaned_data["language"],
                    metadata={"txmail_test_send": "true"},
                )
            except TxMailError as exc:
                form.add_error(None, str(exc))
            else:
                url = reverse("admin:django_txmail_message_change", args=[result.message_id])
                self.message_user(
                    request,
                    format_html(
                        _('Test message sent to {} ({}): <a href="{}">see it in the outbox</a>.'),
                        form.cleaned_data["to"],
                        Message.Status(result.status).label,
                        url,
                    ),
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:django_txmail_template_change", args=[template.pk])
                )
        context = self._context(request, template, _("Send a test of %s") % template)
        context["form"] = form
        return TemplateResponse(request, "admin/django_txmail/template/send_test.html", context)
