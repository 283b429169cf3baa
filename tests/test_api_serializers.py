"""The API's model serializers build their fields from the model once per class; every
serializer made still gets fields of its own, the same as DRF would build."""

from __future__ import annotations

import pytest
from rest_framework import serializers as drf

from django_txmail.api import serializers

MODEL_SERIALIZERS = [
    cls
    for cls in vars(serializers).values()
    if isinstance(cls, type)
    and issubclass(cls, serializers.ModelSerializer)
    and cls is not serializers.ModelSerializer
]


def test_every_model_serializer_of_the_api_builds_its_fields_once():
    names = {cls.__name__ for cls in MODEL_SERIALIZERS}
    assert {"MessageSerializer", "MessageDetailSerializer", "SuppressionSerializer"} <= names
    assert not [
        cls.__name__
        for cls in vars(serializers).values()
        if isinstance(cls, type)
        and issubclass(cls, drf.ModelSerializer)
        and not issubclass(cls, serializers.ModelSerializer)
    ], "a ModelSerializer of the API that rebuilds its fields for every instance"


@pytest.mark.parametrize("cls", MODEL_SERIALIZERS, ids=lambda cls: cls.__name__)
def test_the_fields_built_once_are_those_drf_builds(cls):
    cls()  # built (or already built) once
    ours = serializers.ModelSerializer.get_fields(cls())  # the copy of what was built
    drfs = drf.ModelSerializer.get_fields(cls())  # DRF's own build, no cache
    assert list(ours) == list(drfs)
    assert {name: repr(f) for name, f in ours.items()} == {
        name: repr(f) for name, f in drfs.items()
    }


@pytest.mark.parametrize("cls", MODEL_SERIALIZERS, ids=lambda cls: cls.__name__)
def test_each_serializer_binds_fields_of_its_own(cls):
    one, two = cls(), cls()
    for name, field in one.fields.items():
        other = two.fields[name]
        assert field is not other
        assert (field.parent, other.parent) == (one, two)
        assert field.field_name == other.field_name == name


class _User:
    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed

    def has_perm(self, perm: str) -> bool:
        return self.allowed


def test_a_detail_serializer_still_drops_per_request_what_the_user_may_not_see(rf):
    def fields(allowed: bool) -> set[str]:
        request = rf.get("/")
        request.user = _User(allowed)
        return set(serializers.MessageDetailSerializer(context={"request": request}).fields)

    # In turns: a request's removals never reach the fields the next serializer copies.
    assert [fields(False), fields(True), fields(False)] == [
        fields(False),
        fields(False) | {"attempt_log", "events"},
        fields(False),
    ]
    assert not {"attempt_log", "events"} & fields(False)
