"""Fuzzing, bounded and derandomized: compose() and every provider's webhook view.

* ``compose()`` given arbitrary ``EmailMessage`` attributes and extras raises
  nothing but ``TxMailError`` subclasses, and a send that raises (that, or
  Django's ``ImproperlyConfigured`` for ``msg.provider`` naming no account)
  leaves no row and no attachment file behind;
* each provider's webhook, given arbitrary JSON with a valid signature,
  never answers 5xx and never stores part of a request.
"""

from __future__ import annotations

import json
import os

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.mail import EmailMessage, EmailMultiAlternatives
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from django_txmail.backends import EmailBackend
from django_txmail.compose import compose
from django_txmail.exceptions import InvalidMessage, TxMailError
from django_txmail.models import DeliveryEvent, Message, WebhookPayload
from tests.webhook_bodies import (
    PROVIDERS,
    delivered_body,
    encode,
    every_provider_settings,
    post_signed,
)

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=int(os.environ.get("TXMAIL_FUZZ_EXAMPLES", "150")),
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(st.characters(codec=None), max_size=40) | st.sampled_from(
    ["", "\x00", "a\r\nb", "\ud800", "ann@x.example", "Ann <ann@x.example>", "x" * 2000]
)
numbers = st.integers(-(2**70), 2**70) | st.floats(allow_nan=True, allow_infinity=True)
scalars = st.none() | st.booleans() | numbers | text
json_like = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
addresses = st.just(["bob@x.example"]) | st.lists(text | st.just("bob@x.example"), max_size=3)
attachments = st.lists(
    st.tuples(text | st.none(), text | st.binary(max_size=50), text | st.none())
    | st.tuples(text)
    | st.builds(lambda: None),
    max_size=2,
)
EXTRAS = [
    "metadata",
    "tags",
    "send_at",
    "template_id",
    "merge_global_data",
    "track_opens",
    "track_clicks",
    "esp_extra",
    "template_vars",
    "idempotency_key",
    "reply_to_message_id",
    "grant_id",
    "provider",
    "ical_event",
    "stream_type",
]


@st.composite
def messages(draw):
    kind = draw(st.sampled_from([EmailMessage, EmailMultiAlternatives]))
    try:
        msg = kind(
            subject=draw(text),
            body=draw(text),
            from_email=draw(st.just("shop@example.com") | text),
            to=draw(addresses),
            cc=draw(addresses),
            headers=draw(st.dictionaries(text, text, max_size=2)),
        )
    except Exception:  # Django's own constructor refusing is not compose's business
        return None
    for attachment in draw(attachments):
        msg.attachments.append(attachment)
    for name in draw(st.lists(st.sampled_from(EXTRAS), max_size=4, unique=True)):
        setattr(msg, name, draw(json_like))
    return msg


@FUZZ
@given(msg=messages())
def test_compose_raises_only_its_own_errors(msg):
    if msg is None:
        return
    try:
        compose(msg)
    except TxMailError:
        pass


def test_a_send_that_raises_leaves_no_row_and_no_file(settings_fixture, domain):
    """A send of fuzzed messages that raises has recorded nothing, files included."""

    @FUZZ
    @given(msg=messages())
    def check(msg):
        if msg is None:
            return
        before = Message.objects.count()
        files = _files(settings_fixture)
        try:
            EmailBackend().send_messages([msg])
        except (TxMailError, ImproperlyConfigured):  # msg.provider naming no account
            assert Message.objects.count() == before
            assert _files(settings_fixture) == files
        else:
            Message.objects.all().delete()

    check()


def _files(settings_fixture) -> set[str]:
    """Every file under the attachment storage's folder."""
    return {
        os.path.join(folder, name)
        for folder, _, names in os.walk(str(settings_fixture.MEDIA_ROOT))
        for name in names
    }


@pytest.fixture
def settings_fixture(settings):
    settings.TXMAIL = settings.TXMAIL | {"DELIVERY": "task"}
    return settings


@pytest.fixture
def accounts(settings):
    settings.TXMAIL = every_provider_settings()


def _shapes(provider: str):
    """Arbitrary JSON, and the provider's own shape with arbitrary values spliced in."""
    valid = st.builds(lambda extra: delivered_body(provider, extra), json_like)
    mutated = st.builds(_mutate, st.just(provider), st.lists(text, max_size=3), json_like)
    deep = st.integers(1, 200).map(lambda d: '{"a":' * d + "1" + "}" * d)
    return (
        st.builds(encode, valid | mutated | json_like)
        | deep.map(str.encode)
        | st.binary(max_size=200)
    )


def _mutate(provider: str, path: list[str], value):
    body = delivered_body(provider)
    target = body
    for key in path:
        if not isinstance(target, dict):
            break
        target = target.setdefault(key, {}) if isinstance(target.get(key, {}), dict) else target
    if isinstance(target, dict):
        target[path[-1] if path else "data"] = value
    return body


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_webhook_never_answers_5xx_nor_stores_part_of_a_request(client, accounts, provider):
    @FUZZ
    @given(body=_shapes(provider))
    def check(body):
        events = DeliveryEvent.objects.count()
        response = post_signed(client, provider, body)
        assert response.status_code < 500, (response.status_code, body[:200])
        if response.status_code != 200:
            assert DeliveryEvent.objects.count() == events
            assert not WebhookPayload.objects.filter(events__isnull=True).exists()
        else:
            answer = response.json()
            assert DeliveryEvent.objects.count() == events + answer["stored"]
            json.dumps(answer)

    check()


# What fuzzing found, pinned down.


def _plain(**kwargs) -> EmailMessage:
    return EmailMessage(**({"from_email": "shop@example.com", "to": ["bob@x.example"]} | kwargs))


@pytest.mark.parametrize("attachment", [("only-a-name",), "a.txt", None, ("a", "b", "c", "d")])
def test_an_attachment_of_another_shape_is_an_invalid_message(attachment):
    msg = _plain()
    msg.attachments.append(attachment)
    with pytest.raises(InvalidMessage, match="attachment"):
        compose(msg)


@pytest.mark.parametrize("tags", [True, 5, {"a": 1}])
def test_tags_that_are_not_a_list_are_an_invalid_message(tags):
    msg = _plain()
    msg.tags = tags
    with pytest.raises(InvalidMessage, match="tags"):
        compose(msg)


@pytest.mark.parametrize(
    "fields",
    [{"subject": "a\ud800"}, {"headers": {"X-Note": "a\ud800"}}, {"subject": "a\x00b"}],
)
def test_text_no_database_stores_in_a_subject_or_header_is_an_invalid_message(fields, domain):
    with pytest.raises(InvalidMessage):
        compose(_plain(**fields))
    with pytest.raises(InvalidMessage):
        EmailBackend().send_messages([_plain(**fields)])
    assert not Message.objects.exists()
