"""Every API error in one JSON shape, with a machine-readable code.

``{"code": "...", "message": "...", "fields": {...}}``: ``code`` is the
first reason (``unknown_field``, ``invalid_base64``, ``unroutable_sender``,
``permission_denied``...), ``message`` says it in words, and ``fields``
(input errors only) gives each field's reasons as ``{"message", "code"}``.
django-txmail's own errors (``exceptions.py``) keep their ``error_type`` as
the code; this module only decides their HTTP status.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from django_txmail.exceptions import (
    CannotCancel,
    CannotResend,
    CannotRetry,
    IdempotencyKeyReused,
    InvalidMessage,
    ProviderAPIError,
    TxMailError,
)

#: The HTTP status of each kind of django-txmail error; the first match wins.
STATUS_OF_ERROR: tuple[tuple[type[TxMailError], int], ...] = (
    (IdempotencyKeyReused, status.HTTP_409_CONFLICT),
    (CannotCancel, status.HTTP_409_CONFLICT),
    (CannotResend, status.HTTP_409_CONFLICT),
    (CannotRetry, status.HTTP_409_CONFLICT),
    (InvalidMessage, status.HTTP_400_BAD_REQUEST),
    # The provider refused the message for good: it is recorded "failed".
    (ProviderAPIError, status.HTTP_422_UNPROCESSABLE_ENTITY),
    # Unroutable sender, unsupported feature, template error...
    (TxMailError, status.HTTP_422_UNPROCESSABLE_ENTITY),
)


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = "The request body is too large."


class TxMailAPIError(exceptions.APIException):
    """A django-txmail error as an API answer."""

    def __init__(self, error: TxMailError) -> None:
        self.status_code = next(code for kind, code in STATUS_OF_ERROR if isinstance(error, kind))
        super().__init__(str(error), error.error_type or "txmail_error")


def _first(details: Any) -> dict[str, str]:
    """The first ``{"message", "code"}`` of DRF's nested error details."""
    if isinstance(details, dict) and set(details) == {"message", "code"}:
        return details
    values = details.values() if isinstance(details, dict) else details
    return next(_first(value) for value in values)


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF's handler, with django-txmail's errors mapped and one body shape."""
    if isinstance(exc, TxMailError):
        exc = TxMailAPIError(exc)
    elif isinstance(exc, RequestDataTooBig):  # Django's own check, reading the body
        exc = RequestTooLarge()
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    details = exc.get_full_details()  # type: ignore[attr-defined]
    body: dict[str, Any]
    if isinstance(exc, exceptions.ValidationError):
        first = _first(details)
        body = {"code": first["code"], "message": first["message"]}
        if isinstance(details, dict):
            body["fields"] = details
    else:
        body = {"code": details["code"], "message": details["message"]}
    response.data = body
    return response


@csrf_exempt  # it changes nothing: a POST gets its 404, not the CSRF page
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Any other path under ``api/``: a 404 in the same shape, not the project's HTML page."""
    body = {"code": "not_found", "message": f"No API endpoint at {request.path}."}
    return JsonResponse(body, status=status.HTTP_404_NOT_FOUND)
