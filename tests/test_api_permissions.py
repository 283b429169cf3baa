"""The JSON API asks for Django's model permissions, as the admin does."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from django_txmail.api.docs import DocsView, SchemaView
from django_txmail.api.errors import not_found
from django_txmail.api.permissions import ModelPermissions
from tests.message_rows import message_row

pytestmark = pytest.mark.django_db


@pytest.fixture
def message(db):
    return message_row(subject="Payslip for Ann", metadata={"salary": "secret"})


def user_with(*codenames: str, staff: bool = True) -> User:
    user = User.objects.create_user("support", password="pw", is_staff=staff)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # a fresh object: no cached permissions


def test_staff_without_the_view_permission_cannot_read_a_message(client, message):
    client.force_login(user_with())
    response = client.get(reverse("txmail:message-detail", args=[message.pk]))
    assert response.status_code == 403
    assert "Payslip" not in response.text and "secret" not in response.text


def test_the_view_permission_reads_a_message_without_its_attempts(client, message):
    client.force_login(user_with("view_message"))
    body = client.get(reverse("txmail:message-detail", args=[message.pk])).json()
    assert body["subject"] == "Payslip for Ann"
    assert "attempt_log" not in body  # the admin hides attempts without view_attempt


def test_attempts_need_their_own_view_permission_as_in_the_admin(client, message):
    client.force_login(user_with("view_message", "view_attempt"))
    body = client.get(reverse("txmail:message-detail", args=[message.pk])).json()
    assert body["attempt_log"] == []


def test_a_service_account_with_the_permission_needs_no_staff_flag(client, message):
    client.force_login(user_with("view_message", staff=False))
    assert client.get(reverse("txmail:message-detail", args=[message.pk])).status_code == 200


def test_anonymous_requests_are_refused(client, message):
    assert client.get(reverse("txmail:message-detail", args=[message.pk])).status_code in (
        401,
        403,
    )


#: The API's description: for any signed-in user (it holds no data).
DOCS = (SchemaView, DocsView)


def test_the_api_description_needs_a_signed_in_user(client):
    names = ("txmail:api-schema", "txmail:api-docs")
    assert [client.get(reverse(name)).status_code in (401, 403) for name in names] == [True, True]
    client.force_login(user_with(staff=False))
    assert [client.get(reverse(name)).status_code for name in names] == [200, 200]


def _api_views(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _api_views(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern) and (prefix + str(entry.pattern)).find("api/") >= 0:
            if entry.callback is not not_found:  # the JSON 404 of paths that match no route
                yield entry.callback


def test_every_api_view_checks_model_permissions():
    views = [v for v in _api_views(get_resolver().url_patterns) if v.cls not in DOCS]
    assert len(views) >= 12
    for view in views:
        classes = view.cls.permission_classes
        assert any(issubclass(c, ModelPermissions) for c in classes), view.cls
