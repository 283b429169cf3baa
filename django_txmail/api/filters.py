"""The list filters of the API, as Python functions and as declared query parameters.

``filter_messages(Message.objects.all(), status="bounced", tag="receipt")``
is what ``GET api/messages/?status=bounced&tag=receipt`` runs. Every filter
is an indexed column or a narrow scan of one; no list ever counts its rows.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connections
from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from rest_framework import serializers

from django_txmail.api.serializers import StrictSerializer
from django_txmail.event_types import EventType
from django_txmail.models import DeliveryEvent, Message

#: Query parameters of the pagination, allowed beside the filters.
PAGING = ("cursor", "page_size")


class QuerySerializer(StrictSerializer):
    """Query parameters: the filters below, unknown ones refused (a typo never lists all)."""

    def to_internal_value(self, data: Any) -> Any:
        data = {k: v for k, v in data.items() if k not in PAGING}
        return super().to_internal_value(data)


class DateRange(QuerySerializer):
    after = serializers.DateTimeField(required=False, help_text="From this time on (inclusive).")
    before = serializers.DateTimeField(required=False, help_text="Before this time.")


class MessageFilter(DateRange):
    status = serializers.ChoiceField(Message.Status.choices, required=False)
    stream = serializers.CharField(required=False)
    recipient = serializers.CharField(required=False, help_text="A To, Cc or Bcc address.")
    domain = serializers.CharField(required=False, help_text="The sending domain.")
    template = serializers.CharField(required=False, help_text="A stored template's slug.")
    tag = serializers.CharField(required=False)
    metadata_key = serializers.CharField(required=False)
    metadata_value = serializers.CharField(
        required=False, help_text="With metadata_key: messages whose metadata has this value."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "metadata_value" in attrs and "metadata_key" not in attrs:
            raise serializers.ValidationError(
                "metadata_value needs metadata_key.", code="metadata_key_missing"
            )
        return attrs


class EventFilter(DateRange):
    type = serializers.ChoiceField([t.value for t in EventType], required=False)
    recipient = serializers.CharField(required=False)
    message = serializers.UUIDField(required=False)


def _dates(queryset: QuerySet, field: str, after: datetime | None, before: datetime | None):
    if after is not None:
        queryset = queryset.filter(**{f"{field}__gte": after})
    if before is not None:
        queryset = queryset.filter(**{f"{field}__lt": before})
    return queryset


def _has_recipient(address: str) -> Q:
    """``recipient_emails`` holds the addresses one a line: match a whole line."""
    address = address.lower()
    return (
        Q(recipient_emails=address)
        | Q(recipient_emails__startswith=address + "\n")
        | Q(recipient_emails__endswith="\n" + address)
        | Q(recipient_emails__contains="\n" + address + "\n")
    )


def _has_tag(queryset: QuerySet[Message], tag: str) -> QuerySet[Message]:
    if connections[queryset.db].features.supports_json_field_contains:
        return queryset.filter(tags__contains=[tag])
    # SQLite stores the list as JSON text: find the tag as a JSON string in it.
    return queryset.annotate(_tags=Cast("tags", TextField())).filter(
        _tags__contains=json.dumps(tag)
    )


def filter_messages(
    queryset: QuerySet[Message],
    *,
    status: str | None = None,
    stream: str | None = None,
    recipient: str | None = None,
    domain: str | None = None,
    template: str | None = None,
    tag: str | None = None,
    metadata_key: str | None = None,
    metadata_value: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[Message]:
    """The messages of ``queryset`` that match every filter given."""
    exact = {"status": status, "stream": stream, "route_domain": domain, "template": template}
    queryset = queryset.filter(**{k: v for k, v in exact.items() if v is not None})
    if recipient is not None:
        queryset = queryset.filter(_has_recipient(recipient))
    if tag is not None:
        queryset = _has_tag(queryset, tag)
    if metadata_key is not None:
        queryset = queryset.filter(metadata__has_key=metadata_key)
        if metadata_value is not None:  # a JSON string, as metadata values are sent
            value = KeyTransform(metadata_key, "metadata")
            queryset = queryset.alias(_meta=value).filter(_meta=metadata_value)
    return _dates(queryset, "created_at", after, before)


def filter_events(
    queryset: QuerySet[DeliveryEvent],
    *,
    type: str | None = None,  # noqa: A002 (the API's name)
    recipient: str | None = None,
    message: Any = None,
    after: datetime | None = None,
    before: datetime | None = None,
) -> QuerySet[DeliveryEvent]:
    """The delivery events of ``queryset`` that match every filter given."""
    if type is not None:
        queryset = queryset.filter(type=type)
    if recipient is not None:
        queryset = queryset.filter(recipient__iexact=recipient)
    if message is not None:
        queryset = queryset.filter(message_id=message)
    return _dates(queryset, "occurred_at", after, before)
