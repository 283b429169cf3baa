"""The API's OpenAPI document: valid, complete (every endpoint and method of
``api/``), with the error shape and examples; the docs page served without a CDN."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.settings import patched_settings
from openapi_spec_validator import validate

from django_txmail.api.docs import SETTINGS, DocsView, SchemaView
from django_txmail.api.errors import not_found
from tests.api_helpers import user_with

pytestmark = pytest.mark.django_db

METHODS = ("get", "post", "put", "patch", "delete")


def api_schema() -> dict:
    with patched_settings(SETTINGS):
        return SchemaGenerator().get_schema(request=None, public=True)


def api_endpoints(patterns=None, prefix: str = "/"):
    """(path in OpenAPI form, method) of every view routed under ``api/``, but the docs."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from api_endpoints(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and "api/" in prefix + str(entry.pattern):
            if entry.callback is not_found:
                continue
            view = entry.callback.cls
            if view in (SchemaView, DocsView):
                continue
            route = (prefix + str(entry.pattern)).replace("<uuid:pk>", "{id}")
            route = route.replace("<int:pk>", "{id}").replace("<slug:slug>", "{slug}")
            route = route.replace("<str:name>", "{name}")
            for method in METHODS:
                if hasattr(view, method):
                    yield route, method


def test_the_document_is_valid_openapi_3():
    schema = api_schema()
    assert schema["openapi"].startswith("3.")
    validate(schema)


def test_every_endpoint_and_method_of_the_api_is_described():
    paths = api_schema()["paths"]
    routed = set(api_endpoints())
    assert len(routed) >= 14
    described = {(path, method) for path, ops in paths.items() for method in ops}
    assert routed - described == set(), "endpoints without a schema"
    assert described - routed == set(), "schema entries without an endpoint"


def test_every_operation_documents_its_errors_in_the_one_shape():
    for path, operations in api_schema()["paths"].items():
        for method, operation in operations.items():
            errors = {code: r for code, r in operation["responses"].items() if code >= "400"}
            assert {"401", "403"} <= set(errors), (method, path)
            for response in errors.values():
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith("/Error"), (method, path)


def test_the_send_operation_has_its_body_and_an_example():
    send = api_schema()["paths"]["/txmail/api/messages/"]["post"]
    body = send["requestBody"]["content"]["application/json"]
    assert body["examples"]
    assert {"201", "200", "409", "413"} <= set(send["responses"])


def test_the_schema_is_served_to_a_signed_in_user(client):
    client.force_login(user_with())
    response = client.get(reverse("txmail:api-schema"), HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/txmail/api/messages/" in response.json()["paths"]


def test_the_docs_page_loads_its_files_from_the_project_not_a_cdn(client):
    client.force_login(user_with())
    page = client.get(reverse("txmail:api-docs")).text
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "https://" not in page


def test_a_path_that_matches_no_route_is_a_404_in_the_error_shape(client):
    client = type(client)(enforce_csrf_checks=True)
    client.force_login(user_with())
    for method in (client.get, client.post, client.delete):
        response = method("/txmail/api/messages/not-a-uuid/cancel/")
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_a_component_is_described_only_by_its_own_serializers_docstring():
    """Or, for a body that refuses unknown fields, by ``Strict``'s: never by another base
    class (a docstring there would describe every serializer without one of its own)."""
    import inspect

    from django_txmail.api import serializers

    classes = {
        name.removesuffix("Serializer"): cls
        for name, cls in vars(serializers).items()
        if isinstance(cls, type) and name.endswith("Serializer")
    }
    components = api_schema()["components"]["schemas"]
    checked = 0
    for component, schema in components.items():
        cls = classes.get(component) or classes.get(component.removesuffix("Request"))
        if cls is None:
            continue  # an enum of a field's choices
        checked += 1
        # Its own docstring, else what every strict body shares (unknown fields refused).
        own = cls.__dict__.get("__doc__") or (
            serializers.Strict.__doc__ if issubclass(cls, serializers.Strict) else None
        )
        assert schema.get("description") == (inspect.cleandoc(own) if own else None), component
    assert checked >= len(classes) - 2, "the components were not found by their names"
