"""Connected mailboxes in the admin and on the user's own page: who may resend
mail sent through a mailbox, grants listed per user, disconnecting."""

from __future__ import annotations

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.core import mail
from django.test import Client
from django.urls import reverse

from django_txmail.models import Grant, Message
from tests.grant_flow import connect, use_sandbox, user_client

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.grant_urls")]

ANN = "ann@mail.example"


@pytest.fixture
def app(txmail_sandbox, settings):
    use_sandbox(settings, txmail_sandbox)
    return txmail_sandbox


@pytest.fixture
def anns_message(app) -> Message:
    ann, client = user_client("ann")
    connect(client, ANN)
    mail.send_mail("From Ann", "Hello", ANN, ["bob@x.example"])
    return Message.objects.get()


def staff(name: str, *codenames: str) -> tuple[User, Client]:
    user = User.objects.create_user(name, password="pw", is_staff=True)
    for codename in ("view_message", "resend_message", *codenames):
        user.user_permissions.add(Permission.objects.get(codename=codename))
    client = Client()
    client.force_login(user)
    return user, client


def resend_url(message: Message) -> str:
    return reverse("admin:django_txmail_message_resend", args=[message.pk])


def test_resend_from_another_users_mailbox_is_refused(app, anns_message):
    _, support = staff("support")
    confirm = support.get(resend_url(anns_message))
    assert "another user&#x27;s connected mailbox" in confirm.text
    support.post(resend_url(anns_message), {"post": "yes"})
    assert Message.objects.count() == 1
    assert len([m for m in app.messages if m.route == "grant"]) == 1


def test_resend_by_the_mailbox_owner_goes(app, anns_message):
    owner, support = staff("boss")
    Grant.objects.update(user=owner)
    support.post(resend_url(anns_message), {"post": "yes"})
    assert Message.objects.count() == 2


def test_send_as_any_grant_allows_resending_another_users_mail(app, anns_message):
    _, support = staff("lead", "send_as_any_grant")
    confirm = support.get(resend_url(anns_message))
    assert "will be resent" in confirm.text
    support.post(resend_url(anns_message), {"post": "yes"})
    assert Message.objects.count() == 2


def test_the_admin_lists_grants_per_user_and_disconnects_them(app, admin_client):
    ann, client = user_client("ann")
    grant = connect(client, ANN)
    changelist = reverse("admin:django_txmail_grant_changelist")
    listed = admin_client.get(changelist, {"user__id__exact": ann.pk})
    assert ANN in listed.text
    admin_client.post(changelist, {"action": "disconnect_grants", ACTION_CHECKBOX_NAME: [grant.pk]})
    grant.refresh_from_db()
    assert grant.status == "revoked"
    assert not [
        g for g in app.grants if g["id"] == grant.grant_id and g["sandbox_status"] == "valid"
    ]


def test_a_user_sees_and_disconnects_only_their_own_mailboxes(app):
    _, ann = user_client("ann")
    _, bob = user_client("bob")
    anns = connect(ann, ANN)
    bobs = connect(bob, "bob@mail.example")
    page = ann.get("/txmail/grants/")
    assert ANN in page.text and "bob@mail.example" not in page.text
    assert ann.post(f"/txmail/grants/{bobs.pk}/disconnect/").status_code == 404
    bobs.refresh_from_db()
    assert bobs.status == "valid"
    assert ann.post(f"/txmail/grants/{anns.pk}/disconnect/").status_code == 302
    anns.refresh_from_db()
    assert anns.status == "revoked"
