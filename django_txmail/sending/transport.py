"""The one place that talks HTTP to providers.

Every provider call — a send, a batch, a cancel, a domain check, a webhook
registration — goes through :meth:`Transport.call`: the adapter builds the
request, the transport makes it on a pooled ``requests.Session``, and the
adapter's parser reads the answer. Whatever goes wrong comes out as one
error type, ``ProviderAPIError``:

* a ``requests`` exception (timeout, refused connection, TLS, a broken
  answer) becomes a *transient* error (``error_type`` "timeout" or
  "connection_error"), its text stripped of the account's credentials;
* an error answer is turned into one by the adapter's parser
  (``Adapter.api_error``: transient for 429 and 5xx, with ``Retry-After``
  and the provider's request id, permanent for other 4xx).

Tests of a project replace the network here, and only here (see
``django_txmail.testing``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import NewConnectionError

from django_txmail.conf import get_settings
from django_txmail.exceptions import ProviderAPIError
from django_txmail.providers import Adapter, ProviderRequest, ProviderResponse

T = TypeVar("T")


class Exchange(Protocol):
    """What answers a built request: the network, or a test double."""

    def __call__(
        self, session: requests.Session, request: ProviderRequest, timeout: float
    ) -> ProviderResponse: ...


def new_session(pool_size: int = 16) -> requests.Session:
    """A pooled session that reads the environment once, not on every request.

    With ``trust_env`` requests looks up proxy variables and ``~/.netrc`` for
    every call; here proxies are worked out once per provider host (see
    ``_proxies``) and a CA bundle named in the environment is kept.
    """
    session = requests.Session()
    session.trust_env = False
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if bundle:
        session.verify = bundle
    pool = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size)
    session.mount("https://", pool)
    session.mount("http://", pool)
    return session


@functools.lru_cache(maxsize=64)
def _proxies(origin: str) -> dict[str, str]:
    """The proxies the environment sets for ``origin`` (honouring NO_PROXY)."""
    return get_environ_proxies(origin)


def over_the_network(
    session: requests.Session, request: ProviderRequest, timeout: float
) -> ProviderResponse:
    """Make ``request`` with ``session``; the body stream is closed either way."""
    parts = urlsplit(request.url)
    try:
        response = session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=timeout,
            proxies=_proxies(f"{parts.scheme}://{parts.netloc}"),
        )
    finally:
        request.close()
    return ProviderResponse(response.status_code, dict(response.headers), response.content)


#: How requests are answered: the network, unless a test double is installed.
_exchange: Exchange = over_the_network


def install_exchange(exchange: Exchange | None) -> Exchange:
    """Answer every provider request with ``exchange`` (None: the network again).

    Returns the one it replaces. Used by ``django_txmail.testing``; there is
    no other reason to call it.
    """
    global _exchange
    previous = _exchange
    _exchange = exchange or over_the_network
    return previous


#: The ``error_type`` of a request that got no answer (it may or may not have arrived).
NO_ANSWER = frozenset({"timeout", "connection_error"})


def never_reached(exc: requests.RequestException) -> bool:
    """True when ``exc`` happened before the request was written: the connection was
    refused or timed out while connecting, the host name did not resolve, or the TLS
    handshake failed. Anything else may have reached the provider."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if not isinstance(exc, requests.ConnectionError) or isinstance(exc, requests.Timeout):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, NewConnectionError):  # NameResolutionError is one as well
            return True
        # requests wraps urllib3's MaxRetryError (its first argument), whose reason is
        # what went wrong.
        inner = getattr(cause, "reason", None) or (cause.args[0] if cause.args else None)
        cause = inner if isinstance(inner, BaseException) else cause.__cause__
    return False


def network_error(
    adapter: Adapter, exc: requests.RequestException, timeout: float
) -> ProviderAPIError:
    """The transient error for a request that got no (readable) answer."""
    host = urlsplit(adapter.account.api_uri).netloc
    if never_reached(exc):
        return ProviderAPIError(
            f"cannot reach {host} ({type(exc).__name__}; the request was never sent)",
            provider=adapter.account.name,
            error_type="connection_error",
            transient=True,
            reached=False,
        )
    if isinstance(exc, requests.Timeout):
        kind, what = "timeout", f"no answer from {host} within {timeout:g} s"
    else:
        kind, what = "connection_error", f"cannot reach {host} ({type(exc).__name__})"
    return ProviderAPIError(
        what,
        provider=adapter.account.name,
        error_type=kind,
        transient=True,
    )


class Transport:
    """A pooled HTTP session for provider calls, shared by the threads of one sender."""

    def __init__(self, pool_size: int = 16, timeout: float | None = None) -> None:
        self.session = new_session(pool_size)
        self.timeout = timeout

    def call(
        self,
        adapter: Adapter,
        request: ProviderRequest,
        parse: Callable[..., T],
        *args: Any,
        timeout: float | None = None,
    ) -> T:
        """Make ``request`` and return ``parse(response, *args)``; ProviderAPIError on failure."""
        seconds = timeout or self.timeout or get_settings().timeout
        try:
            response = _exchange(self.session, request, seconds)
        except requests.RequestException as exc:
            raise network_error(adapter, exc, seconds) from exc
        return parse(response, *args)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
