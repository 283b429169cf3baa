"""Read access to the outbox over HTTP, for staff and for service checks (DRF).

Authorisation is Django's model permissions, the same as the admin's: a
request needs the permission the admin would ask for the same thing
(``view_message`` to read a message), and what the admin shows only to
holders of another model's permission (a message's attempts:
``view_attempt``) is left out for everyone else. Authentication is the
project's DRF setting.
"""

from __future__ import annotations

from rest_framework import generics, permissions, serializers

from django_txmail.models import Attempt, Message


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, reading included: GET needs ``view_<model>``."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


def can_view(user, model) -> bool:
    """Whether ``user`` may see rows of ``model``, as the admin decides (view or change)."""
    opts = model._meta
    return user.has_perm(f"{opts.app_label}.view_{opts.model_name}") or user.has_perm(
        f"{opts.app_label}.change_{opts.model_name}"
    )


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

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is None or not can_view(request.user, Attempt):
            del fields["attempt_log"]
        return fields


class MessageDetail(generics.RetrieveAPIView):
    """``GET api/messages/<id>/``: one message's status (and attempts, with ``view_attempt``)."""

    queryset = Message.objects.prefetch_related("attempt_log")
    serializer_class = MessageSerializer
    permission_classes = [ModelPermissions]
