"""Mapping django.core.mail messages onto OutboundEmail, and refusing bad ones."""

from __future__ import annotations

import datetime as dt
from email.mime.image import MIMEImage

import django
import hypothesis
import pytest
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.utils.translation import gettext_lazy

from django_txmail.compose import compose
from django_txmail.exceptions import HeaderInjection, InvalidMessage
from django_txmail.message import TxMessage
from django_txmail.outbound_email import Address, Feature

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,"


def test_addresses_keep_display_names_including_non_ascii():
    msg = EmailMessage(
        "s",
        "b",
        "Zoë Müller <zoe@shop.example>",
        ['"Doe, John" <john@x.example>', "plain@x.example"],
    )
    email = compose(msg)
    assert email.from_email == Address("zoe@shop.example", "Zoë Müller")
    assert email.to == [Address("john@x.example", "Doe, John"), Address("plain@x.example", "")]


def test_idn_domains_are_punycoded_and_local_part_kept():
    email = compose(EmailMessage("s", "b", "info@bücher.example", ["Kai <kai@münchen.example>"]))
    assert email.from_email.email == "info@xn--bcher-kva.example"
    assert email.to == [Address("kai@xn--mnchen-3ya.example", "Kai")]


def test_an_entry_may_hold_several_comma_separated_addresses_like_django_allows():
    email = compose(EmailMessage("s", "b", "a@x.example", ["b@x.example, c@x.example"]))
    assert [a.email for a in email.to] == ["b@x.example", "c@x.example"]


def test_cc_bcc_and_reply_to_are_mapped():
    msg = EmailMessage(
        "s",
        "b",
        "a@x.example",
        ["to@x.example"],
        cc=["Cc <cc@x.example>"],
        bcc=["bcc@x.example"],
        reply_to=["Help <help@x.example>", "two@x.example"],
    )
    email = compose(msg)
    assert email.cc == [Address("cc@x.example", "Cc")]
    assert email.bcc == [Address("bcc@x.example")]
    assert email.reply_to == [Address("help@x.example", "Help"), Address("two@x.example")]
    assert "Bcc" not in email.headers


@pytest.mark.parametrize(
    "bad",
    ["a@", "@x.example", "no-at-sign", "a b@x.example", "<>", "Doe, John <j@x.example>"],
)
def test_invalid_addresses_are_refused(bad):
    with pytest.raises(InvalidMessage, match="not a valid"):
        compose(EmailMessage("s", "b", "a@x.example", [bad]))


@pytest.mark.parametrize("bad", ["root@localhost", "a@b"])
def test_domains_without_a_dot_are_refused_before_sending(bad):
    with pytest.raises(InvalidMessage, match="no dot in its domain"):
        compose(EmailMessage("s", "b", "a@x.example", [bad]))


def test_invalid_from_address_is_refused():
    with pytest.raises(InvalidMessage, match="From"):
        compose(EmailMessage("s", "b", "not an address", ["a@x.example"]))


def test_crlf_in_subject_is_header_injection():
    with pytest.raises(HeaderInjection, match="subject"):
        compose(EmailMessage("Hi\r\nBcc: victim@x.example", "b", "a@x.example", ["b@x.example"]))


def test_crlf_in_an_address_is_header_injection():
    with pytest.raises(HeaderInjection):
        compose(EmailMessage("s", "b", "a@x.example", ["b@x.example\nBcc: c@x.example"]))


def test_crlf_in_a_header_value_is_header_injection():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"X-Id": "1\r\nBcc: c@x"})
    with pytest.raises(HeaderInjection, match="X-Id"):
        compose(msg)


def test_bcc_is_never_sent_as_a_header():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"Bcc": "c@x.example"})
    with pytest.raises(InvalidMessage, match="bcc=\\[...\\]"):
        compose(msg)


def test_invalid_header_name_is_refused():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"Bad Name:": "v"})
    with pytest.raises(InvalidMessage, match="header name"):
        compose(msg)


def test_no_recipients_is_refused():
    with pytest.raises(InvalidMessage, match="no recipients"):
        compose(EmailMessage("s", "b", "a@x.example", []))


def test_from_header_replaces_the_from_address_like_django():
    msg = EmailMessage(
        "s", "b", "bounce@x.example", ["b@x.example"], headers={"From": "Shop <shop@x.example>"}
    )
    assert compose(msg).from_email == Address("shop@x.example", "Shop")


def test_reply_to_header_replaces_reply_to_like_django():
    msg = EmailMessage(
        "s",
        "b",
        "a@x.example",
        ["b@x.example"],
        reply_to=["old@x.example"],
        headers={"Reply-To": "new@x.example"},
    )
    assert compose(msg).reply_to == [Address("new@x.example")]


def test_to_header_matching_recipients_is_not_an_override():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"To": "B <b@x.example>"})
    email = compose(msg)
    assert email.header_overrides == {}
    assert Feature.HEADER_OVERRIDES not in email.features()


def test_to_header_differing_from_recipients_is_recorded_as_an_override():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"To": "list@x.example"})
    email = compose(msg)
    assert email.header_overrides == {"To": [Address("list@x.example")]}
    assert [a.email for a in email.to] == ["b@x.example"]


def test_to_header_naming_the_same_mailboxes_supplies_display_names():
    msg = EmailMessage(
        "s", "b", "a@x.example", ["b@x.example"], headers={"To": "Bee <b@x.example>"}
    )
    email = compose(msg)
    assert email.to == [Address("b@x.example", "Bee")] and email.header_overrides == {}


@pytest.mark.parametrize(
    "name", ["Subject", "Content-Type", "MIME-Version", "Content-Transfer-Encoding", "Resent-Bcc"]
)
def test_headers_built_from_the_message_itself_are_refused(name):
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={name: "x"})
    with pytest.raises(InvalidMessage, match=name):
        compose(msg)


def test_the_same_header_twice_in_different_case_is_refused():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"X-Id": "1", "x-id": "2"})
    with pytest.raises(InvalidMessage, match="given twice"):
        compose(msg)


def test_other_headers_pass_through_with_values_as_strings():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"], headers={"X-Count": 3})
    assert compose(msg).headers == {"X-Count": "3"}


def test_text_and_html_bodies():
    msg = EmailMultiAlternatives("s", "plain", "a@x.example", ["b@x.example"])
    msg.attach_alternative("<p>html</p>", "text/html")
    email = compose(msg)
    assert (email.text, email.html, email.alternatives) == ("plain", "<p>html</p>", [])


def test_html_only_message_via_content_subtype():
    msg = EmailMessage("s", "<b>hi</b>", "a@x.example", ["b@x.example"])
    msg.content_subtype = "html"
    email = compose(msg)
    assert (email.text, email.html) == (None, "<b>hi</b>")


def test_two_html_alternatives_are_refused():
    msg = EmailMultiAlternatives("s", "t", "a@x.example", ["b@x.example"])
    msg.attach_alternative("<p>1</p>", "text/html")
    msg.attach_alternative("<p>2</p>", "text/html")
    with pytest.raises(InvalidMessage, match="more than one HTML"):
        compose(msg)


def test_other_alternatives_are_kept_for_the_provider_to_accept_or_refuse():
    msg = EmailMultiAlternatives("s", "t", "a@x.example", ["b@x.example"])
    msg.attach_alternative("BEGIN:VCALENDAR", "text/calendar")
    email = compose(msg)
    assert email.alternatives == [("BEGIN:VCALENDAR", "text/calendar")]
    assert Feature.ALTERNATIVES in email.features()


def test_lazy_strings_are_evaluated():
    msg = EmailMessage(
        gettext_lazy("Subject"), gettext_lazy("Body"), "a@x.example", ["b@x.example"]
    )
    email = compose(msg)
    assert (email.subject, email.text) == ("Subject", "Body")
    assert type(email.subject) is str


def test_attachments_from_attach_and_tuples():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attach("notes.txt", "héllo", "text/plain")
    msg.attach("data.bin", b"\x00\x01", None)
    msg.attachments.append(("raw.csv", "a,b", None))
    email = compose(msg)
    got = [(a.filename, a.mimetype, a.read(), a.inline) for a in email.attachments]
    assert got == [
        ("notes.txt", "text/plain; charset=utf-8", "héllo".encode(), False),
        ("data.bin", "application/octet-stream", b"\x00\x01", False),
        ("raw.csv", "text/csv; charset=utf-8", b"a,b", False),
    ]


def test_mime_text_attachment_keeps_its_charset():
    from email.mime.text import MIMEText

    part = MIMEText("Grüße", "plain", "iso-8859-1")
    part.add_header("Content-Disposition", "attachment", filename="greeting.txt")
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attach(part)
    [attachment] = compose(msg).attachments
    assert attachment.mimetype == "text/plain; charset=iso-8859-1"
    assert attachment.read() == "Grüße".encode("iso-8859-1")


def test_lazy_strings_inside_extras_are_evaluated():
    msg = TxMessage(
        "s",
        "b",
        "a@x.example",
        ["b@x.example"],
        metadata={"greeting": gettext_lazy("Hello")},
        tags=[gettext_lazy("welcome")],
        template_id="tpl",
        merge_global_data={"items": [gettext_lazy("one")]},
    )
    email = compose(msg)
    assert email.metadata == {"greeting": "Hello"} and type(email.metadata["greeting"]) is str
    assert email.tags == ["welcome"] and email.template_vars == {"items": ["one"]}


def test_attach_file_reads_the_file(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.4 test")
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attach_file(str(path))
    [attachment] = compose(msg).attachments
    assert (attachment.filename, attachment.mimetype, attachment.read()) == (
        "report.pdf",
        "application/pdf",
        b"%PDF-1.4 test",
    )


def test_inline_image_by_content_id():
    msg = EmailMultiAlternatives("s", "b", "a@x.example", ["b@x.example"])
    msg.attach_alternative('<img src="cid:logo@shop">', "text/html")
    image = MIMEImage(GIF, "gif")
    image.add_header("Content-ID", "<logo@shop>")
    image.add_header("Content-Disposition", "inline")
    msg.attach(image)
    [attachment] = compose(msg).attachments
    assert attachment.inline and attachment.content_id == "logo@shop"
    assert attachment.mimetype == "image/gif" and attachment.read() == GIF
    assert attachment.filename == "logo.gif"


def test_attached_email_message_becomes_message_rfc822_bytes():
    inner = EmailMessage("inner", "body", "a@x.example", ["b@x.example"])
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attach("fwd.eml", inner, "message/rfc822")
    [attachment] = compose(msg).attachments
    assert attachment.mimetype == "message/rfc822"
    assert b"Subject: inner" in attachment.read()


def test_extras_are_read_from_plain_attributes():
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.metadata = {"order": 42}
    msg.tags = ["receipt"]
    msg.track_opens = True
    msg.track_clicks = False
    msg.template_id = "tpl_1"
    msg.merge_global_data = {"name": "Ann"}
    msg.idempotency_key = "order-42-receipt"
    msg.reply_to_message_id = "<abc@x>"
    msg.esp_extra = {"tracking_options": {"label": "receipts"}}
    email = compose(msg)
    assert email.metadata == {"order": 42}
    assert email.tags == ["receipt"]
    assert (email.track_opens, email.track_clicks) == (True, False)
    assert (email.template_id, email.template_vars) == ("tpl_1", {"name": "Ann"})
    assert email.idempotency_key == "order-42-receipt"
    assert email.reply_to_message_id == "<abc@x>"
    assert email.esp_extra == {"tracking_options": {"label": "receipts"}}


def test_txmessage_takes_extras_as_keyword_arguments():
    when = dt.datetime(2030, 1, 2, 3, 4, tzinfo=dt.UTC)
    msg = TxMessage(
        "s",
        "b",
        "a@x.example",
        ["b@x.example"],
        metadata={"k": "v"},
        send_at=when,
        grant_id="g-1",
        provider="nylas",
    )
    email = compose(msg)
    assert email.metadata == {"k": "v"} and email.send_at == when
    assert (email.grant_id, email.provider) == ("g-1", "nylas")


def test_send_at_accepts_naive_datetimes_dates_and_timestamps(settings):
    settings.TIME_ZONE = "Europe/Paris"
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.send_at = dt.datetime(2030, 6, 1, 12, 0)
    assert compose(msg).send_at == dt.datetime(2030, 6, 1, 10, 0, tzinfo=dt.UTC)
    msg.send_at = 1_900_000_000
    assert compose(msg).send_at == dt.datetime.fromtimestamp(1_900_000_000, dt.UTC)
    msg.send_at = "tomorrow"
    with pytest.raises(InvalidMessage, match="send_at"):
        compose(msg)


@pytest.mark.parametrize(
    ("attr", "value", "match"),
    [
        ("metadata", ["not", "a", "dict"], "metadata must be a dict"),
        ("metadata", {"when": object()}, "JSON-serialisable"),
        ("tags", "one-string", "tags must be a list"),
        ("track_opens", "yes", "track_opens"),
        ("idempotency_key", "k" * 257, "at most 256"),
        ("idempotency_key", "ключ", "ASCII"),
    ],
)
def test_bad_extras_are_refused(attr, value, match):
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    setattr(msg, attr, value)
    with pytest.raises(InvalidMessage, match=match):
        compose(msg)


def test_a_stored_template_with_a_body_of_its_own_is_refused():
    msg = TxMessage("s", "b", "a@x.example", ["b@x.example"], template="welcome")
    with pytest.raises(InvalidMessage, match="brings its own subject and body"):
        compose(msg)


def test_email_attachment_named_tuples():
    from django.core.mail import EmailAttachment

    msg = EmailMessage(
        "s",
        "b",
        "a@x.example",
        ["b@x.example"],
        attachments=[EmailAttachment("r.csv", "a,b", "text/csv")],
    )
    [attachment] = compose(msg).attachments
    assert (attachment.filename, attachment.mimetype, attachment.read()) == (
        "r.csv",
        "text/csv; charset=utf-8",
        b"a,b",
    )


@pytest.mark.skipif(django.VERSION < (6, 0), reason="MIMEPart attachments arrived in Django 6.0")
def test_mime_part_attachments_on_django_6():
    from email.message import MIMEPart

    part = MIMEPart()
    part.set_content(GIF, maintype="image", subtype="gif", disposition="inline", cid="<pic@x>")
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attach(part)
    [attachment] = compose(msg).attachments
    assert attachment.inline and attachment.content_id == "pic@x" and attachment.read() == GIF


@pytest.mark.parametrize("mimetype", ["not a type", "text/plain\r\nX-Evil: 1", "a/" + "b" * 300])
def test_a_bad_attachment_content_type_is_refused(mimetype):
    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    msg.attachments.append(("f.bin", b"x", mimetype))
    with pytest.raises(InvalidMessage):
        compose(msg)


def test_template_variables_without_a_template_are_refused():
    msg = TxMessage("s", "b", "a@x.example", ["b@x.example"], merge_global_data={"name": "Ann"})
    with pytest.raises(InvalidMessage, match="template_id"):
        compose(msg)


def test_anymails_unset_marker_counts_as_unset():
    class UNSET:  # what django-anymail's AnymailMessage puts in unset attributes
        pass

    msg = EmailMessage("s", "b", "a@x.example", ["b@x.example"])
    for name in ("metadata", "tags", "send_at", "track_opens", "template_id", "esp_extra"):
        setattr(msg, name, UNSET)
    email = compose(msg)
    assert (email.metadata, email.tags, email.send_at, email.track_opens) == ({}, [], None, None)


def test_per_recipient_extras_are_kept_for_the_provider_to_refuse():
    msg = TxMessage(
        "s",
        "b",
        "a@x.example",
        ["b@x.example"],
        merge_metadata={"b@x.example": {"n": 1}},
        merge_headers={"b@x.example": {"X": "1"}},
    )
    assert {Feature.MERGE_METADATA, Feature.MERGE_HEADERS} <= compose(msg).features()


@pytest.mark.parametrize(
    "change",
    [
        lambda m: setattr(m, "body", "nul \x00 here"),
        lambda m: m.attach_alternative("<p>\x00</p>", "text/html"),
        lambda m: setattr(m, "metadata", {"k": "a\x00b"}),
        lambda m: setattr(m, "body", "lone \ud800 surrogate"),
    ],
    ids=["nul-text", "nul-html", "nul-metadata", "lone-surrogate"],
)
def test_text_no_database_can_store_is_refused_before_recording(change):
    msg = EmailMultiAlternatives("s", "b", "a@x.example", ["b@x.example"])
    change(msg)
    with pytest.raises(InvalidMessage, match="NUL|Unicode"):
        compose(msg)


@hypothesis.settings(max_examples=200, derandomize=True, deadline=None)
@hypothesis.given(
    text=hypothesis.strategies.from_regex(
        r"\A(?:[A-Za-z0-9 .!#$%&'*+/=?^_`{|}~\"(),-]{0,10}<)?"
        r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,12}@[A-Za-z0-9.-]{1,12}>?\Z"
    )
    | hypothesis.strategies.from_regex(
        r"\A[A-Za-z0-9'&-]{1,6}(?: [A-Za-z0-9'&-]{1,6}){0,2} <[a-z0-9.]{1,8}@[a-z0-9.-]{1,10}>\Z"
    )
    | hypothesis.strategies.sampled_from(
        [
            "a..b@x.example",
            ".a@x.example",
            "a.@x.example",
            "a@x..example",
            "a@-x.example",
            "a@x.example.",
            "a@.x.example",
            "A@X.EXAMPLE",
            "a@localhost",
            "a@x",
            "a@1.2.3.4",
        ]
    )
)
def test_a_bare_address_is_read_as_the_header_parser_reads_it(text):
    import re

    from django_txmail import compose as compose_module

    def outcome(parse):
        compose_module._parsed.cache_clear()
        try:
            return parse("To", text)
        except InvalidMessage as exc:
            return type(exc)
        finally:
            compose_module._parsed.cache_clear()

    fast = outcome(compose_module._parsed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compose_module, "_BARE_ADDRESS", re.compile(r"(?!)"))
        slow = outcome(compose_module._parsed)
    assert fast == slow


def _attach(filename: str):
    return lambda m: m.attach(filename, b"data", "application/pdf")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda m: setattr(m, "metadata", {"total": float("nan")}),
        lambda m: setattr(m, "metadata", {"total": float("inf")}),
        lambda m: setattr(m, "metadata", {"nested": [{"x": -float("inf")}]}),
        lambda m: setattr(m, "esp_extra", {"x": float("nan")}),
        lambda m: setattr(m, "send_at", 1e20),
        lambda m: setattr(m, "send_at", 10**30),
        lambda m: setattr(m, "send_at", float("nan")),
        lambda m: setattr(m, "send_at", float("-inf")),
        _attach("report\x00.pdf"),
        _attach("report\ud800.pdf"),
        _attach("report.pdf\r\nX-Injected: 1"),
        _attach("report\n.pdf"),
    ],
    ids=[
        "metadata-nan",
        "metadata-infinity",
        "metadata-nested-minus-infinity",
        "esp-extra-nan",
        "send-at-1e20",
        "send-at-huge-int",
        "send-at-nan",
        "send-at-minus-infinity",
        "filename-nul",
        "filename-lone-surrogate",
        "filename-crlf",
        "filename-lf",
    ],
)
def test_bad_extras_and_filenames_raise_invalid_message_and_record_nothing(change, sandbox, domain):
    from django.core.mail import get_connection

    from django_txmail.models import Message, MessageAttachment

    msg = EmailMessage("s", "b", "noreply@example.com", ["b@x.example"])
    change(msg)
    with pytest.raises(InvalidMessage):
        get_connection().send_messages([msg])
    assert not Message.objects.exists() and not MessageAttachment.objects.exists()
    assert sandbox.requests == []
