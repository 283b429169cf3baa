"""A body nested too deep is refused before parsing, for every provider; nothing is stored."""

from __future__ import annotations

import pytest

from django_txmail.models import DeliveryEvent
from django_txmail.tracking.depth import MAX_JSON_DEPTH, nesting_depth
from tests.webhook_bodies import PROVIDERS, delivered_body, encode, every_provider_settings
from tests.webhook_bodies import post_signed as post

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def accounts(settings):
    settings.TXMAIL = every_provider_settings()


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def with_deep_value(provider: str, depth: int) -> bytes:
    """A valid event carrying a value ``depth`` levels deep, spliced in as raw JSON."""
    body = encode(delivered_body(provider, "DEEP"))
    return body.replace(b'"DEEP"', nested(depth).encode())


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_valid_event_is_accepted(client, provider):
    response = post(client, provider, encode(delivered_body(provider, {"a": [1, {"b": 2}]})))
    assert response.status_code == 200, response.content
    assert DeliveryEvent.objects.count() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 940, 100_000])
def test_a_body_nested_too_deep_is_400_and_stores_nothing(client, provider, depth):
    response = post(client, provider, with_deep_value(provider, depth))
    assert response.status_code == 400
    assert f"deeper than {MAX_JSON_DEPTH}" in response.json()["detail"]
    assert not DeliveryEvent.objects.exists()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_whole_body_of_brackets_is_400(client, provider):
    assert post(client, provider, b"[" * 200_000).status_code == 400


def test_depth_counts_brackets_outside_strings_only():
    assert nesting_depth(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"{"}') == 3
    assert nesting_depth(b'{"a": 1}\n{"b": [2]}\n') == 2  # JSON Lines: per line
    assert nesting_depth(b'"unterminated [[[') == 0
    assert nesting_depth(b"]]]") == 0
