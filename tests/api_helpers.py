"""What the REST API's tests share: users holding given permissions, JSON requests."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission, User


#: Every permission of the app's models, as the schema-driven runs hold them.
def all_permissions() -> list[str]:
    return list(
        Permission.objects.filter(content_type__app_label="django_txmail").values_list(
            "codename", flat=True
        )
    )


def user_with(*codenames: str, name: str = "service") -> User:
    """A user (not staff) holding exactly these permissions of the app."""
    user = User.objects.create_user(name, password="pw")
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="django_txmail", codename__in=codenames)
    )
    return User.objects.get(pk=user.pk)  # a fresh object: no cached permissions


def post_json(client, url: str, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(url, data, content_type="application/json", headers=headers)


@pytest.fixture
def api(client, db):
    """A client signed in as a user holding every permission of the app."""
    client.force_login(user_with(*all_permissions(), name="all"))
    return client
