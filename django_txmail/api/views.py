"""The REST API: send, follow and manage mail over HTTP (Django REST framework).

Every view is thin: it checks the wire format (``serializers.py``), asks
for Django's model permissions as the admin does (``permissions.py``), and
calls the Python function a Python caller would: the email backend to send
(compose → route → record, as ``send_mail()``), ``outbox.resend.resend`` /
``retry``, ``outbox.cancel.cancel``, ``suppressions.suppress``,
``tracking.provider_lists.lift``, ``stored_templates.render.render_template``,
``dns.verify.verify_domains``. Errors come in one shape (``errors.py``).
Authentication and throttling are the project's DRF settings.
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db.models import QuerySet
from django.urls import reverse
from rest_framework import generics, pagination, parsers, status
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response

from django_txmail import suppressions
from django_txmail.api import filters, serializers
from django_txmail.api.errors import RequestTooLarge, exception_handler
from django_txmail.api.permissions import ModelPermissions
from django_txmail.api.schema import OpenApiExample, errors, extend_schema, view_schema
from django_txmail.backends import EmailBackend
from django_txmail.dns.verify import verify_domains
from django_txmail.models import DeliveryEvent, Message, SendingDomain, Suppression, Template
from django_txmail.outbox.cancel import cancel
from django_txmail.outbox.resend import resend, retry
from django_txmail.stored_templates.render import render_template
from django_txmail.tracking.provider_lists import lift


class Cursor(pagination.CursorPagination):
    """By cursor, in the view's ``ordering`` (newest first by default): never a COUNT
    over the outbox."""

    ordering = "-created_at"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_ordering(self, request: Request, queryset: QuerySet, view: Any) -> tuple[str, ...]:
        return (getattr(view, "ordering", None) or self.ordering,)


class APIView(generics.GenericAPIView):
    """What every view of the API shares: permissions, errors, parsing, schema."""

    permission_classes = [ModelPermissions]
    parser_classes = [parsers.JSONParser]
    pagination_class = Cursor
    schema = view_schema()
    #: Method → the permission's codename, where it is not Django's default for the method.
    required_permissions: dict[str, str] = {}
    #: The order the pages follow (``Cursor``), where it is not the newest first.
    ordering: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Refused on its stated length, before a byte of it is read.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        length = request.META.get("CONTENT_LENGTH") or "0"
        if limit is not None and length.isdigit() and int(length) > limit:
            raise RequestTooLarge()

    def get_exception_handler(self):
        return exception_handler

    def filtered(self, filter_class: type, function, queryset: QuerySet) -> QuerySet:
        query = filter_class(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        return function(queryset, **query.validated_data)

    def page(self, queryset: QuerySet) -> Response:
        rows = self.paginate_queryset(queryset)
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


class RowList(APIView):
    """``GET``: every row, page by page (its schema declared on each view)."""

    def get(self, request: Request) -> Response:
        return self.page(self.get_queryset())


def listed(serializer: type) -> Any:
    """The schema of a ``RowList``'s GET: pages of ``serializer``."""
    return extend_schema(responses={200: serializer(many=True), **errors(401, 403, 404)})


def message_response(message: Message, request: Request, code: int = 200) -> Response:
    body = serializers.MessageSerializer(message, context={"request": request}).data
    headers = {}
    if code == status.HTTP_201_CREATED:
        namespace = request.resolver_match.namespace if request.resolver_match else ""
        name = f"{namespace}:message-detail" if namespace else "message-detail"
        headers["Location"] = request.build_absolute_uri(reverse(name, args=[message.pk]))
    return Response(body, status=code, headers=headers)


SEND_EXAMPLE = {
    "from": "Shop <noreply@example.com>",
    "to": ["ann@example.org"],
    "subject": "Your receipt",
    "text": "Thanks for your order.",
    "metadata": {"order": "1042"},
    "tags": ["receipt"],
}


_open = threading.local()
_settings_changes = 0  # TXMAIL changed (tests): every thread opens its backend again


def backend() -> EmailBackend:
    """This thread's email backend, kept open from one request to the next.

    A server thread that sends on every request then keeps its HTTP
    connections to the provider and the routes it has looked up (for
    ``routing.ROUTE_MAX_AGE``, or until a Grant or SendingDomain changes),
    as any backend kept open does, instead of opening both again per message.
    """
    opened = getattr(_open, "backend", None)
    if opened is not None and _open.changes != _settings_changes:
        opened.close()
        opened = None
    if opened is None:
        opened = EmailBackend(fail_silently=False)
        opened.open()
        _open.backend, _open.changes = opened, _settings_changes
    return opened


def _txmail_changed(*, setting: str, **kwargs: Any) -> None:
    global _settings_changes
    if setting == "TXMAIL":
        _settings_changes += 1


setting_changed.connect(_txmail_changed, dispatch_uid="txmail-api-backends")


class MessageList(APIView):
    """``GET api/messages/`` lists, ``POST api/messages/`` sends."""

    queryset = Message.objects.all()
    serializer_class = serializers.MessageSerializer
    required_permissions = {"POST": "send_message"}

    @extend_schema(
        parameters=[filters.MessageFilter],
        responses={200: serializers.MessageSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        return self.page(
            self.filtered(filters.MessageFilter, filters.filter_messages, self.get_queryset())
        )

    @extend_schema(
        request=serializers.SendSerializer,
        responses={
            200: serializers.MessageSerializer,
            201: serializers.MessageSerializer,
            **errors(400, 401, 403, 409, 413, 415, 422),
        },
        examples=[OpenApiExample("A receipt", value=SEND_EXAMPLE, request_only=True)],
        description=(
            "Sends a message through the same path as send_mail(). With an Idempotency-Key "
            "header, the same key and body answer the first message (200); the same key with "
            "another body is a 409."
        ),
    )
    def post(self, request: Request) -> Response:
        body = serializers.SendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        message = body.message()
        key = request.headers.get("Idempotency-Key", "")
        if key:
            message.idempotency_key = key
        backend().send_messages([message])
        # The row as the send left it: no second read (``TxMailResult.message``).
        result = message.txmail
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return message_response(result.message, request, code)


class MessageDetail(APIView, generics.RetrieveAPIView):
    """``GET api/messages/<id>/``: one message, with attempts and events (as the admin shows)."""

    queryset = Message.objects.prefetch_related("attempt_log", "events")
    serializer_class = serializers.MessageDetailSerializer

    @extend_schema(responses={200: serializers.MessageDetailSerializer, **errors(401, 403, 404)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class MessageAction(APIView):
    """``POST api/messages/<id>/<action>/``: the admin's action on one message."""

    queryset = Message.objects.all()
    serializer_class = serializers.MessageSerializer
    created = False

    def act(self, message: Message) -> Message:
        raise NotImplementedError

    @extend_schema(
        request=None,
        responses={
            200: serializers.MessageSerializer,
            201: serializers.MessageSerializer,
            **errors(401, 403, 404, 409, 422),
        },
    )
    def post(self, request: Request, pk: Any) -> Response:
        message = self.act(self.get_object())
        return message_response(message, request, 201 if self.created else 200)


class Resend(MessageAction):
    """Record the message again as a new one and send it (201, the new message)."""

    required_permissions = {"POST": "resend_message"}
    created = True

    def act(self, message: Message) -> Message:
        return resend(message)


class Retry(MessageAction):
    """One more attempt at a failed message, now."""

    required_permissions = {"POST": "retry_message"}

    def act(self, message: Message) -> Message:
        return retry(message)


class Cancel(MessageAction):
    """Cancel a message that has not been sent yet."""

    required_permissions = {"POST": "cancel_message"}

    def act(self, message: Message) -> Message:
        cancel(message)
        return message


class EventList(APIView):
    """``GET api/events/``: delivery events, newest first."""

    queryset = DeliveryEvent.objects.all()
    serializer_class = serializers.EventSerializer
    ordering = "-occurred_at"

    @extend_schema(
        parameters=[filters.EventFilter],
        responses={200: serializers.EventSerializer(many=True), **errors(400, 401, 403, 404)},
    )
    def get(self, request: Request) -> Response:
        return self.page(
            self.filtered(filters.EventFilter, filters.filter_events, self.get_queryset())
        )


@listed(serializers.SuppressionSerializer)
class SuppressionList(RowList):
    """``GET api/suppressions/`` lists, ``POST`` adds (``suppressions.suppress``)."""

    queryset = Suppression.objects.all()
    serializer_class = serializers.SuppressionSerializer

    @extend_schema(
        request=serializers.SuppressionSerializer,
        responses={
            200: serializers.SuppressionSerializer,
            201: serializers.SuppressionSerializer,
            **errors(400, 401, 403, 413, 415),
        },
    )
    def post(self, request: Request) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        entry, created = suppressions.suppress(**body.validated_data)
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(self.get_serializer(entry).data, status=code)


class SuppressionDetail(APIView):
    """``DELETE api/suppressions/<id>/``: lift it, at the provider too (as the admin does)."""

    queryset = Suppression.objects.all()
    serializer_class = serializers.SuppressionSerializer

    @extend_schema(responses={204: None, **errors(401, 403, 404, 422)})
    def delete(self, request: Request, pk: int) -> Response:
        lift(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@listed(serializers.TemplateSerializer)
class TemplateList(RowList):
    """``GET api/templates/``: the stored templates."""

    queryset = Template.objects.all()
    serializer_class = serializers.TemplateSerializer
    ordering = "slug"


class TemplateRender(APIView):
    """``POST api/templates/<slug>/render/``: strict rendering with the given variables,
    within the same time and size budgets as any render."""

    queryset = Template.objects.all()
    serializer_class = serializers.RenderSerializer
    lookup_field = "slug"
    required_permissions = {"POST": "view_template"}

    @extend_schema(
        request=serializers.RenderSerializer,
        responses={
            200: serializers.RenderedSerializer,
            **errors(400, 401, 403, 404, 413, 415, 422),
        },
    )
    def post(self, request: Request, slug: str) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        rendered = render_template(
            self.get_object(),
            body.validated_data.get("template_vars", {}),
            language=body.validated_data.get("language"),
            strict=True,
        )
        return Response(serializers.RenderedSerializer(rendered).data)


@listed(serializers.DomainSerializer)
class DomainList(RowList):
    """``GET api/domains/``: the sending domains and their DNS status."""

    queryset = SendingDomain.objects.all()
    serializer_class = serializers.DomainSerializer
    ordering = "name"


class DomainVerify(APIView):
    """``POST api/domains/<name>/verify/``: check its DNS now (every account that sends
    from it); the reports, as ``txmail_verify_domains --json`` gives them."""

    queryset = SendingDomain.objects.all()
    serializer_class = serializers.DomainReportSerializer
    required_permissions = {"POST": "verify_sendingdomain"}

    @extend_schema(
        request=None,
        responses={200: serializers.DomainReportSerializer(many=True), **errors(401, 403, 404)},
    )
    def post(self, request: Request, name: str) -> Response:
        domains = list(self.get_queryset().filter(name=name.lower()))
        if not domains:
            raise NotFound(f"No sending domain {name!r}.")
        return Response([report.as_dict() for report in verify_domains(domains)])
