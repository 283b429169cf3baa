"""End to end: mail sent with django.core.mail reaches the sandbox, whose
signed webhooks reach the app over real HTTP (pytest-django's live server)
and move each message to delivered, bounced or complained."""

from __future__ import annotations

import io
import json
import re

import pytest
import requests
from django.core import mail
from django.core.management import CommandError, call_command

from django_txmail.message import TxMessage
from django_txmail.models import DeliveryEvent, Message, SendingDomain
from django_txmail.providers import Adapter
from tests.conftest import SANDBOX_KEY, txmail_settings, use_our_backend
from tests.test_send_providers_e2e import accounts
from txmail_sandbox import WebhookOptions

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.e2e]

SECRET = "whsec-e2e"
FROM = "Shop <noreply@example.com>"
#: How long a test waits for the posts it expects: a bound for a broken run, not a pace.
TIMEOUT = 60


class DashboardOnlyAdapter(Adapter):
    """A provider whose API cannot register webhooks."""

    name = "dashboard-only"


@pytest.fixture
def app(txmail_sandbox, live_server, settings, domain):
    """The app, serving its webhook endpoint over HTTP; the sandbox posting to it."""
    settings.TXMAIL = txmail_settings(txmail_sandbox.url, account={"WEBHOOK_SECRET": SECRET})
    use_our_backend(settings)
    txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.05, retry_delay=0.1))
    txmail_sandbox.set_webhook("nylas", f"{live_server.url}/txmail/webhooks/nylas/", SECRET)
    yield txmail_sandbox
    txmail_sandbox.clear_webhooks()


def send_to(*recipients, **extras):
    msg = TxMessage("Receipt", "Thanks for your order", FROM, list(recipients), **extras)
    msg.send()
    return Message.objects.get(pk=msg.txmail.message_id)


def assert_every_post_answered_200(sandbox):
    assert sandbox.webhook_log
    assert [d.status for d in sandbox.webhook_log if not d.ok] == []


#: What the sandbox's mailbox simulator makes of mail to each address.
OUTCOMES = {
    "ann@x.example": "delivered",
    "bounce@x.example": "bounced",
    "complaint@x.example": "complained",
}


def statuses_after_sending_to_the_simulator(sandbox, sender, *more: TxMessage) -> dict:
    """Mail from ``sender`` to each address of OUTCOMES (and ``more``), every webhook
    posted and answered 200: each message's status, by recipient."""
    for address in OUTCOMES:
        mail.send_mail("Receipt", "Thanks for your order", sender, [address])
    for message in more:
        message.send()
    sandbox.flush_webhooks(TIMEOUT)
    assert_every_post_answered_200(sandbox)
    return {m.to[0]["email"]: m.status for m in Message.objects.all()}


def test_messages_reach_delivered_bounced_and_complained(app):
    assert statuses_after_sending_to_the_simulator(app, FROM) == OUTCOMES
    events = {(e.recipient, e.type) for e in DeliveryEvent.objects.all()}
    assert events == {
        ("ann@x.example", "delivered"),
        ("bounce@x.example", "bounced"),
        ("complaint@x.example", "delivered"),
        ("complaint@x.example", "complained"),
    }
    assert all(event.message is not None for event in DeliveryEvent.objects.all())
    bounce = DeliveryEvent.objects.get(type="bounced")
    assert (bounce.bounce_type, bounce.reason) == ("UserUnknown", "smtp; 550 5.1.1 user unknown")


def test_each_recipient_of_one_message_moves_on_its_own(app):
    message = send_to("ann@x.example", "bounce@x.example", "complaint@x.example")
    app.flush_webhooks(TIMEOUT)
    message.refresh_from_db()
    assert message.status == "complained"
    assert message.recipient_status == {
        "ann@x.example": "delivered",
        "bounce@x.example": "bounced",
        "complaint@x.example": "complained",
    }


def test_a_rejected_message_ends_rejected(app):
    message = send_to("ann@x.example", "reject@x.example")
    app.flush_webhooks(TIMEOUT)
    message.refresh_from_db()
    assert message.status == "rejected"
    event = DeliveryEvent.objects.get()
    assert (event.type, event.recipient) == ("rejected", "")  # the whole message


def test_opens_and_clicks_arrive_as_delivery_events(app):
    msg = TxMessage("Receipt", "text", FROM, ["ann@x.example"], track_opens=True, track_clicks=True)
    msg.attach_alternative('<p><a href="https://example.com/orders/42">Order</a></p>', "text/html")
    msg.send()
    app.flush_webhooks(TIMEOUT)
    assert_every_post_answered_200(app)
    events = {e.type: e for e in DeliveryEvent.objects.all()}
    assert set(events) == {"delivered", "opened", "clicked"}
    assert events["clicked"].click_url == "https://example.com/orders/42"
    assert events["clicked"].provider_message_id == msg.txmail.provider_message_ids[0]
    assert events["opened"].user_agent and events["clicked"].user_agent
    assert Message.objects.get().status == "delivered"


def test_duplicated_and_shuffled_webhooks_end_the_same_and_are_stored_once(app):
    # Half the notifications twice: which half is a function of the seed and the
    # messages, not of the live server's port or the machine's speed.
    app.set_webhook_options(
        WebhookOptions(delay=0.05, duplicates=0.5, reorder=True, reorder_window=0.3, seed=5)
    )
    sent = {
        address: send_to(address)
        for address in ("ann@x.example", "bounce@x.example", "complaint@x.example")
    }
    everyone = send_to("ann@x.example", "bounce@x.example", "complaint@x.example")
    app.flush_webhooks(TIMEOUT)
    assert_every_post_answered_200(app)
    log = app.webhook_log
    duplicates = [d for d in log if d.duplicate]
    assert 0 < len(duplicates) < len({d.notification_id for d in log}), "seed 5 duplicates some"
    assert all(d.payload["id"] in {o.notification_id for o in log if not o.duplicate} for d in log)
    for message in sent.values():
        message.refresh_from_db()
    assert {a: m.status for a, m in sent.items()} == {
        "ann@x.example": "delivered",
        "bounce@x.example": "bounced",
        "complaint@x.example": "complained",
    }
    everyone.refresh_from_db()
    assert everyone.status == "complained"
    # Each notification names one event per recipient; each is stored once.
    unique = {d.notification_id: d.payload for d in log}
    expected = sum(recipients_in(payload) for payload in unique.values())
    ids = list(DeliveryEvent.objects.values_list("provider_event_id", flat=True))
    assert len(ids) == len(set(ids)) == expected == 8
    for duplicate in duplicates:  # whichever copy came first stored the events
        copies = [d for d in log if d.notification_id == duplicate.notification_id]
        stored = [json.loads(d.response)["stored"] for d in copies]
        assert sorted(stored) == [0, recipients_in(duplicate.payload)]


@pytest.mark.parametrize("provider", ["mailtrap", "mailerlogic"])
def test_mailtrap_and_mailerlogic_webhooks_close_the_loop_too(
    txmail_sandbox, live_server, settings, provider
):
    settings.TXMAIL = accounts(txmail_sandbox.url, **{provider: {"WEBHOOK_SECRET": SECRET}})
    use_our_backend(settings)
    SendingDomain.objects.create(name=f"{provider}.example", provider=provider)
    txmail_sandbox.set_webhook_options(WebhookOptions(delay=0.05, retry_delay=0.1))
    txmail_sandbox.set_webhook(provider, f"{live_server.url}/txmail/webhooks/{provider}/", SECRET)
    sender = f"Shop <shop@{provider}.example>"
    rejected = TxMessage("Receipt", "Thanks", sender, ["reject@x.example"])
    assert statuses_after_sending_to_the_simulator(txmail_sandbox, sender, rejected) == {
        **OUTCOMES,
        "reject@x.example": "rejected" if provider == "mailtrap" else "bounced",
    }
    assert all(event.message is not None for event in DeliveryEvent.objects.all())
    assert {d.provider for d in txmail_sandbox.webhook_log} == {provider}


def recipients_in(payload):
    obj = payload["data"]["object"]
    for key, field in (("delivered", "recipients"), ("bounce", "recipients")):
        if key in obj:
            return len(obj[key][field])
    return len(obj["complaint"]["complained_recipients"])


# Registering the webhook with the provider's API (here: the sandbox's)


def register(*args: str) -> str:
    """``manage.py txmail_register_webhooks`` as the README shows it; its output."""
    out = io.StringIO()
    call_command("txmail_register_webhooks", *args, stdout=out, stderr=out)
    return out.getvalue()


def registered(sandbox) -> list[dict]:
    return requests.get(
        f"{sandbox.url}/v3/webhooks",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
        timeout=TIMEOUT,
    ).json()["data"]


def receive_with(sandbox, settings, secret: str) -> Message:
    """Send with ``secret`` as the account's WEBHOOK_SECRET; the message once its events are in."""
    settings.TXMAIL = txmail_settings(sandbox.url, account={"WEBHOOK_SECRET": secret})
    sandbox.set_webhook_options(WebhookOptions(delay=0.05))
    message = send_to("ann@x.example", "bounce@x.example")
    sandbox.flush_webhooks(TIMEOUT)
    assert_every_post_answered_200(sandbox)
    message.refresh_from_db()
    return message


def signing_secret(output: str) -> str:
    return re.search(r"Signing secret: (\S+)", output).group(1)


def test_register_webhooks_as_the_readme_shows_ends_with_a_working_webhook(
    txmail_sandbox, live_server, settings, domain
):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)  # no WEBHOOK_SECRET yet
    use_our_backend(settings)
    output = register("--base-url", live_server.url)
    url = f"{live_server.url}/txmail/webhooks/nylas/"
    [webhook] = registered(txmail_sandbox)
    assert webhook["webhook_url"] == url
    assert f"nylas: registered webhook {webhook['id']} for {url}" in output
    assert "TXMAIL['PROVIDERS']['nylas']['WEBHOOK_SECRET']" in output

    message = receive_with(txmail_sandbox, settings, signing_secret(output))
    assert message.recipient_status == {"ann@x.example": "delivered", "bounce@x.example": "bounced"}


def test_running_it_again_says_how_to_replace_and_replace_gives_a_new_secret(
    txmail_sandbox, live_server, settings, domain
):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    use_our_backend(settings)
    first = signing_secret(register("--base-url", live_server.url))
    [old] = registered(txmail_sandbox)

    with pytest.raises(CommandError, match="Registration failed for nylas"):
        again = io.StringIO()
        call_command(
            "txmail_register_webhooks", "--base-url", live_server.url, stdout=again, stderr=again
        )
    assert f"exists already ({old['id']})" in again.getvalue() and "--replace" in again.getvalue()
    assert registered(txmail_sandbox) == [old]

    output = register("--base-url", live_server.url, "--replace")
    [new] = registered(txmail_sandbox)
    second = signing_secret(output)
    assert f"deleted webhook {old['id']}" in output and new["id"] != old["id"]
    assert second != first
    message = receive_with(txmail_sandbox, settings, second)
    assert message.status == "bounced"
    stored = json.dumps(list(DeliveryEvent.objects.values_list("raw", flat=True)))
    assert first not in stored and second not in stored


def test_a_provider_without_the_api_is_sent_to_its_dashboard(txmail_sandbox, settings):
    settings.TXMAIL = txmail_settings(
        txmail_sandbox.url,
        PROVIDERS={
            "nylas": {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": txmail_sandbox.url},
            "other": {
                "ADAPTER": "tests.test_webhooks_e2e.DashboardOnlyAdapter",
                "API_URI": "https://api.other.example",
            },
        },
    )
    out = io.StringIO()
    call_command(
        "txmail_register_webhooks", "other", "--base-url", "https://app.example", stdout=out
    )
    assert (
        "other: webhook registration is not supported by the provider's API; register "
        "https://app.example/txmail/webhooks/other/ in the provider's dashboard"
    ) in out.getvalue()


def test_a_refused_registration_fails_the_command_with_the_reason(txmail_sandbox, settings):
    settings.TXMAIL = txmail_settings(txmail_sandbox.url)
    err = io.StringIO()
    with pytest.raises(CommandError, match="Registration failed for nylas"):
        call_command(
            "txmail_register_webhooks",
            "--url",
            "http://127.0.0.1:9/txmail/webhooks/nylas/",
            stderr=err,
            stdout=io.StringIO(),
        )
    assert "did not answer the challenge" in err.getvalue()


def test_url_names_one_endpoint_for_one_account(txmail_sandbox, settings):
    settings.TXMAIL = txmail_settings(
        txmail_sandbox.url,
        PROVIDERS={
            "nylas": {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": txmail_sandbox.url},
            "nylas-eu": {"ADAPTER": "nylas", "API_KEY": SANDBOX_KEY, "API_URI": txmail_sandbox.url},
        },
    )
    with pytest.raises(CommandError, match="--url is one endpoint, for one account"):
        call_command("txmail_register_webhooks", "--url", "https://app.example/hook/")
    with pytest.raises(CommandError, match="has no account 'mailgun'"):
        call_command("txmail_register_webhooks", "mailgun", "--base-url", "https://app.example")
