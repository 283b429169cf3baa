"""OpenAPI descriptions, when drf-spectacular is installed (the extra ``api``).

Without it the API works the same; only ``api/schema/`` and ``api/docs/``
are not served, and the decorators below change nothing.
"""

from __future__ import annotations

from typing import Any

from rest_framework.schemas import DefaultSchema

from django_txmail.api.serializers import ErrorSerializer

try:
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.utils import OpenApiExample, OpenApiResponse
    from drf_spectacular.utils import extend_schema as _extend_schema

    def extend_schema(**kwargs: Any):
        """drf-spectacular's ``extend_schema`` for a view method, based on its
        AutoSchema whatever the project's ``DEFAULT_SCHEMA_CLASS``."""

        def decorate(method):
            method.schema = AutoSchema  # the base ``extend_schema`` builds on
            return _extend_schema(**kwargs)(method)

        return decorate

except ImportError:  # the API without its description
    AutoSchema = None
    OpenApiResponse = None

    def extend_schema(**kwargs: Any):
        return lambda method: method

    def OpenApiExample(*args: Any, **kwargs: Any) -> None:  # noqa: N802 (drf-spectacular's name)
        return None


SPECTACULAR = AutoSchema is not None


def view_schema():
    """The schema inspector a view uses: drf-spectacular's, or DRF's default."""
    return AutoSchema() if SPECTACULAR else DefaultSchema()


def errors(*statuses: int) -> dict[int, Any]:
    """The error responses of an operation, all in the one error shape."""
    if not SPECTACULAR:
        return {}
    return {code: OpenApiResponse(ErrorSerializer, description="An error.") for code in statuses}


__all__ = ["SPECTACULAR", "OpenApiExample", "errors", "extend_schema", "view_schema"]
