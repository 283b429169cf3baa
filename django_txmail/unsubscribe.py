"""One-click unsubscribe (RFC 8058): the token, the link and the headers.

A message of a stream with ``UNSUBSCRIBE`` carries::

    List-Unsubscribe: <https://mail.example.com/txmail/unsubscribe/TOKEN/>, <mailto:…>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

The token names one recipient and one stream. It is encrypted and
authenticated (AES-GCM, with a key derived from ``SECRET_KEY``), so it
needs no database row to verify, reads as noise (an address in a URL ends
up in logs and proxies), and any change to it is refused. It is
deterministic — its nonce is an HMAC of what it holds — so a retry of the
message rebuilds the same bytes. ``SECRET_KEY_FALLBACKS`` still open the
tokens of mail sent before a key rotation.

The link is absolute, built from ``TXMAIL["BASE_URL"]`` (there is no request
when mail is sent); the view is ``tracking/unsubscribe.py``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterator
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.urls import reverse
from django.utils.crypto import salted_hmac

from django_txmail.conf import StreamSettings, get_settings
from django_txmail.exceptions import InvalidMessage, InvalidUnsubscribeToken, StreamMisconfigured
from django_txmail.outbound_email import OutboundEmail

_SALT = "django_txmail.unsubscribe"
_NONCE = 12
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"


def _keys() -> Iterator[bytes]:
    """The current key first, then those of ``SECRET_KEY_FALLBACKS``."""
    for secret in (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ())):
        yield salted_hmac(_SALT, "key", secret=secret, algorithm="sha256").digest()


def make_token(address: str, stream: str) -> str:
    """The token for ``address`` (normalised) in ``stream``."""
    key = next(_keys())
    plain = json.dumps([address, stream], separators=(",", ":")).encode()
    nonce = hmac.digest(key, plain, "sha256")[:_NONCE]
    sealed = nonce + AESGCM(key).encrypt(nonce, plain, _SALT.encode())
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode()


def read_token(token: str) -> tuple[str, str]:
    """``(address, stream)`` from a token; InvalidUnsubscribeToken if it is not ours."""
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidUnsubscribeToken("The unsubscribe link is damaged.") from None
    nonce, body = sealed[:_NONCE], sealed[_NONCE:]
    if len(nonce) != _NONCE or not body:
        raise InvalidUnsubscribeToken("The unsubscribe link is damaged.")
    for key in _keys():
        try:
            plain = AESGCM(key).decrypt(nonce, body, _SALT.encode())
        except InvalidTag:
            continue
        address, stream = json.loads(plain)
        return address, stream
    raise InvalidUnsubscribeToken("The unsubscribe link is damaged or was not made by this site.")


def unsubscribe_url(token: str, stream: str) -> str:
    """The absolute one-click URL for a token of ``stream``."""
    base = get_settings().base_url
    if not base:
        raise StreamMisconfigured(
            f"The {stream!r} stream adds one-click unsubscribe links, which need the site's "
            "public origin: set TXMAIL['BASE_URL'], e.g. 'https://mail.example.com'."
        )
    return base + reverse("txmail:unsubscribe", args=[token])


def add_unsubscribe_headers(
    email: OutboundEmail, stream: StreamSettings, recipients: list[str]
) -> None:
    """Put the RFC 8058 headers for the one recipient left in ``recipients`` on ``email``.

    The link unsubscribes one person, so a message of such a stream goes to
    one recipient (send one message each). None left (all suppressed): no
    headers, nothing is sent. Headers the caller set stay as given.
    """
    if not recipients:
        return
    if len(recipients) > 1:
        raise InvalidMessage(
            f"A message of the {stream.name!r} stream carries a one-click unsubscribe link for "
            f"its recipient, and this one has {len(recipients)}; send one message per recipient."
        )
    if any(name.lower() == LIST_UNSUBSCRIBE.lower() for name in email.headers):
        return
    address = recipients[0].lower()
    token = make_token(address, stream.name)
    links = [f"<{unsubscribe_url(token, stream.name)}>"]
    if stream.unsubscribe_mailto:
        links.append(
            f"<mailto:{stream.unsubscribe_mailto}?subject={quote('unsubscribe ' + token)}>"
        )
    email.headers[LIST_UNSUBSCRIBE] = ", ".join(links)
    email.headers[LIST_UNSUBSCRIBE_POST] = ONE_CLICK
