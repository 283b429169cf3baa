"""``api/schema/`` (OpenAPI 3) and ``api/docs/`` (Swagger UI, served by the project: no CDN).

Served when drf-spectacular is installed (the extra ``api``), with
``"drf_spectacular"`` and ``"drf_spectacular_sidecar"`` (the UI's files) in
``INSTALLED_APPS``. Reading them needs a signed-in user, as the API does.
The document describes this app's API only, whatever else the project serves.
"""

from __future__ import annotations

from django.templatetags.static import static
from django.urls import path
from rest_framework.permissions import IsAuthenticated

from django_txmail.api.schema import SPECTACULAR

urlpatterns: list = []


def only_this_api(endpoints: list, **kwargs) -> list:
    """drf-spectacular's preprocessing hook: the endpoints of ``api/views.py`` only."""
    return [
        e
        for e in endpoints
        if getattr(e[3], "cls", None) and e[3].cls.__module__ == __package__ + ".views"
    ]


SETTINGS = {
    "TITLE": "django-txmail API",
    "DESCRIPTION": (
        "Send, follow and manage transactional mail. Every error has the body "
        '{"code", "message", "fields"?}; see docs/api.md.'
    ),
    "VERSION": "1",
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": [__name__ + ".only_this_api"],
}

if SPECTACULAR:
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    class SchemaView(SpectacularAPIView):
        permission_classes = [IsAuthenticated]
        schema = None  # left out of every OpenAPI document, as is DocsView
        custom_settings = SETTINGS

    class DocsView(SpectacularSwaggerView):
        permission_classes = [IsAuthenticated]
        title = SETTINGS["TITLE"]
        url_name = "txmail:api-schema"
        schema = None

        @staticmethod
        def _swagger_ui_resource(filename: str) -> str:
            return static(f"drf_spectacular_sidecar/swagger-ui-dist/{filename}")

        @staticmethod
        def _swagger_ui_favicon() -> str:
            return static("drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")

    urlpatterns = [
        path("api/schema/", SchemaView.as_view(), name="api-schema"),
        path("api/docs/", DocsView.as_view(), name="api-docs"),
    ]
