"""The API's wire formats, declared (Django REST framework serializers).

A send's body becomes a :class:`~django_txmail.message.TxMessage`, exactly
what a Python caller would build: everything about the message itself
(addresses, sizes, templates, suppressions, routes, what the provider can
carry) is then checked by the backend, the same way as for ``send_mail()``.
What is checked here is only the wire format: types, base64, unknown fields
(refused, never ignored), and choices the settings name.
"""

from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

from rest_framework import serializers

from django_txmail.api.permissions import can_view
from django_txmail.conf import get_settings
from django_txmail.flow import PRIORITIES
from django_txmail.message import TxMessage
from django_txmail.models import (
    Attempt,
    DeliveryEvent,
    Message,
    SendingDomain,
    Suppression,
    Template,
)
from django_txmail.suppressions import EVERY_STREAM


class Strict:
    """Refuses fields it does not know, so a misspelt option is never silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictSerializer(Strict, serializers.Serializer):
    pass


class Base64Field(serializers.CharField):
    """Bytes sent as standard base64 (RFC 4648, padded)."""

    default_error_messages = {"invalid_base64": "Not valid base64."}

    def to_internal_value(self, data: Any) -> bytes:
        text = super().to_internal_value(data)
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.fail("invalid_base64")


class AttachmentSerializer(StrictSerializer):
    filename = serializers.CharField(max_length=255)
    content = Base64Field(help_text="The file's bytes in base64.", trim_whitespace=False)
    type = serializers.CharField(max_length=255, required=False, default="application/octet-stream")


def _addresses(help_text: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=998), required=False, help_text=help_text
    )


def _json_object() -> serializers.DictField:
    return serializers.DictField(child=serializers.JSONField(), required=False)


class SendSerializer(StrictSerializer):
    """``POST api/messages/``: a message, with the extras ``TxMessage`` takes.

    The sender is the JSON field ``from`` ("Name <address>" or an address).
    """

    to = _addresses("Recipients: 'ann@example.com' or 'Ann <ann@example.com>'.")
    cc = _addresses("Carbon-copy recipients.")
    bcc = _addresses("Hidden recipients (never sent as a header).")
    reply_to = _addresses("Reply-To addresses.")
    subject = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    text = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    html = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    template = serializers.SlugField(
        required=False, help_text="A stored template's slug, instead of subject, text and html."
    )
    template_vars = _json_object()
    language = serializers.CharField(required=False, max_length=15)
    attachments = AttachmentSerializer(many=True, required=False)
    headers = serializers.DictField(child=serializers.CharField(), required=False)
    metadata = _json_object()
    tags = serializers.ListField(child=serializers.CharField(max_length=255), required=False)
    stream = serializers.CharField(required=False, max_length=64)
    priority = serializers.ChoiceField(choices=PRIORITIES, required=False)
    send_at = serializers.DateTimeField(required=False)
    track_opens = serializers.BooleanField(required=False)
    track_clicks = serializers.BooleanField(required=False)
    template_id = serializers.CharField(required=False, help_text="A provider-hosted template.")
    merge_global_data = _json_object()
    esp_extra = _json_object()
    reply_to_message_id = serializers.CharField(required=False)
    grant_id = serializers.CharField(required=False)
    provider = serializers.CharField(required=False, help_text="A TXMAIL['PROVIDERS'] account.")
    ical_event = serializers.CharField(required=False, trim_whitespace=False)
    stream_type = serializers.CharField(required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        # "from" is a Python keyword: declared here rather than as an attribute.
        fields["from"] = serializers.CharField(
            source="from_email", max_length=998, help_text="The sender; it picks the route."
        )
        return fields

    def validate_stream(self, value: str) -> str:
        return _configured("stream", value, get_settings().streams)

    def validate_provider(self, value: str) -> str:
        return _configured("provider", value, get_settings().providers)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "template" in attrs and {"subject", "text", "html"} & set(attrs):
            raise serializers.ValidationError(
                "Give either a template or subject/text/html, not both.",
                code="template_and_body",
            )
        return attrs

    def message(self) -> TxMessage:
        """The validated body as the ``TxMessage`` a Python caller would send."""
        data = dict(self.validated_data)
        attachments = data.pop("attachments", [])
        html = data.pop("html", None)
        message = TxMessage(
            subject=data.pop("subject", ""),
            body=data.pop("text", ""),
            from_email=data.pop("from_email"),
            to=data.pop("to", []),
            cc=data.pop("cc", []),
            bcc=data.pop("bcc", []),
            reply_to=data.pop("reply_to", []),
            headers=data.pop("headers", {}),
            **data,
        )
        if html:
            message.attach_alternative(html, "text/html")
        for attachment in attachments:
            message.attach(attachment["filename"], attachment["content"], attachment["type"])
        return message


def _configured(what: str, value: str, known: dict) -> str:
    if value not in known:
        raise serializers.ValidationError(
            f"No {what} {value!r} is configured (known: {', '.join(sorted(known))}).",
            code="unknown_" + what,
        )
    return value


# A ``ModelSerializer`` whose fields are worked out from the model once per class. DRF
# works them out again for every serializer made (every answer of a send), which costs
# more than writing the answer. They depend only on the class (its ``Meta`` and declared
# fields; a subclass that changes them per request does so after ``super().get_fields()``),
# so they are built once, and every serializer gets a deep copy of its own to bind, as DRF
# does with declared fields. (No docstring: the OpenAPI document would show it as the
# description of every serializer without one.)
class ModelSerializer(serializers.ModelSerializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        cls = type(self)
        built = cls.__dict__.get("_fields_built")
        if built is None:
            built = super().get_fields()
            cls._fields_built = built  # two threads may both build it: either will do
        return copy.deepcopy(built)


class AttemptSerializer(ModelSerializer):
    class Meta:
        model = Attempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "outcome",
            "http_status",
            "error_type",
            "error_message",
        ]


class EventSerializer(ModelSerializer):
    class Meta:
        model = DeliveryEvent
        fields = [
            "id",
            "message",
            "provider",
            "type",
            "provider_type",
            "recipient",
            "occurred_at",
            "received_at",
            "bounce_type",
            "reason",
            "click_url",
        ]


class MessageSerializer(ModelSerializer):
    """A message as listed: its status and what it was, without its content."""

    class Meta:
        model = Message
        fields = [
            "id",
            "status",
            "stream",
            "recipient_status",
            "route",
            "provider",
            "route_domain",
            "from_email",
            "to",
            "cc",
            "subject",
            "template",
            "metadata",
            "tags",
            "provider_message_id",
            "attempts",
            "last_error",
            "resent_from",
            "created_at",
            "sent_at",
        ]


class MessageDetailSerializer(MessageSerializer):
    """One message, with its attempts and events for holders of their view permissions
    (as the admin shows them)."""

    attempt_log = AttemptSerializer(many=True, read_only=True)
    events = EventSerializer(many=True, read_only=True)

    class Meta(MessageSerializer.Meta):
        fields = [*MessageSerializer.Meta.fields, "attempt_log", "events"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        request = self.context.get("request")
        for name, model in (("attempt_log", Attempt), ("events", DeliveryEvent)):
            if request is None or not can_view(request.user, model):
                del fields[name]
        return fields


class SuppressionSerializer(Strict, ModelSerializer):
    stream = serializers.CharField(
        required=False, allow_blank=True, default=EVERY_STREAM, help_text="Blank: every stream."
    )

    class Meta:
        model = Suppression
        fields = ["id", "address", "stream", "reason", "note", "created_at"]
        read_only_fields = ["id", "reason", "created_at"]
        # The address and stream pair is unique: adding it again answers the entry there.
        validators: list = []

    def validate_stream(self, value: str) -> str:
        if value == EVERY_STREAM:
            return value
        return _configured("stream", value, get_settings().streams)


class TemplateSerializer(ModelSerializer):
    class Meta:
        model = Template
        fields = ["slug", "name", "version", "strict", "sample_vars", "updated_at"]


class RenderSerializer(StrictSerializer):
    template_vars = _json_object()
    language = serializers.CharField(required=False, max_length=15)


class RenderedSerializer(serializers.Serializer):
    slug = serializers.CharField()
    version = serializers.IntegerField()
    language = serializers.CharField()
    subject = serializers.CharField()
    html = serializers.CharField()
    text = serializers.CharField()
    missing = serializers.ListField(child=serializers.CharField())


class DomainSerializer(ModelSerializer):
    class Meta:
        model = SendingDomain
        fields = ["name", "provider", "status", "allow_unverified", "records", "last_checked"]


class DomainReportSerializer(serializers.Serializer):
    domain = serializers.CharField()
    provider = serializers.CharField()
    status = serializers.CharField()
    passed = serializers.BooleanField()
    checked_at = serializers.DateTimeField()
    nameserver = serializers.CharField()
    problems = serializers.ListField(child=serializers.CharField())
    records = serializers.ListField(child=serializers.DictField())


class ErrorSerializer(serializers.Serializer):
    """Every error's body (see ``api/errors.py``)."""

    code = serializers.CharField(help_text="Machine-readable: unknown_field, not_found...")
    message = serializers.CharField()
    fields = serializers.DictField(required=False, help_text="Per field: [{message, code}].")
