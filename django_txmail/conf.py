"""The ``TXMAIL`` setting, read once and validated.

``get_settings()`` returns a frozen :class:`TxMailSettings`; it is rebuilt
when a test changes the setting (``override_settings``). Credentials stay in
settings and environment: they are read here and handed to adapters, never
written to the database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from difflib import get_close_matches
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from django_txmail.flow import FLOW_KEYS, AccountFlow, account_flow, check_failover

BUILTIN_ADAPTERS = {
    "nylas": "django_txmail.providers.nylas.NylasAdapter",
    "mailtrap": "django_txmail.providers.mailtrap.MailtrapAdapter",
    "mailerlogic": "django_txmail.providers.mailerlogic.MailerLogicAdapter",
}

DELIVERY_MODES = ("immediate", "task")

#: Every key of ``TXMAIL``; anything else is a typo (system check E010).
SETTINGS_KEYS = frozenset(
    {
        "PROVIDERS",
        "DEFAULT_PROVIDER",
        "DELIVERY",
        "TIMEOUT",
        "MAX_ATTEMPTS",
        "RETRY_BACKOFF",
        "ATTACHMENT_STORAGE",
        "TASK_BACKEND",
        "LEASE",
        "WEBHOOK_MAX_BYTES",
        "WEBHOOK_MAX_EVENTS",
        "TEMPLATE_LAYOUTS",
        "TEMPLATE_LIBRARIES",
        "TEMPLATE_TIME_LIMIT",
        "TEMPLATE_MAX_SIZE",
        "DNS_NAMESERVERS",
        "DNS_TIMEOUT",
        "DOMAIN_CHECK_MAX_AGE",
        "BOUNCE_WARNING_PERCENT",
        "COMPLAINT_WARNING_PERCENT",
        "STREAMS",
        "BASE_URL",
        "QUOTA_WAIT",
    }
)
#: The keys every account of ``TXMAIL["PROVIDERS"]`` may have, whatever its adapter; an
#: adapter adds its credentials and options (``Adapter.account_keys()``).
ACCOUNT_KEYS = (
    frozenset({"ADAPTER", "API_URI", "SANDBOX", "WEBHOOK_SECRET", "WEBHOOK_SECRETS"}) | FLOW_KEYS
)
#: The email backend's OPTIONS (Django 6.1 ``MAILERS``): ``EmailBackend.__init__`` takes these.
BACKEND_OPTIONS = frozenset({"fail_silently", "provider", "timeout"})
#: The backend as settings name it (``EMAIL_BACKEND``, ``MAILERS[alias]["BACKEND"]``).
BACKEND_PATH = "django_txmail.backends.EmailBackend"


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A hint naming the choice closest to ``word`` (a typo), or an empty string."""
    close = get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


#: Why an address is on the suppression list (``Suppression.reason``).
SUPPRESSION_REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")
#: The stream a message goes in unless it names one (``msg.stream``).
DEFAULT_STREAM = "transactional"
#: ``TXMAIL["STREAMS"]`` when the setting is absent.
DEFAULT_STREAMS: dict[str, dict[str, Any]] = {
    "transactional": {},
    "broadcast": {"UNSUBSCRIBE": True},
}
#: What adds a suppression automatically unless a stream says otherwise (``SUPPRESS_ON``).
#: An unsubscribe always does, in the stream it came from.
DEFAULT_SUPPRESS_ON = ("hard_bounce", "complaint")


@dataclass(frozen=True)
class StreamSettings:
    """One entry of ``TXMAIL["STREAMS"]``: a kind of mail with its own suppressions."""

    name: str
    #: RFC 8058 one-click unsubscribe headers on every message of the stream.
    unsubscribe: bool = False
    #: The mailto part of ``List-Unsubscribe`` (an address that handles unsubscribe mail).
    unsubscribe_mailto: str = ""
    #: The reasons that add a suppression automatically (hard_bounce, complaint).
    suppress_on: tuple[str, ...] = DEFAULT_SUPPRESS_ON
    #: The account this stream's mail goes through unless the message names one
    #: (Mailtrap's bulk stream is its own host, so its own account).
    provider: str = ""


@dataclass(frozen=True)
class ProviderAccount:
    """One entry of ``TXMAIL["PROVIDERS"]``: a named account at a provider."""

    name: str
    adapter: str  # dotted path of the adapter class
    api_uri: str
    credentials: dict[str, str] = field(repr=False)
    options: dict[str, Any] = field(default_factory=dict)
    sandbox: bool = False
    #: Every secret a webhook signature may be made with (several while rotating).
    webhook_secrets: tuple[str, ...] = field(default=(), repr=False)
    #: The keys the account was given in settings (system check E010 looks for typos).
    keys: frozenset[str] = frozenset()
    #: Its rate limits, lane shares, failover accounts and circuit breaker (``flow.py``).
    flow: AccountFlow = AccountFlow()

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret of the account (credentials, webhook secrets): text that must not leak."""
        return tuple(s for s in (*self.credentials.values(), *self.webhook_secrets) if s)


@dataclass(frozen=True)
class TxMailSettings:
    providers: dict[str, ProviderAccount]
    default_provider: str | None
    delivery: str = "immediate"
    timeout: float = 30.0
    max_attempts: int = 8
    retry_backoff: tuple[float, float] = (1.0, 600.0)
    attachment_storage: str = "default"
    task_backend: str = "default"
    #: Seconds a claimed message may stay "sending" before another sender may take it.
    lease: float = 300.0
    #: Largest webhook body accepted, in bytes.
    webhook_max_bytes: int = 10 * 1024 * 1024
    #: Most delivery events one webhook request may hold (a Nylas notification: one
    #: per recipient it names).
    webhook_max_events: int = 5000
    #: DNS servers domain checks ask ("host" or "host:port"); empty: the system's resolvers.
    dns_nameservers: tuple[str, ...] = ()
    #: Seconds one DNS question may take, retries included.
    dns_timeout: float = 5.0
    #: Seconds after which a domain's last DNS check counts as stale (system check W003).
    domain_check_max_age: float = 7 * 24 * 3600.0
    #: The admin dashboard warns about a sending domain past these rates (percent).
    bounce_warning_percent: float = 4.0
    complaint_warning_percent: float = 0.1
    #: Stored templates: the layouts they may extend or include, the tag libraries they
    #: may load, and each render's budgets (CPU seconds, characters of output).
    template_layouts: tuple[str, ...] = ()
    template_libraries: tuple[str, ...] = ("i18n", "l10n", "tz")
    template_time_limit: float = 1.0
    template_max_size: int = 1_000_000
    #: The kinds of mail, each with its own suppressions (``TXMAIL["STREAMS"]``).
    streams: dict[str, StreamSettings] = field(
        default_factory=lambda: _streams(DEFAULT_STREAMS, {})
    )
    #: Whether ``STREAMS`` was given (the BASE_URL system check only judges what was given).
    streams_configured: bool = False
    #: The public origin for links built outside a request (unsubscribe URLs).
    base_url: str = ""
    #: Seconds an immediate send waits for its account's RATE_LIMIT budget; beyond that
    #: the message stays queued for ``txmail_worker`` (or a task) to send when it is due.
    quota_wait: float = 1.0

    def stream(self, name: str) -> StreamSettings:
        try:
            return self.streams[name]
        except KeyError:
            known = ", ".join(sorted(self.streams))
            raise ImproperlyConfigured(
                f"TXMAIL['STREAMS'] has no stream {name!r} (configured: {known}); add it, "
                f"or send the message in one of those with msg.stream."
            ) from None

    def account(self, name: str) -> ProviderAccount:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none"
            raise ImproperlyConfigured(
                f"TXMAIL['PROVIDERS'] has no account {name!r} (configured: {known})."
                + did_you_mean(name, self.providers)
            ) from None


#: Nylas's service account (Manage Domains API): the key id and the RSA private key in PEM.
SERVICE_ACCOUNT_KEYS = ("SERVICE_ACCOUNT_KEY_ID", "SERVICE_ACCOUNT_PRIVATE_KEY")
_CREDENTIAL_KEYS = ("API_KEY", "API_TOKEN", "WEBHOOK_SECRET", *SERVICE_ACCOUNT_KEYS)
_KNOWN_ACCOUNT_KEYS = ACCOUNT_KEYS | set(_CREDENTIAL_KEYS)


def _account(name: str, raw: Any) -> ProviderAccount:
    if not isinstance(raw, dict):
        raise ImproperlyConfigured(f"TXMAIL['PROVIDERS'][{name!r}] must be a dict.")
    adapter = raw.get("ADAPTER")
    if not adapter or not isinstance(adapter, str):
        raise ImproperlyConfigured(
            f"TXMAIL['PROVIDERS'][{name!r}] needs an 'ADAPTER': one of "
            f"{', '.join(sorted(BUILTIN_ADAPTERS))} or a dotted path to an adapter class."
        )
    api_uri = raw.get("API_URI")
    if not api_uri or not isinstance(api_uri, str):
        raise ImproperlyConfigured(f"TXMAIL['PROVIDERS'][{name!r}] needs an 'API_URI'.")
    parts = urlsplit(api_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ImproperlyConfigured(
            f"TXMAIL['PROVIDERS'][{name!r}]['API_URI'] is {api_uri!r}, which is not an http(s) "
            "URL; give the provider's API origin, such as 'https://api.us.nylas.com'."
        )
    credentials = {k: str(raw[k]) for k in _CREDENTIAL_KEYS if raw.get(k)}
    options = {k: v for k, v in raw.items() if k not in _KNOWN_ACCOUNT_KEYS}
    rotation = raw.get("WEBHOOK_SECRETS", ())
    if isinstance(rotation, str) or not all(isinstance(v, str) and v for v in rotation):
        raise ImproperlyConfigured(
            f"TXMAIL['PROVIDERS'][{name!r}]['WEBHOOK_SECRETS'] must be a list of secrets."
        )
    webhook_secrets = tuple(dict.fromkeys([*filter(None, [raw.get("WEBHOOK_SECRET")]), *rotation]))
    return ProviderAccount(
        name=name,
        adapter=BUILTIN_ADAPTERS.get(adapter, adapter),
        api_uri=api_uri.rstrip("/"),
        credentials=credentials,
        options=options,
        sandbox=bool(raw.get("SANDBOX", False)),
        webhook_secrets=webhook_secrets,
        keys=frozenset(raw),
        flow=account_flow(name, raw),
    )


def _parse(raw: dict[str, Any]) -> TxMailSettings:
    providers_raw = raw.get("PROVIDERS", {})
    if not isinstance(providers_raw, dict):
        raise ImproperlyConfigured("TXMAIL['PROVIDERS'] must be a dict of named accounts.")
    providers = {name: _account(name, value) for name, value in providers_raw.items()}
    check_failover({name: account.flow for name, account in providers.items()})
    default = raw.get("DEFAULT_PROVIDER")
    if default is None and len(providers) == 1:
        default = next(iter(providers))
    if default is not None and default not in providers:
        raise ImproperlyConfigured(
            f"TXMAIL['DEFAULT_PROVIDER'] is {default!r}, which is not a key of TXMAIL['PROVIDERS']."
        )
    delivery = raw.get("DELIVERY", "immediate")
    if delivery not in DELIVERY_MODES:
        raise ImproperlyConfigured(
            f"TXMAIL['DELIVERY'] must be one of {', '.join(DELIVERY_MODES)}, not {delivery!r}."
        )
    backoff = raw.get("RETRY_BACKOFF", (1, 600))
    try:
        first, largest = (float(v) for v in backoff)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            "TXMAIL['RETRY_BACKOFF'] must be a pair (first delay, largest delay) in seconds."
        ) from None
    if not 0 < first <= largest:
        raise ImproperlyConfigured(
            "TXMAIL['RETRY_BACKOFF'] needs 0 < first delay <= largest delay."
        )
    max_attempts = raw.get("MAX_ATTEMPTS", 8)
    if not isinstance(max_attempts, int) or max_attempts < 1:
        raise ImproperlyConfigured("TXMAIL['MAX_ATTEMPTS'] must be a positive integer.")
    timeout = _seconds(raw, "TIMEOUT", 30)
    lease = _seconds(raw, "LEASE", 300)
    if lease <= timeout:
        raise ImproperlyConfigured(
            "TXMAIL['LEASE'] must be longer than TXMAIL['TIMEOUT'], or a message still being "
            "sent could be taken by another worker."
        )
    nameservers = raw.get("DNS_NAMESERVERS", ())
    if isinstance(nameservers, str) or not all(isinstance(v, str) and v for v in nameservers):
        raise ImproperlyConfigured(
            "TXMAIL['DNS_NAMESERVERS'] must be a list of DNS servers, e.g. ['1.1.1.1', "
            "'192.0.2.53:5353']."
        )
    streams_raw = raw.get("STREAMS", DEFAULT_STREAMS)
    base_url = raw.get("BASE_URL", "")
    if not isinstance(base_url, str) or (
        base_url and not base_url.startswith(("https://", "http://"))
    ):
        raise ImproperlyConfigured(
            "TXMAIL['BASE_URL'] is the site's public origin, e.g. 'https://mail.example.com'."
        )
    return TxMailSettings(
        providers=providers,
        streams=_streams(streams_raw, providers),
        streams_configured="STREAMS" in raw,
        base_url=base_url.rstrip("/"),
        default_provider=default,
        delivery=delivery,
        timeout=float(timeout),
        max_attempts=max_attempts,
        retry_backoff=(first, largest),
        attachment_storage=raw.get("ATTACHMENT_STORAGE", "default"),
        task_backend=raw.get("TASK_BACKEND", "default"),
        lease=lease,
        webhook_max_bytes=int(_seconds(raw, "WEBHOOK_MAX_BYTES", 10 * 1024 * 1024)),
        webhook_max_events=int(_seconds(raw, "WEBHOOK_MAX_EVENTS", 5000)),
        dns_nameservers=tuple(nameservers),
        dns_timeout=_seconds(raw, "DNS_TIMEOUT", 5),
        domain_check_max_age=_seconds(raw, "DOMAIN_CHECK_MAX_AGE", 7 * 24 * 3600),
        bounce_warning_percent=_percent(raw, "BOUNCE_WARNING_PERCENT", 4.0),
        complaint_warning_percent=_percent(raw, "COMPLAINT_WARNING_PERCENT", 0.1),
        template_layouts=_names(raw, "TEMPLATE_LAYOUTS", ()),
        template_libraries=_names(raw, "TEMPLATE_LIBRARIES", ("i18n", "l10n", "tz")),
        template_time_limit=_seconds(raw, "TEMPLATE_TIME_LIMIT", 1.0),
        template_max_size=int(_seconds(raw, "TEMPLATE_MAX_SIZE", 1_000_000)),
        quota_wait=_seconds(raw, "QUOTA_WAIT", 1.0),
    )


def _streams(raw: Any, providers: dict[str, ProviderAccount]) -> dict[str, StreamSettings]:
    if not isinstance(raw, dict) or not raw:
        raise ImproperlyConfigured(
            "TXMAIL['STREAMS'] must be a dict of stream names to options, e.g. "
            "{'transactional': {}, 'broadcast': {'UNSUBSCRIBE': True}}."
        )
    if DEFAULT_STREAM not in raw:
        raise ImproperlyConfigured(
            f"TXMAIL['STREAMS'] needs the {DEFAULT_STREAM!r} stream: messages that name "
            "no stream go in it."
        )
    streams = {}
    for name, options in raw.items():
        where = f"TXMAIL['STREAMS'][{name!r}]"
        if not isinstance(name, str) or not name or len(name) > 64 or not name.isprintable():
            raise ImproperlyConfigured(f"{where}: a stream name is 1 to 64 printable characters.")
        if not isinstance(options, dict):
            raise ImproperlyConfigured(f"{where} must be a dict of options.")
        unknown = set(options) - {"UNSUBSCRIBE", "UNSUBSCRIBE_MAILTO", "SUPPRESS_ON", "PROVIDER"}
        if unknown:
            raise ImproperlyConfigured(
                f"{where} has unknown options {sorted(unknown)}; known: UNSUBSCRIBE, "
                "UNSUBSCRIBE_MAILTO, SUPPRESS_ON, PROVIDER."
            )
        suppress_on = options.get("SUPPRESS_ON", DEFAULT_SUPPRESS_ON)
        if isinstance(suppress_on, str) or not all(
            reason in ("hard_bounce", "complaint") for reason in suppress_on
        ):
            raise ImproperlyConfigured(
                f"{where}['SUPPRESS_ON'] is a list of 'hard_bounce' and 'complaint' "
                "(an unsubscribe always suppresses)."
            )
        provider = options.get("PROVIDER", "")
        if provider and provider not in providers:
            raise ImproperlyConfigured(
                f"{where}['PROVIDER'] is {provider!r}, which is not a key of TXMAIL['PROVIDERS']."
            )
        streams[name] = StreamSettings(
            name=name,
            unsubscribe=bool(options.get("UNSUBSCRIBE", False)),
            unsubscribe_mailto=str(options.get("UNSUBSCRIBE_MAILTO", "")),
            suppress_on=tuple(suppress_on),
            provider=provider,
        )
    return streams


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    """A positive number setting (seconds, or a count such as WEBHOOK_MAX_BYTES)."""
    value = raw.get(key, default)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ImproperlyConfigured(f"TXMAIL[{key!r}] must be a positive, finite number.")
    return float(value)


def _names(raw: dict[str, Any], key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list-of-names setting (template names, tag library names)."""
    value = raw.get(key, default)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ImproperlyConfigured(f"TXMAIL[{key!r}] must be a list of names, e.g. {default!r}.")
    return tuple(value)


def _percent(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 100:
        raise ImproperlyConfigured(
            f"TXMAIL[{key!r}] must be a percentage above 0 and at most 100, such as {default}."
        )
    return float(value)


@cache
def get_settings() -> TxMailSettings:
    """The parsed ``TXMAIL`` setting; raises ImproperlyConfigured when it is wrong."""
    return _parse(getattr(settings, "TXMAIL", {}) or {})


@receiver(setting_changed)
def _reset(*, setting: str, **kwargs: Any) -> None:
    if setting == "TXMAIL":
        get_settings.cache_clear()
