"""Schemathesis drives every API operation from the API's own OpenAPI document,
over real HTTP to a live server, as a user holding every permission.

Bounded and repeatable: a fixed number of examples per operation,
derandomized (the same cases every run), each operation within the test
timeout. Every response must be no 5xx, a documented status, and match its
schema.
"""

from __future__ import annotations

import base64

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from django_txmail.models import Message, SendingDomain, Suppression, Template
from tests.api_helpers import all_permissions, user_with
from tests.conftest import txmail_settings, use_our_backend
from tests.test_api_schema import api_schema

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

EXAMPLES_PER_OPERATION = 10
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def live_api(live_server, txmail_sandbox, settings, transactional_db):
    """The live server, sending to the sandbox, with a little of everything to act on."""
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    use_our_backend(settings)
    # HTTP Basic checks the password on every request: a fast hash keeps the run short.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user_with(*all_permissions(), name="fuzz")
    SendingDomain.objects.create(name="example.com", provider="nylas")
    Template.objects.create(slug="welcome", name="Welcome", subject="Hi", html="<p>Hi</p>")
    Suppression.objects.create(address="ann@example.org", reason="manual")
    token = base64.b64encode(b"fuzz:pw").decode()
    return live_server.url, {"Authorization": f"Basic {token}"}


# The document needs no database: built as the tests are collected.
schema = schemathesis.openapi.from_dict(api_schema())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_within_its_schema(case, live_api):
    base_url, headers = live_api
    case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)
    assert Message.objects.filter(status="sending").count() == 0
