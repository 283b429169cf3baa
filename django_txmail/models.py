"""Sending domains, connected grants, and the outbox of messages.

A ``Message`` row is written before any network call; it holds everything
needed to send the message again (attachments in Django's storage, the rest
as JSON), so it *is* the outbox. Provider credentials never live here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.encoding import punycode
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from django_txmail.conf import DEFAULT_STREAM, did_you_mean, get_settings
from django_txmail.event_types import EventType
from django_txmail.flow import PRIORITY_RANK
from django_txmail.stored_templates.syntax import syntax_error


def admin_path(model: type[models.Model]) -> str:
    """Where ``model``'s rows are in the admin, as error messages name it: "Transactional mail →
    Templates" (the app's section, then the model's list)."""
    opts = model._meta
    return f"{opts.app_config.verbose_name} → {capfirst(opts.verbose_name_plural)}"


def check_account_name(provider: str) -> None:
    """Refuse a ``provider`` that is not an account of ``TXMAIL["PROVIDERS"]``.

    The accounts live in settings, not in a table, so the field has no choices
    (they would be frozen into a migration); forms validate it here, and the
    database check ``txmail.W011`` reports rows that name no account.
    """
    accounts = get_settings().providers
    if provider and provider not in accounts:
        raise ValidationError(
            {
                "provider": _(
                    "%(provider)r is not an account of TXMAIL['PROVIDERS'] (configured: "
                    "%(accounts)s).%(hint)s"
                )
                % {
                    "provider": provider,
                    "accounts": ", ".join(sorted(accounts)) or "none",
                    "hint": did_you_mean(provider, accounts),
                }
            }
        )


class SendingDomain(models.Model):
    """A domain mail is sent from on the *domain route* of a provider account."""

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        VERIFIED = "verified", _("verified")
        FAILED = "failed", _("failed")

    name = models.CharField(
        max_length=253, help_text=_("The domain part of From addresses, e.g. mail.example.com.")
    )
    provider = models.CharField(
        max_length=64, help_text=_("The name of an account in TXMAIL['PROVIDERS'].")
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    allow_unverified = models.BooleanField(
        default=False,
        help_text=_("Send from this domain before its DNS is verified (for staging)."),
    )
    records = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Status of each DNS record at the last check (txmail_verify_domains)."),
    )
    last_checked = models.DateTimeField(null=True, blank=True)
    provider_domain_id = models.CharField(
        max_length=255,
        blank=True,
        verbose_name=_("provider's domain id"),
        help_text=_(
            "The provider's id for this domain (Nylas: the id in its Manage Domains API). "
            "Left empty, it is looked up by name at the next check."
        ),
    )
    dns_records = models.JSONField(
        default=list,
        blank=True,
        verbose_name=_("DNS records to check"),
        help_text=_(
            "The records the provider's dashboard lists for this domain, as a JSON list of "
            '{"purpose": "dkim", "type": "CNAME", "host": "...", "value": "..."}. '
            "When set, they are checked instead of the provider's own (its documented set, "
            "or Nylas's domains API)."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["name", "provider"], name="txmail_domain_per_provider")
        ]
        permissions = [("verify_sendingdomain", "Can check a sending domain's DNS records")]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider})"

    def clean(self) -> None:
        check_account_name(self.provider)

    def save(self, *args, **kwargs):
        # Stored IDNA-encoded, as From domains are after compose.
        self.name = punycode(self.name.strip().lower().rstrip("."))
        super().save(*args, **kwargs)


class Grant(models.Model):
    """A user's connected mailbox that mail can be sent through (*grant route*).

    ``status`` is what the provider last said of the grant: mail goes through
    it only while it is "valid"; mail queued for it otherwise waits
    (``django_txmail.grants``).
    """

    class Status(models.TextChoices):
        VALID = "valid", _("valid")
        EXPIRED = "expired", _("expired: the user must connect again")
        REVOKED = "revoked", _("revoked")

    email = models.EmailField(max_length=254, help_text=_("The mailbox's address."))
    provider = models.CharField(max_length=64)
    grant_id = models.CharField(max_length=255, help_text=_("The provider's id for the grant."))
    is_active = models.BooleanField(default=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="txmail_grants",
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.VALID)
    status_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    scopes = models.JSONField(default=list, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "grant_id"], name="txmail_grant_id_unique"),
            models.UniqueConstraint(
                fields=["email"],
                condition=models.Q(is_active=True),
                name="txmail_one_active_grant_per_email",
            ),
        ]
        permissions = [
            (
                "send_as_any_grant",
                "Can send a template test from any user's connected mailbox",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} ({self.provider})"

    def clean(self) -> None:
        check_account_name(self.provider)

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class Template(models.Model):
    """A stored template that non-developers can edit in the admin.

    Subject, HTML and text are written in the Django template language. A
    message sent from it keeps the rendered result and the ``version`` that
    produced it, so later edits never change what was sent.
    """

    slug = models.SlugField(
        max_length=100, unique=True, help_text=_("What code names it: TxMessage(template=...).")
    )
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text=_("When it is sent, for whom."))
    subject = models.TextField(help_text=_("Django template language, one line."))
    html = models.TextField(
        verbose_name=_("HTML body"), help_text=_("Django template language; values are escaped.")
    )
    text = models.TextField(
        blank=True,
        verbose_name=_("text body"),
        help_text=_("Optional. Left empty, the text part is derived from the HTML."),
    )
    strict = models.BooleanField(
        default=True,
        help_text=_("Refuse to send when the template uses a variable the sender did not supply."),
    )
    inline_css = models.BooleanField(
        default=False,
        verbose_name=_("inline CSS"),
        help_text=_("Move <style> rules into style attributes (for mail clients that drop them)."),
    )
    sample_vars = models.JSONField(
        default=dict,
        blank=True,
        verbose_name=_("sample variables"),
        help_text=_("Values for the preview and the test send, as a JSON object."),
    )
    version = models.PositiveIntegerField(
        default=1, editable=False, help_text=_("Goes up each time the content changes.")
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [("send_test_template", "Can send a test message from a template")]

    def __str__(self) -> str:
        return self.name or self.slug

    def clean(self) -> None:
        _check_syntax(self)
        if not isinstance(self.sample_vars, dict):
            raise ValidationError(
                {
                    "sample_vars": _(
                        'A JSON object of variable names to values, e.g. {"name": "Ann"}.'
                    )
                }
            )

    def languages(self) -> list[str]:
        """The default language and every variant's, for choosing a preview."""
        codes = [
            normalize_language(settings.LANGUAGE_CODE),
            *(v.language for v in self.variants.all()),
        ]
        return list(dict.fromkeys(codes))

    def save(self, *args, **kwargs):
        # ``version`` is only ever raised in the database (bump_version), never written
        # from this object, so a stale copy cannot take it back.
        if self._state.adding:
            super().save(*args, **kwargs)
            if (edit := _current_edit.get()) is not None:
                edit.created.add(self.pk)  # its variants saved with it are part of version 1
            return
        before = Template.objects.filter(pk=self.pk).values(*_TEMPLATE_CONTENT).first()
        if before is not None and "update_fields" not in kwargs:
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields if f.name not in ("id", "version")
            ]
        super().save(*args, **kwargs)
        if before is not None and any(before[f] != getattr(self, f) for f in _TEMPLATE_CONTENT):
            self.bump_version()

    def bump_version(self) -> None:
        """Raise the version by one, or once at the end of ``one_version_bump()``."""
        edit = _current_edit.get()
        if edit is not None:
            edit.changed.add(self.pk)
        else:
            Template.objects.filter(pk=self.pk).update(version=models.F("version") + 1)
        self.refresh_from_db(fields=["version"])


@dataclass
class _Edit:
    """The templates one ``one_version_bump()`` block changed, and those it created."""

    changed: set = field(default_factory=set)
    created: set = field(default_factory=set)


_current_edit: ContextVar[_Edit | None] = ContextVar("txmail_template_edit", default=None)


@contextmanager
def one_version_bump() -> Iterator[None]:
    """Template edits inside count as one new version per template (one admin save).

    A template created inside, with its variants, is version 1.
    """
    edit = _Edit()
    token = _current_edit.set(edit)
    try:
        yield
    finally:
        _current_edit.reset(token)
    if bumped := edit.changed - edit.created:
        Template.objects.filter(pk__in=bumped).update(version=models.F("version") + 1)


def normalize_language(code: str) -> str:
    """'pt_BR' and ' PT-br ' → 'pt-br', as Django writes language codes."""
    return code.strip().lower().replace("_", "-")


class TemplateVariant(models.Model):
    """The same template in another language; missing languages fall back to the template."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="variants")
    language = models.CharField(
        max_length=15, help_text=_("A language code such as 'de' or 'pt-br'.")
    )
    subject = models.TextField()
    html = models.TextField(verbose_name=_("HTML body"))
    text = models.TextField(blank=True, verbose_name=_("text body"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["template", "language"]
        verbose_name = _("language variant")
        constraints = [
            models.UniqueConstraint(
                fields=["template", "language"], name="txmail_template_language_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.template.slug} [{self.language}]"

    def clean(self) -> None:
        self.language = normalize_language(self.language)
        _check_syntax(self)

    def save(self, *args, **kwargs):
        self.language = normalize_language(self.language)
        if self.pk is not None:
            before = TemplateVariant.objects.filter(pk=self.pk).values(*_VARIANT_CONTENT).first()
            changed = not before or any(before[f] != getattr(self, f) for f in _VARIANT_CONTENT)
        else:
            changed = True
        super().save(*args, **kwargs)
        if changed:
            self.template.bump_version()

    def delete(self, *args, **kwargs):
        result = super().delete(*args, **kwargs)
        self.template.bump_version()
        return result


_TEMPLATE_CONTENT = ("subject", "html", "text", "inline_css")
_VARIANT_CONTENT = ("language", "subject", "html", "text")


def _check_syntax(obj: Template | TemplateVariant) -> None:
    """Refuse template source that does not compile, naming the field and the error."""
    errors = {
        name: error
        for name in ("subject", "html", "text")
        if (error := syntax_error(getattr(obj, name) or ""))
    }
    if errors:
        raise ValidationError(errors)


class Message(models.Model):
    """One message in the outbox, from recording through the provider's answer."""

    class Route(models.TextChoices):
        DOMAIN = "domain", _("domain")
        GRANT = "grant", _("grant")

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SCHEDULED = "scheduled", _("scheduled")
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        DELIVERED = "delivered", _("delivered")
        DEFERRED = "deferred", _("deferred")
        BOUNCED = "bounced", _("bounced")
        COMPLAINED = "complained", _("complained")
        REJECTED = "rejected", _("rejected")
        FAILED = "failed", _("failed")
        CANCELLED = "cancelled", _("cancelled")
        SUPPRESSED = "suppressed", _("suppressed")

    class Priority(models.IntegerChoices):
        """The lane (extra ``msg.priority``): claims and tasks take a lower rank first."""

        HIGH = PRIORITY_RANK["high"], _("high")
        NORMAL = PRIORITY_RANK["normal"], _("normal")
        LOW = PRIORITY_RANK["low"], _("low")

    class FailureOrigin(models.TextChoices):
        """Who said a failed message failed (see ``outbox/states.py``)."""

        OURS = "ours", _("our verdict (attempts used up, or refused before acceptance)")
        PROVIDER = "provider", _("the provider's report")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    route = models.CharField(max_length=8, choices=Route.choices)
    # Not indexed alone: ("provider", "-created_at") below serves a filter on it.
    provider = models.CharField(max_length=64)
    sending_domain = models.ForeignKey(
        SendingDomain, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    grant = models.ForeignKey(
        Grant, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    # The route's target, kept on the row so a retry never depends on the
    # SendingDomain or Grant row still existing.
    route_domain = models.CharField(max_length=253, blank=True)
    route_grant_id = models.CharField(max_length=255, blank=True)
    from_email = models.JSONField(help_text=_("{email, name}"))
    from_address = models.CharField(max_length=254, db_index=True)
    to = models.JSONField(default=list, blank=True)
    cc = models.JSONField(default=list, blank=True)
    bcc = models.JSONField(default=list, blank=True)
    reply_to = models.JSONField(default=list, blank=True)
    subject = models.TextField(blank=True)
    text_body = models.TextField(blank=True, null=True)
    html_body = models.TextField(blank=True, null=True)
    headers = models.JSONField(default=dict, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    options = models.JSONField(
        default=dict,
        blank=True,
        help_text=_("Everything else needed to send again: template, tracking, extras."),
    )
    send_at = models.DateTimeField(null=True, blank=True)
    stream = models.CharField(
        max_length=64,
        default=DEFAULT_STREAM,
        help_text=_("The kind of mail (TXMAIL['STREAMS']): its suppressions and headers."),
    )
    # Not indexed alone: ("status", "next_attempt_at") below serves a filter on it.
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    priority = models.PositiveSmallIntegerField(
        choices=Priority.choices,
        default=Priority.NORMAL,
        help_text=_("The lane: workers and tasks send higher lanes first."),
    )
    failure_origin = models.CharField(
        max_length=8,
        choices=FailureOrigin.choices,
        blank=True,
        help_text=_("For a failed message: our verdict, or the provider's report."),
    )
    recipient_status = models.JSONField(
        default=dict, blank=True, help_text=_("Status per recipient address, from delivery events.")
    )
    idempotency_key = models.CharField(max_length=256, unique=True)
    content_hash = models.CharField(
        max_length=64, help_text=_("Fingerprint of the content, to tell a reused key apart.")
    )
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    provider_schedule_id = models.CharField(max_length=255, blank=True)
    provider_request_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    attachment_count = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_type = models.CharField(max_length=128, blank=True)
    template = models.CharField(  # indexed by ("template", "-created_at") below
        max_length=100,
        blank=True,
        help_text=_("Slug of the stored template that produced the content."),
    )
    template_version = models.PositiveIntegerField(null=True, blank=True)
    template_language = models.CharField(max_length=15, blank=True)
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )
    failover_from = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("The account this message was first routed to, when it moved (FAILOVER)."),
    )
    failover_reason = models.TextField(
        blank=True, help_text=_("Why it moved to the account that carried it.")
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    # To, Cc and Bcc addresses, lowercased, one per line: what the admin's
    # recipient search looks in (the JSON columns cannot be searched
    # alike on every database). Kept in step by save().
    recipient_emails = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="txmail_msg_due"),
            models.Index(fields=["priority", "next_attempt_at"], name="txmail_msg_lane_due"),
            # Every admin filter, newest first (the list's order).
            models.Index(fields=["status", "-created_at"], name="txmail_msg_status_new"),
            models.Index(fields=["provider", "-created_at"], name="txmail_msg_provider_new"),
            models.Index(fields=["route", "-created_at"], name="txmail_msg_route_new"),
            models.Index(fields=["route_domain", "-created_at"], name="txmail_msg_domain_new"),
            models.Index(fields=["template", "-created_at"], name="txmail_msg_template_new"),
            models.Index(fields=["stream", "-created_at"], name="txmail_msg_stream_new"),
            # The dashboard's messages sent per day and per domain.
            models.Index(fields=["sent_at"], name="txmail_msg_sent"),
        ]
        permissions = [
            ("resend_message", "Can resend a message"),
            ("cancel_message", "Can cancel a message that has not been sent"),
            ("retry_message", "Can retry a failed message now"),
            ("send_message", "Can send a message through the REST API"),
        ]

    def __str__(self) -> str:
        return f"{self.subject or '(no subject)'} → {self.recipient_summary}"

    def recipient_index(self) -> str:
        """``recipient_emails`` as it should be for the current addresses."""
        return "\n".join(email.lower() for email in self.recipients)

    def save(self, *args, **kwargs):
        self.recipient_emails = self.recipient_index()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"to", "cc", "bcc"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "recipient_emails"}
        super().save(*args, **kwargs)

    @property
    def recipients(self) -> list[str]:
        """Every address the message goes to (To, Cc and Bcc)."""
        return [a["email"] for a in (*self.to, *self.cc, *self.bcc)]

    @property
    def recipient_summary(self) -> str:
        emails = self.recipients
        more = f" +{len(emails) - 1}" if len(emails) > 1 else ""
        return f"{emails[0]}{more}" if emails else "-"


class MessageAttachment(models.Model):
    """A file of a message, kept in Django's storage so the message can be sent again."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    position = models.PositiveSmallIntegerField()
    filename = models.TextField(blank=True)
    mimetype = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_id = models.TextField(blank=True)
    inline = models.BooleanField(default=False)
    storage_name = models.CharField(max_length=500)

    class Meta:
        ordering = ["message", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "position"], name="txmail_attachment_position"
            )
        ]

    def __str__(self) -> str:
        return self.filename or self.content_id or f"attachment {self.position}"


class Attempt(models.Model):
    """One try at handing a message to its provider."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("sent")
        TRANSIENT = "transient", _("transient error")
        PERMANENT = "permanent", _("permanent error")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=128, blank=True)
    error_message = models.TextField(blank=True)
    request_id = models.CharField(max_length=255, blank=True)
    provider = models.CharField(
        max_length=64, blank=True, help_text=_("The account the request went to.")
    )
    #: False only when the request provably never reached the provider, or the provider
    #: said it did not take it (429): the one case a message may move to a FAILOVER account.
    maybe_accepted = models.BooleanField(default=True)

    class Meta:
        ordering = ["message", "number"]

    def __str__(self) -> str:
        return f"attempt {self.number}: {self.outcome}"


class WebhookPayload(models.Model):
    """What a provider sent once about several delivery events, stored once for all of them.

    A Nylas notification naming several recipients becomes one event per
    recipient; the notification itself is stored here, once, and each of
    those events points to it (``DeliveryEvent.payload``) instead of keeping
    a copy in ``raw``.
    """

    provider = models.CharField(max_length=64)
    raw = models.JSONField(help_text=_("The notification as the provider sent it."))
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.provider} payload {self.pk}"


class DeliveryEvent(models.Model):
    """Something the provider reported about a message after it left (a webhook event)."""

    #: The normalized event types (django_txmail.event_types), as model choices.
    Type = models.TextChoices("Type", [(t.name, (t.value, _(t.value))) for t in EventType])

    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.CASCADE, related_name="events"
    )
    provider = models.CharField(max_length=64, help_text=_("The account that reported it."))
    type = models.CharField(max_length=16, choices=Type.choices)
    provider_type = models.CharField(max_length=128, help_text=_("The provider's own name."))
    provider_event_id = models.CharField(max_length=255)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    recipient = models.CharField(max_length=254, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField(auto_now_add=True)
    bounce_type = models.CharField(max_length=128, blank=True)
    reason = models.TextField(blank=True, help_text=_("Diagnostic code or reject reason."))
    mta_response = models.TextField(blank=True)
    click_url = models.TextField(blank=True)
    user_agent = models.TextField(blank=True)
    ip = models.CharField(max_length=64, blank=True)
    raw = models.JSONField(
        null=True,
        blank=True,
        help_text=_("The event as the provider sent it; empty when it shares a payload."),
    )
    payload = models.ForeignKey(
        WebhookPayload,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        help_text=_("The notification this event came from, stored once for all its events."),
    )
    #: Marks the rows one webhook request inserted (to tell them from duplicates).
    ingest_batch = models.UUIDField(editable=False)

    class Meta:
        ordering = ["occurred_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id"], name="txmail_event_once_per_provider"
            )
        ]
        indexes = [
            models.Index(fields=["message", "occurred_at"], name="txmail_event_timeline"),
            models.Index(fields=["ingest_batch"], name="txmail_event_batch"),
            # The dashboard's events per day; cleanup of old unattached events.
            models.Index(fields=["occurred_at", "type"], name="txmail_event_day"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.recipient or ''}".strip()

    @property
    def provider_payload(self) -> Any:
        """What the provider sent about this event: its own ``raw``, or the shared payload."""
        return self.raw if self.payload_id is None else self.payload.raw


class Suppression(models.Model):
    """An address mail is not sent to: it bounced, complained, unsubscribed or was added.

    ``address`` is kept normalised (lower case, IDN domain in ASCII), so
    ``Ann@Example.COM`` and ``ann@example.com`` are one entry; ``stream``
    blank means every stream. See ``django_txmail.suppressions``.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", _("hard bounce")
        COMPLAINT = "complaint", _("complaint")
        UNSUBSCRIBE = "unsubscribe", _("unsubscribe")
        MANUAL = "manual", _("manual")

    address = models.CharField(max_length=254)
    stream = models.CharField(max_length=64, blank=True, help_text=_("Blank: every stream."))
    reason = models.CharField(max_length=16, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    event = models.ForeignKey(
        DeliveryEvent,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="suppressions",
        help_text=_("The delivery event that caused it."),
    )
    note = models.TextField(
        blank=True, help_text=_("Why, in words: the provider's diagnostic, or support's note.")
    )
    provider = models.CharField(
        max_length=64, blank=True, help_text=_("The account whose list it came from, if any.")
    )
    provider_suppression_id = models.CharField(
        max_length=255, blank=True, help_text=_("The provider's id for it, to remove it there too.")
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["address", "stream"], name="txmail_suppression_once_per_stream"
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} ({self.stream or 'every stream'}: {self.reason})"


class AccountThrottle(models.Model):
    """What every process sending through one account shares (``sending/quota.py``).

    One row per account, and one per lane that has its own share of the
    account's ``RATE_LIMIT`` (key ``"<account>:<lane>"``). Times are Unix
    seconds: every sending machine's clock is assumed to be kept by NTP.
    """

    key = models.CharField(max_length=80, unique=True)
    #: When the next request may go: past requests were given evenly spaced slots up
    #: to here, and a provider's 429 ``Retry-After`` pushes it forward.
    next_at = models.FloatField(default=0.0)
    #: The circuit breaker (``sending/failover.py``): failed requests in a row, and until
    #: when the account counts as down (then one request tries it again).
    failures = models.PositiveIntegerField(default=0)
    open_until = models.FloatField(default=0.0)

    class Meta:
        verbose_name = _("account throttle")

    def __str__(self) -> str:
        return self.key
