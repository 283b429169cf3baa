"""The backend as a Django 6.1 MAILERS entry, with alias and OPTIONS."""

from __future__ import annotations

import django
import pytest
from django.core import mail

from django_txmail.backends import EmailBackend
from django_txmail.models import Message

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(django.VERSION < (6, 1), reason="MAILERS arrived in Django 6.1"),
]

BACKEND = "django_txmail.backends.EmailBackend"


def test_mailers_default_sends_through_the_backend(sandbox, domain, settings):
    settings.MAILERS = {"default": {"BACKEND": BACKEND}}
    assert mail.send_mail("Hi", "b", "noreply@example.com", ["a@x.example"]) == 1
    assert len(sandbox.messages) == 1


def test_alias_and_options_reach_the_backend(sandbox, domain, settings):
    settings.MAILERS = {
        "transactional": {"BACKEND": BACKEND, "OPTIONS": {"provider": "nylas", "timeout": 3}}
    }
    backend = mail.mailers["transactional"]
    assert isinstance(backend, EmailBackend)
    assert (backend.alias, backend.provider, backend.timeout) == ("transactional", "nylas", 3)
    msg = mail.EmailMessage("Hi", "b", "noreply@example.com", ["a@x.example"])
    assert msg.send(using="transactional") == 1
    assert Message.objects.get().status == "sent"


def test_unknown_options_raise_invalid_mailer(settings):
    settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"api_key": "x"}}}
    with pytest.raises(mail.InvalidMailer, match="api_key"):
        mail.mailers["default"]


def test_unknown_provider_option_is_a_configuration_error(settings):
    settings.MAILERS = {"default": {"BACKEND": BACKEND, "OPTIONS": {"provider": "nope"}}}
    with pytest.raises(django.core.exceptions.ImproperlyConfigured, match="nope"):
        mail.mailers["default"]
