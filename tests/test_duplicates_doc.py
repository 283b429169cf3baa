"""The README promises "not sent twice" exactly where the provider honours an idempotency key."""

from __future__ import annotations

import pathlib

import pytest

from django_txmail.conf import BUILTIN_ADAPTERS, ProviderAccount
from django_txmail.outbound_email import Address, OutboundEmail
from django_txmail.providers import Route, load_adapter

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
URIS = {
    "nylas": "https://api.us.nylas.com",
    "mailtrap": "https://send.api.mailtrap.io",
    "mailerlogic": "https://api.mailerlogic.net",
}
#: The built-in providers by the name the README gives them.
PROVIDERS = {
    name: ProviderAccount(key, BUILTIN_ADAPTERS[key], URIS[key], {"API_KEY": "k", "API_TOKEN": "t"})
    for name, key in [("Nylas", "nylas"), ("Mailtrap", "mailtrap"), ("MailerLogic", "mailerlogic")]
}


def sends_idempotency_key(account: ProviderAccount) -> bool:
    """Whether the adapter's send request carries the message's idempotency key."""
    email = OutboundEmail(
        from_email=Address("hi@shop.example"),
        to=[Address("ann@x.example")],
        subject="Receipt",
        text="Thanks",
        idempotency_key="order-42",
    )
    request = load_adapter(account).build_send(email, Route("domain", account.name, "shop.example"))
    return request.headers.get("Idempotency-Key") == "order-42"


def duplicates_table() -> dict[str, str]:
    text = README.read_text()
    section = text[text.index("### Duplicates") :]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    return {row.split("|")[1].strip(): row.split("|")[2] for row in rows}


def first_paragraphs() -> str:
    text = README.read_text()
    return text[: text.index("Your code keeps using")]


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_duplicates_table_says_what_each_provider_does_with_a_retry(provider):
    verdict = duplicates_table()[provider]
    if sends_idempotency_key(PROVIDERS[provider]):
        assert "**not sent again**" in verdict
    else:
        assert "**can be delivered twice**" in verdict


def test_the_first_promise_is_exact_per_provider():
    opening = first_paragraphs()
    assert "no message is lost" in opening
    assert "or sent twice" not in opening
    for provider in PROVIDERS:
        assert provider in opening
    without_key = [p for p, a in PROVIDERS.items() if not sends_idempotency_key(a)]
    assert without_key == ["Mailtrap", "MailerLogic"]
    assert "can deliver it twice" in opening and "(#duplicates)" in opening
