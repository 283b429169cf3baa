"""Read access to the outbox over HTTP, for staff and for service checks (DRF)."""

from __future__ import annotations

from rest_framework import generics, permissions, serializers

from django_txmail.models import Attempt, Message


class AttemptSerializer(serializers.ModelSerializer):
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


class MessageSerializer(serializers.ModelSerializer):
    attempt_log = AttemptSerializer(many=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "status",
            "stream",
            "recipient_status",
            "route",
            "provider",
            "from_email",
            "to",
            "cc",
            "subject",
            "metadata",
            "tags",
            "provider_message_id",
            "attempts",
            "last_error",
            "created_at",
            "sent_at",
            "attempt_log",
        ]


class MessageDetail(generics.RetrieveAPIView):
    """``GET api/messages/<id>/``: one message's status and attempts (staff only)."""

    queryset = Message.objects.prefetch_related("attempt_log")
    serializer_class = MessageSerializer
    permission_classes = [permissions.IsAdminUser]
