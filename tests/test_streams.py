"""Streams: one-click unsubscribe headers and URL (RFC 8058), and the account a
stream's mail goes through."""

from __future__ import annotations

import base64

import pytest
from django.core.checks import run_checks
from django.test import Client

from django_txmail import suppressions
from django_txmail.exceptions import InvalidMessage, StreamMisconfigured
from django_txmail.message import TxMessage
from django_txmail.models import Message, SendingDomain, Suppression
from django_txmail.unsubscribe import make_token, read_token
from tests.conftest import txmail_settings, use_our_backend
from txmail_sandbox import DEFAULT_MAILTRAP_API_TOKEN

pytestmark = pytest.mark.django_db

FROM = "Shop <noreply@example.com>"
BASE_URL = "https://mail.example.com"


@pytest.fixture
def app(sandbox, domain, settings):
    settings.TXMAIL = {**settings.TXMAIL, "BASE_URL": BASE_URL}
    return sandbox


def headers_sent(sandbox) -> dict[str, str]:
    return {h["name"]: h["value"] for h in sandbox.messages[-1].payload.get("custom_headers", [])}


def test_broadcast_mail_carries_one_click_headers_and_transactional_mail_does_not(app):
    TxMessage("News", "Hi", FROM, ["Ann@x.example"], stream="broadcast").send()
    headers = headers_sent(app)
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = make_token("ann@x.example", "broadcast")
    assert headers["List-Unsubscribe"] == f"<{BASE_URL}/txmail/unsubscribe/{token}/>"
    TxMessage("Receipt", "Thanks", FROM, ["ann@x.example"]).send()
    assert headers_sent(app) == {}


def test_the_mailto_link_comes_with_the_stream_setting(app, settings):
    settings.TXMAIL = {
        **settings.TXMAIL,
        "STREAMS": {
            "transactional": {},
            "broadcast": {"UNSUBSCRIBE": True, "UNSUBSCRIBE_MAILTO": "unsub@example.com"},
        },
    }
    TxMessage("News", "Hi", FROM, ["ann@x.example"], stream="broadcast").send()
    https, mailto = headers_sent(app)["List-Unsubscribe"].split(", ")
    assert https.startswith(f"<{BASE_URL}/")
    assert mailto.startswith("<mailto:unsub@example.com?subject=unsubscribe%20")


def test_a_retry_sends_the_same_headers_as_the_first_attempt(app):
    from django_txmail.outbox.store import load

    msg = TxMessage("News", "Hi", FROM, ["ann@x.example"], stream="broadcast")
    msg.send()
    row = Message.objects.get(pk=msg.txmail.message_id)
    assert load(row).headers == {
        "List-Unsubscribe": headers_sent(app)["List-Unsubscribe"],
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_a_broadcast_message_goes_to_one_recipient(app):
    with pytest.raises(InvalidMessage, match="one message per recipient"):
        TxMessage("News", "Hi", FROM, ["a@x.example", "b@x.example"], stream="broadcast").send()
    assert not Message.objects.exists()


def test_without_base_url_a_broadcast_message_is_refused_before_it_is_recorded(sandbox, domain):
    with pytest.raises(StreamMisconfigured, match="BASE_URL"):
        TxMessage("News", "Hi", FROM, ["ann@x.example"], stream="broadcast").send()
    assert not Message.objects.exists()


def test_a_configured_unsubscribe_stream_without_base_url_is_a_system_check_error(settings):
    settings.TXMAIL = txmail_settings(
        "http://127.0.0.1:9", STREAMS={"transactional": {}, "news": {"UNSUBSCRIBE": True}}
    )
    assert "txmail.E016" in [m.id for m in run_checks()]
    settings.TXMAIL = {**settings.TXMAIL, "BASE_URL": BASE_URL}
    assert "txmail.E016" not in [m.id for m in run_checks()]


# --- The token ------------------------------------------------------------------------


def test_the_token_reads_back_and_shows_nothing_of_the_address():
    token = make_token("ann@x.example", "broadcast")
    assert read_token(token) == ("ann@x.example", "broadcast")
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    assert b"ann" not in raw and b"broadcast" not in raw and "ann" not in token
    assert make_token("ann@x.example", "broadcast") == token  # a retry builds the same bytes


def test_a_token_made_with_an_old_secret_key_still_works(settings):
    token = make_token("ann@x.example", "broadcast")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "a-new-key", [settings.SECRET_KEY]
    assert read_token(token) == ("ann@x.example", "broadcast")


# --- The URL ---------------------------------------------------------------------------


def url(address="ann@x.example", stream="broadcast") -> str:
    return f"/txmail/unsubscribe/{make_token(address, stream)}/"


def test_get_shows_a_confirmation_page_and_changes_nothing(db):
    response = Client().get(url())
    assert response.status_code == 200
    assert b'name="List-Unsubscribe" value="One-Click"' in response.content
    assert not Suppression.objects.exists()


def test_one_click_post_without_cookies_or_csrf_token_suppresses(db):
    client = Client(enforce_csrf_checks=True)
    response = client.post(url("Ann@X.example"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    entry = Suppression.objects.get()
    assert (entry.address, entry.stream, entry.reason) == (
        "ann@x.example",
        "broadcast",
        "unsubscribe",
    )
    assert not suppressions.is_suppressed("ann@x.example", "transactional")
    # Again: still 200, still one entry.
    assert client.post(url(), {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert Suppression.objects.count() == 1


def test_one_click_post_as_multipart_suppresses(db):
    from django.test.client import MULTIPART_CONTENT, encode_multipart

    boundary = "txmail-boundary"
    body = encode_multipart(boundary, {"List-Unsubscribe": "One-Click"})
    response = Client(enforce_csrf_checks=True).generic(
        "POST", url(), body, content_type=MULTIPART_CONTENT.replace("BoUnDaRyStRiNg", boundary)
    )
    assert response.status_code == 200
    assert suppressions.is_suppressed("ann@x.example", "broadcast")


def test_a_post_without_one_click_changes_nothing(db):
    assert Client().post(url(), {}).status_code == 400
    assert not Suppression.objects.exists()


def test_a_tampered_token_is_a_400_page(db):
    token = make_token("ann@x.example", "broadcast")
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for path in (f"/txmail/unsubscribe/{tampered}/", "/txmail/unsubscribe/not-a-token/"):
        response = Client().post(path, {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 400
        assert b"does not work" in response.content
        assert Client().get(path).status_code == 400
    assert not Suppression.objects.exists()


def test_a_token_of_a_stream_that_no_longer_exists_answers_a_clear_page(db):
    response = Client().post(url(stream="old-newsletter"), {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 404
    assert b"no longer exists" in response.content
    assert not Suppression.objects.exists()


# --- The account a stream goes through -------------------------------------------------


def test_a_stream_can_go_through_its_own_account(txmail_sandbox, settings, domain):
    settings.TXMAIL = txmail_settings(
        txmail_sandbox.url,
        BASE_URL=BASE_URL,
        STREAMS={"transactional": {}, "broadcast": {"UNSUBSCRIBE": True, "PROVIDER": "bulk"}},
    )
    settings.TXMAIL["PROVIDERS"]["bulk"] = {
        "ADAPTER": "mailtrap",
        "API_TOKEN": DEFAULT_MAILTRAP_API_TOKEN,
        "API_URI": txmail_sandbox.url,  # https://bulk.api.mailtrap.io in production
        "SANDBOX": True,
    }
    use_our_backend(settings)
    SendingDomain.objects.create(name="example.com", provider="bulk")
    news = TxMessage("News", "Hi", FROM, ["ann@x.example"], stream="broadcast")
    receipt = TxMessage("Receipt", "Thanks", FROM, ["ann@x.example"])
    assert news.send() == receipt.send() == 1
    assert news.txmail.provider == "bulk"
    assert receipt.txmail.provider == "nylas"
    assert [m.provider for m in txmail_sandbox.messages] == ["mailtrap", "nylas"]
