"""Resend, retry and cancel from the admin: list actions and buttons on a message.

Every one is a POST with Django's CSRF check, behind its own permission
(``django_txmail.resend_message``, ``retry_message``, ``cancel_message``).
Resending shows what will go to whom and asks first; it goes through
``django_txmail.outbox.resend``, the same code as ``manage.py txmail_resend``.
A message sent through a connected mailbox is resent only by its owner, or
by a user with ``django_txmail.send_as_any_grant`` (as for a template's
test send).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from django_txmail.admin.templates import grants_usable_by
from django_txmail.exceptions import TxMailError
from django_txmail.models import Message
from django_txmail.outbox.cancel import cancel
from django_txmail.outbox.resend import resend, resend_refusal, retry, with_first_resend
from django_txmail.sending.attempt import Sender

#: More than this at once is a job for ``manage.py txmail_resend`` (resend, retry or cancel).
BULK_LIMIT = 500


class MessageActions:
    """Mixed into MessageAdmin: the actions, their permissions and per-message views."""

    actions = ["resend_messages", "retry_messages", "cancel_messages"]

    def has_resend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_txmail.resend_message")

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_txmail.retry_message")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("django_txmail.cancel_message")

    # --- list actions -------------------------------------------------------

    @admin.action(description=_("Resend selected messages…"), permissions=["resend"])
    def resend_messages(self, request, queryset):
        chosen = self._chosen(request, with_first_resend(queryset), "resend")
        if chosen is None:
            return None
        if request.POST.get("post") != "yes":
            return self._confirm_resend(request, chosen, bulk=True)
        self._resend(request, chosen)
        return None

    @admin.action(description=_("Retry selected failed messages now"), permissions=["retry"])
    def retry_messages(self, request, queryset):
        self._run(request, queryset, "retry", "Retried %d message.", "Retried %d messages.")

    @admin.action(description=_("Cancel selected messages not sent yet"), permissions=["cancel"])
    def cancel_messages(self, request, queryset):
        self._run(request, queryset, "cancel", "Cancelled %d message.", "Cancelled %d messages.")

    def _chosen(self, request, queryset, verb: str) -> list[Message] | None:
        """The selected messages, oldest first; None (and says why) past ``BULK_LIMIT``."""
        chosen = list(queryset.order_by("created_at")[: BULK_LIMIT + 1])
        if len(chosen) <= BULK_LIMIT:
            return chosen
        more = (
            "for more, use `manage.py txmail_resend` (it selects by status, dates, recipient, "
            "domain)"
            if verb == "resend"
            else "act on more a page at a time"
        )
        self.message_user(
            request, f"Choose at most {BULK_LIMIT} messages to {verb} here; {more}.", messages.ERROR
        )
        return None

    def _run(self, request, queryset, verb: str, singular: str, plural: str) -> None:
        chosen = self._chosen(request, queryset, verb)
        if chosen is None:
            return
        operation = {"retry": retry, "cancel": cancel}[verb]
        done, refused = 0, []
        sender = Sender(pool_size=1)
        try:
            for message in chosen:
                try:
                    operation(message, sender=sender)
                    done += 1
                except TxMailError as exc:
                    refused.append(str(exc))
        finally:
            sender.close()
        if done:
            self.message_user(request, ngettext(singular, plural, done) % done, messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)

    # --- one message --------------------------------------------------------

    def _message_or_404(self, request, object_id: str, permission: str) -> Message:
        if not getattr(self, f"has_{permission}_permission")(request):
            raise PermissionDenied
        message = self.get_object(request, object_id)
        if message is None:
            raise Http404(f"No message {object_id}.")
        if not self.has_view_permission(request, message):
            raise PermissionDenied  # acting on a message means seeing it first
        return message

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: what will be resent, and a button; POST: resend, then show the new message."""
        message = self._message_or_404(request, object_id, "resend")
        if request.method != "POST":
            return self._confirm_resend(request, [message], bulk=False)
        copies = self._resend(request, [message])
        target = copies[0].pk if copies else message.pk
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_txmail_message_change", args=[target])
        )

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._one(request, object_id, "retry", retry, "Retried")

    def cancel_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return self._one(request, object_id, "cancel", cancel, "Cancelled")

    def _one(self, request, object_id: str, permission: str, operation, done: str):
        message = self._message_or_404(request, object_id, permission)
        try:
            operation(message)
        except TxMailError as exc:
            self.message_user(request, str(exc), messages.WARNING)
        else:
            self.message_user(
                request,
                f"{done} message {message.pk}; it is {message.status} now.",
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:django_txmail_message_change", args=[message.pk])
        )

    def action_views(self) -> dict:
        """URL name suffix → view, for MessageAdmin.get_urls."""
        return {
            "resend": self.resend_view,
            "retry": require_POST(self.retry_view),
            "cancel": require_POST(self.cancel_view),
        }

    # --- resending ----------------------------------------------------------

    def _confirm_resend(self, request, chosen: list[Message], *, bulk: bool) -> TemplateResponse:
        rows = [
            (message, _grant_refusal(request.user, message) or resend_refusal(message))
            for message in chosen
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Resend messages?"),
            "opts": self.model._meta,
            "rows": rows,
            "going": sum(1 for _, refusal in rows if not refusal),
            "bulk": bulk,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/django_txmail/message/resend_confirmation.html", context
        )

    def _resend(self, request, chosen: list[Message]) -> list[Message]:
        copies, refused = [], []
        sender = Sender(pool_size=4)
        try:
            for message in chosen:
                refusal = _grant_refusal(request.user, message)
                if refusal:
                    refused.append(refusal)
                    continue
                try:
                    copies.append(resend(message, sender=sender))
                except TxMailError as exc:
                    refused.append(str(exc))
        finally:
            sender.close()
        if len(copies) > 10:
            self.message_user(request, f"Resent {len(copies)} messages.", messages.SUCCESS)
        elif copies:
            change = f"{self.admin_site.name}:django_txmail_message_change"
            links = format_html_join(
                ", ",
                '<a href="{}">{}</a> ({})',
                ((reverse(change, args=[c.pk]), c.pk, c.status) for c in copies),
            )
            self.message_user(request, format_html("Resent as {}.", links), messages.SUCCESS)
        for copy in copies:
            if copy.status == Message.Status.FAILED:
                self.message_user(
                    request, f"Resent message {copy.pk} failed: {copy.last_error}", messages.ERROR
                )
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)
        return copies


def _grant_refusal(user, message: Message) -> str:
    """Why ``user`` may not resend ``message`` from its connected mailbox ("" if they may)."""
    if message.route != Message.Route.GRANT:
        return ""
    usable = grants_usable_by(user).filter(
        provider=message.provider, grant_id=message.route_grant_id
    )
    if usable.exists():
        return ""
    return (
        f"Message {message.pk} was sent from another user's connected mailbox; resending "
        "it needs the 'send as any grant' permission."
    )
