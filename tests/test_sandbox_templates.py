"""Sends through the backend that name a provider-hosted template, rendered
by the sandbox the way the provider renders them. The sandbox's template
APIs and renderer are tested in ``sandbox/tests/test_templates.py``."""

from __future__ import annotations

import pytest

from django_txmail.exceptions import ProviderAPIError
from django_txmail.message import TxMessage
from django_txmail.models import Message

pytestmark = pytest.mark.django_db


def test_a_nylas_template_send_is_rendered_by_the_sandbox(sandbox, domain):
    sandbox.add_template(
        "nylas",
        "tpl-order",
        subject="Order {{order.id}}",
        html="<p>Hi {{name}}, {{order.total}}</p>",
    )
    msg = TxMessage(
        from_email="shop@example.com",
        to=["ann@x.example"],
        template_id="tpl-order",
        template_vars={"name": "Ann", "order": {"id": 7, "total": "9.99"}},
    )
    assert msg.send() == 1
    [received] = sandbox.messages
    assert received.rendered == {"subject": "Order 7", "html": "<p>Hi Ann, 9.99</p>"}
    assert Message.objects.get().status == "sent"


def test_a_nylas_template_send_missing_variables_fails_permanently(sandbox, domain):
    sandbox.add_template("nylas", "tpl-welcome", subject="Hi {{name}}", html="<p>{{name}}</p>")
    msg = TxMessage(from_email="shop@example.com", to=["ann@x.example"], template_id="tpl-welcome")
    with pytest.raises(ProviderAPIError, match="name"):
        msg.send()
    assert sandbox.messages == []
    assert Message.objects.get().status == "failed"


def test_an_unknown_nylas_template_is_a_404_and_the_message_fails(sandbox, domain):
    msg = TxMessage(from_email="shop@example.com", to=["ann@x.example"], template_id="nope")
    with pytest.raises(ProviderAPIError, match="not found"):
        msg.send()
    assert Message.objects.get().last_error_type == "not_found_error"


def test_a_message_subject_overrides_the_nylas_template_subject(sandbox, domain):
    sandbox.add_template("nylas", "tpl", subject="Template {{x}}", html="<p>{{x}}</p>")
    TxMessage(
        "Own subject",
        "",
        "shop@example.com",
        ["ann@x.example"],
        template_id="tpl",
        template_vars={"x": "1"},
    ).send()
    assert sandbox.messages[0].rendered == {"subject": "Own subject", "html": "<p>1</p>"}
