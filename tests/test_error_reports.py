"""Error emails to ADMINS: an address no route covers is reported by a system
check (W005), and what ``fail_silently`` swallows is logged, never mailed."""

from __future__ import annotations

import logging

import django
import pytest
from django.core import mail
from django.core.management import call_command
from django.http import HttpResponseNotFound
from django.middleware.common import BrokenLinkEmailsMiddleware
from django.utils.log import AdminEmailHandler

from django_txmail.checks import check_server_email
from django_txmail.models import Message
from tests.conftest import txmail_settings

pytestmark = pytest.mark.django_db


def test_mail_admins_from_djangos_default_server_email_is_logged_not_lost(
    sandbox, domain, settings, caplog
):
    settings.SERVER_EMAIL = "root@localhost"  # Django's default
    with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
        mail.mail_admins("Server error", "Traceback ...", fail_silently=True)
    [record] = [r for r in caplog.records if r.name == "django_txmail.backends"]
    assert record.levelno == logging.ERROR
    text = record.getMessage()
    assert text.startswith("Not sent: '[Django] Server error' to ops@example.com. InvalidMessage:")
    assert "'root@localhost'" in text and text.endswith("(not raised: fail_silently=True)")
    assert Message.objects.count() == 0 and sandbox.requests == []


def test_logging_a_dropped_error_report_through_admin_email_does_not_loop(
    sandbox, domain, settings, caplog
):
    # A project that mails its error log records to ADMINS: the log line about a
    # dropped report is itself mailed, dropped, and not logged again.
    settings.SERVER_EMAIL = "root@localhost"
    handler = AdminEmailHandler()
    logger = logging.getLogger("django_txmail.backends")
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
            mail.mail_admins("Server error", "Traceback ...", fail_silently=True)
    finally:
        logger.removeHandler(handler)
    assert len([r for r in caplog.records if r.name == "django_txmail.backends"]) == 1
    assert Message.objects.count() == 0


def test_a_500_whose_report_cannot_be_sent_is_logged_and_the_request_goes_on(
    sandbox, domain, settings, caplog
):
    # Django's default LOGGING mails "django" errors to ADMINS (AdminEmailHandler). On 6.1
    # with MAILERS it no longer passes fail_silently: an error from the backend would
    # escape the logging call of the request being reported.
    settings.SERVER_EMAIL = "errors@nowhere.example"  # no route
    with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
        logging.getLogger("django.request").error("Internal Server Error: /checkout/")
    [record] = [r for r in caplog.records if r.name == "django_txmail.backends"]
    text = record.getMessage()
    assert "Internal Server Error: /checkout/" in text and "ops@example.com" in text
    assert "UnroutableSender" in text and "'nowhere.example'" in text
    assert text.endswith("(not raised: sent by Django's error reporting)")
    assert Message.objects.count() == 0 and sandbox.requests == []


def test_a_broken_link_report_that_cannot_be_sent_is_logged(sandbox, domain, settings, caplog, rf):
    settings.MANAGERS = (
        ["web@example.com"] if django.VERSION >= (6, 0) else [("Web", "web@example.com")]
    )
    settings.SERVER_EMAIL = "errors@nowhere.example"  # no route
    middleware = BrokenLinkEmailsMiddleware(lambda request: HttpResponseNotFound())
    request = rf.get("/gone/", HTTP_REFERER="http://testserver/shop/")  # a link of the site
    with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
        assert middleware(request).status_code == 404
    [record] = [r for r in caplog.records if r.name == "django_txmail.backends"]
    text = record.getMessage()
    assert "Broken INTERNAL link" in text and "web@example.com" in text
    assert "UnroutableSender" in text


def test_a_configuration_error_while_reporting_an_error_is_logged_not_raised(
    sandbox, domain, settings, caplog
):
    settings.TXMAIL = txmail_settings(sandbox.url, account={"API_KEY": ""})
    with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
        logging.getLogger("django.request").error("Internal Server Error: /checkout/")
    [record] = [r for r in caplog.records if r.name == "django_txmail.backends"]
    assert "ImproperlyConfigured" in record.getMessage() and "API_KEY" in record.getMessage()
    assert Message.objects.count() == 0 and sandbox.requests == []


def test_a_send_that_fails_loudly_logs_nothing_extra(sandbox, domain, caplog):
    with caplog.at_level(logging.ERROR, logger="django_txmail.backends"):
        with pytest.raises(Exception, match="No SendingDomain for 'nowhere.example'"):
            mail.send_mail("Hi", "b", "a@nowhere.example", ["ann@x.example"])
    assert [r for r in caplog.records if r.name == "django_txmail.backends"] == []


def test_server_email_without_a_route_is_a_warning_when_admins_are_set(sandbox, settings):
    settings.SERVER_EMAIL = "Ops <root@localhost>"
    settings.DEFAULT_FROM_EMAIL = "noreply@shop.example"
    [server, default] = check_server_email(databases=["default"])
    assert server.id == default.id == "txmail.W005"
    assert "settings.SERVER_EMAIL is 'root@localhost'" in server.msg
    assert "settings.DEFAULT_FROM_EMAIL is 'noreply@shop.example'" in default.msg
    assert "error reports to ADMINS" in server.msg


def test_server_email_with_a_route_passes(sandbox, settings, domain, grant):
    settings.SERVER_EMAIL = "alice@example.org"  # the grant
    settings.DEFAULT_FROM_EMAIL = "Shop <noreply@example.com>"  # the domain
    assert check_server_email(databases=["default"]) == []


def test_no_warning_without_admins_or_with_another_mail_backend(sandbox, settings):
    settings.SERVER_EMAIL = settings.DEFAULT_FROM_EMAIL = "root@localhost"
    assert len(check_server_email(databases=["default"])) == 2
    settings.ADMINS = []
    assert check_server_email(databases=["default"]) == []
    settings.ADMINS = ["ops@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend"}}
    assert check_server_email(databases=["default"]) == []
    assert check_server_email() == []  # not a database check run


def test_check_database_shows_the_warning_and_passes(sandbox, settings, capsys):
    settings.SERVER_EMAIL = "root@localhost"
    call_command("check", "--database", "default")  # a warning: no SystemCheckError
    out, err = capsys.readouterr()
    assert "txmail.W005" in out + err
