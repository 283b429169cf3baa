"""The adapter interface every provider module implements.

An adapter is a pure translation, constructed with its account's settings:
``OutboundEmail`` + ``Route`` → :class:`ProviderRequest`, and
:class:`ProviderResponse` → :class:`SendResult` or ``ProviderAPIError``.
It does no I/O, reads no settings and touches no database, so it is tested
with plain unit tests and against the sandbox alike.

A third-party adapter subclasses :class:`Adapter`, sets ``features`` to the
features it carries, implements ``build_send`` and ``parse_send`` (and
``parse_webhook`` to receive delivery events), and is named by dotted path
in ``TXMAIL["PROVIDERS"][...]["ADAPTER"]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import cache
from typing import IO, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from django_txmail import __version__
from django_txmail.conf import ACCOUNT_KEYS, BUILTIN_ADAPTERS, ProviderAccount, did_you_mean
from django_txmail.dns.records import ProviderVerdict, RequiredRecord
from django_txmail.event_types import EventType
from django_txmail.exceptions import ProviderAPIError, UnsupportedFeature, WebhookPayloadError
from django_txmail.outbound_email import Feature, OutboundEmail

USER_AGENT = f"django-txmail/{__version__}"
#: What stands in for a secret in text bound for logs, errors or test records.
REDACTED = "[redacted]"


@dataclass(frozen=True)
class Route:
    """Where a message goes: ``kind`` is "domain" or "grant"."""

    kind: str
    provider: str
    domain: str = ""
    grant_id: str = ""


@dataclass
class ProviderRequest:
    """One HTTP request, ready for a ``requests.Session``.

    ``body`` is bytes, or a readable stream with a known length (multipart
    uploads). ``headers`` carry credentials and stay out of ``repr()``, so
    debug pages and error trackers that print locals do not show them.
    """

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes | IO[bytes] = b""
    transport: str = "json"

    def close(self) -> None:
        if not isinstance(self.body, bytes):
            self.body.close()


@dataclass
class ProviderResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def header(self, name: str) -> str:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), "")


#: The metadata key (custom variable) carrying our message id to the provider,
#: which echoes it in webhooks: events are matched to messages by it when the
#: provider's message id is not known (yet).
MESSAGE_ID_KEY = "txmail_id"

#: Normalized delivery event types (``DeliveryEvent.type``), for adapters.
EVENT_TYPES = frozenset(EventType)


@dataclass
class WebhookEvent:
    """One delivery event read from a provider's webhook, in our vocabulary.

    ``type`` is one of :data:`EVENT_TYPES` ("unknown" for event types the
    adapter does not know); ``provider_type`` is the provider's own name for
    it. ``provider_event_id`` is unique per provider: a redelivered event has
    the same one. ``message_id`` is our message id when the provider echoes
    it back (metadata, custom variables), for events whose provider message
    id we have not recorded.
    """

    provider_event_id: str
    type: str
    provider_type: str
    occurred_at: datetime
    raw: dict[str, Any]
    provider_message_id: str = ""
    message_id: str = ""
    recipient: str = ""
    bounce_type: str = ""
    reason: str = ""
    mta_response: str = ""
    click_url: str = ""
    user_agent: str = ""
    ip: str = ""
    #: A grant (connected mailbox) event: the grant it is about and its new status.
    grant_id: str = ""
    grant_status: str = ""


@dataclass(frozen=True)
class ProviderSuppression:
    """One entry of a provider's suppression list, in our vocabulary.

    ``reason`` is one of hard_bounce, complaint, unsubscribe, manual;
    ``stream`` is the provider's stream in our words ("transactional",
    "broadcast"), "" when it has none; ``note`` keeps what the provider said.
    """

    id: str
    address: str
    reason: str
    stream: str = ""
    created_at: datetime | None = None
    note: str = ""


@dataclass
class SendResult:
    """What the provider said when it accepted a message.

    ``provider_message_ids`` holds every id the provider gave when it gives
    more than one (Mailtrap: one per recipient, and its webhooks name the
    recipient's); ``provider_message_id`` is the first.
    """

    provider_message_id: str
    request_id: str = ""
    schedule_id: str = ""
    idempotent_replay: bool = False
    provider_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class RegisteredWebhook:
    """A webhook the provider created. ``secret`` signs its notifications:
    it belongs in the account's ``WEBHOOK_SECRET`` (from the environment),
    never in the database, and stays out of ``repr()``."""

    id: str
    url: str
    secret: str = field(repr=False)
    triggers: tuple[str, ...] = ()


class Adapter:
    """Base class of provider adapters."""

    #: Short name used in error messages ("nylas").
    name: ClassVar[str] = ""
    #: The features this provider carries; anything else is UnsupportedFeature.
    features: ClassVar[frozenset[Feature]] = frozenset()
    #: The message routes the provider offers.
    routes: ClassVar[frozenset[str]] = frozenset({"domain"})
    #: Keys of the account settings the adapter cannot work without.
    required_credentials: ClassVar[tuple[str, ...]] = ()
    #: Seconds for which the provider answers a send repeated with the same
    #: idempotency key from its cache instead of sending again (0: it does not).
    #: Where that outlasts ``TXMAIL["LEASE"]``, a crash between its acceptance and
    #: our record costs nothing (the message is retried after its lease and not
    #: sent twice), so the outcomes of a run of sends are recorded together
    #: (``sending.attempt.attempt_each``).
    idempotency_window: ClassVar[float] = 0

    def replays_within(self, seconds: float) -> bool:
        """True if a send repeated ``seconds`` later is answered from the provider's cache."""
        return seconds < self.idempotency_window

    #: The other keys an account of this adapter may have (optional credentials and
    #: options), besides the ones every adapter takes, which are named here on this class.
    account_options: ClassVar[frozenset[str]] = frozenset({"WEBHOOK_SIGNATURE_HEADER"})

    def __init__(self, account: ProviderAccount) -> None:
        self.account = account

    @classmethod
    def account_keys(cls) -> frozenset[str]:
        """Every key an account of this adapter may have; ``manage.py check`` reports others."""
        return (
            ACCOUNT_KEYS
            | Adapter.account_options
            | cls.account_options
            | frozenset(cls.required_credentials)
        )

    def check_account(self) -> None:
        """Raise ``ImproperlyConfigured`` when the account lacks a credential sending needs.

        The backend asks before it records anything, so a send without a key
        raises instead of recording a message the provider will refuse.
        """
        missing = [k for k in self.required_credentials if k not in self.account.credentials]
        if missing:
            raise ImproperlyConfigured(
                f"TXMAIL['PROVIDERS'][{self.account.name!r}] has no {', '.join(missing)} "
                "(or it is empty). Read it from the environment in settings.py; never store "
                "it in code."
            )

    def scheduling_window(self, route: Route) -> tuple[timedelta, timedelta] | None:
        """How far ahead the provider itself can hold a message on ``route``.

        None: the provider does not schedule there (or cannot cancel), so
        scheduled mail waits in the outbox until it is due.
        """
        return None

    def split(self, email: OutboundEmail) -> list[OutboundEmail]:
        """The messages to record for ``email``: itself, unless the account asks
        the adapter to split what the provider cannot take in one call (one
        message per To recipient, say). Each part is its own ``Message``."""
        return [email]

    def check(self, email: OutboundEmail, route: Route) -> None:
        """Raise if the provider cannot send ``email`` as it is; send nothing."""
        if route.kind not in self.routes:
            raise UnsupportedFeature(self.account.name, f"the {route.kind} route")
        missing = sorted(email.features() - self.features, key=list(Feature).index)
        if missing:
            raise UnsupportedFeature(
                self.account.name,
                missing[0].value,
                "Remove it from the message or send it through a provider that supports it.",
            )

    def build_send(self, email: OutboundEmail, route: Route) -> ProviderRequest:
        raise NotImplementedError  # abstract

    def payload(self, email: OutboundEmail, route: Route) -> Any:
        """``build_payload(email, route)``, built once per message and route.

        ``check`` measures the payload and ``build_send`` sends it; both ask
        here, so a message checked and then sent in the same process is built
        once. Callers copy before changing it.
        """
        key = (type(self), self.account.name, route)
        if key not in email.payloads:
            email.payloads[key] = self.build_payload(email, route)
        return email.payloads[key]

    def build_payload(self, email: OutboundEmail, route: Route) -> Any:
        """The provider's body for ``email`` before attachment contents (adapters that
        measure it in ``check`` implement this and read it through ``payload``)."""
        raise NotImplementedError

    def parse_send(self, response: ProviderResponse, route: Route) -> SendResult:
        raise NotImplementedError  # abstract

    #: Whether the provider takes several messages in one request (``build_batches``).
    batches: ClassVar[bool] = False

    def build_batches(
        self, emails: Sequence[OutboundEmail], route: Route
    ) -> list[tuple[ProviderRequest, int]]:
        """Batch requests for ``emails``, in order: each covers the next ``count``.

        The adapter splits them by its provider's limits (messages and bytes
        per request). Only for adapters with ``batches = True``. The messages
        share the account, the route kind and any grant, but may come from
        different sending domains of that account (each carries its From);
        ``route`` is the first message's.
        """
        raise UnsupportedFeature(self.account.name, "batch sending")

    def parse_batch(
        self, response: ProviderResponse, count: int
    ) -> list[SendResult | ProviderAPIError]:
        """One result or error per message of a batch request, in order.

        Raise ``ProviderAPIError`` when the request as a whole failed.
        """
        raise UnsupportedFeature(self.account.name, "batch sending")

    def build_cancel(self, route: Route, schedule_id: str) -> ProviderRequest:
        """The request cancelling a message the provider holds for later.

        Needed by adapters whose ``scheduling_window`` is not None.
        """
        raise UnsupportedFeature(self.account.name, "cancelling scheduled messages")

    def parse_cancel(self, response: ProviderResponse) -> None:
        """Return if the provider cancelled the message, else raise ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "cancelling scheduled messages")

    #: Header carrying the webhook signature (lowercase hex HMAC-SHA256 of the
    #: raw body); an account's ``WEBHOOK_SIGNATURE_HEADER`` option overrides it.
    webhook_signature_header: ClassVar[str] = ""

    def signature_header(self) -> str:
        return str(self.account.options.get("WEBHOOK_SIGNATURE_HEADER") or "") or (
            self.webhook_signature_header
        )

    def webhook_challenge(self, query: dict[str, str]) -> str | None:
        """The body to answer a provider's GET verification request with, if it is one."""
        return None

    def parse_webhook(self, body: bytes, content_type: str) -> list[WebhookEvent]:
        """The events in a verified webhook body.

        Raise ``WebhookPayloadError`` when the body is not what the provider
        sends (bad JSON, wrong shape, a required field missing): the whole
        request is then refused and nothing is stored. An event type the
        adapter does not know is not an error: it becomes ``type="unknown"``.
        """
        raise UnsupportedFeature(self.account.name, "delivery events (webhooks)")

    def build_register_webhook(
        self, url: str, triggers: Sequence[str] | None = None
    ) -> ProviderRequest:
        """The request registering ``url`` for the delivery events ``triggers``
        (None: every event type the adapter reads), where the provider's API
        allows it; otherwise it is done in the provider's dashboard."""
        raise UnsupportedFeature(
            self.account.name,
            "webhook registration through its API",
            "Register the webhook in the provider's dashboard.",
        )

    def parse_register_webhook(self, response: ProviderResponse) -> RegisteredWebhook:
        """The webhook the provider created, or ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "webhook registration through its API")

    def build_list_webhooks(self) -> ProviderRequest:
        """The request listing the webhooks registered through the API (where
        registration is offered: an adapter with ``build_register_webhook``
        lists and deletes too, so a webhook can be replaced)."""
        raise UnsupportedFeature(self.account.name, "webhook registration through its API")

    def parse_list_webhooks(self, response: ProviderResponse) -> list[RegisteredWebhook]:
        """The registered webhooks, secrets blank (providers show them only at creation)."""
        raise UnsupportedFeature(self.account.name, "webhook registration through its API")

    def build_delete_webhook(self, webhook_id: str) -> ProviderRequest:
        raise UnsupportedFeature(self.account.name, "webhook registration through its API")

    def parse_delete_webhook(self, response: ProviderResponse) -> None:
        """None once the webhook is gone, or ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "webhook registration through its API")

    # The provider's suppression list (``manage.py txmail_suppressions sync``).

    def build_list_suppressions(self, address: str = "") -> ProviderRequest:
        """The request for the provider's suppression list (one address's entries, given one)."""
        raise UnsupportedFeature(self.account.name, "a suppressions API")

    def parse_list_suppressions(self, response: ProviderResponse) -> list[ProviderSuppression]:
        """The entries listed, or ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "a suppressions API")

    def build_delete_suppression(self, suppression_id: str) -> ProviderRequest:
        """The request removing one entry from the provider's list."""
        raise UnsupportedFeature(self.account.name, "a suppressions API")

    def parse_delete_suppression(self, response: ProviderResponse) -> None:
        """None once removed (or already gone), else ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "a suppressions API")

    # Sending-domain DNS (``manage.py txmail_verify_domains``, ``django_txmail.dns``).

    def required_records(self, domain: str) -> list[RequiredRecord]:
        """The DNS records the provider documents for sending from ``domain``.

        Empty when only the provider's domains API knows them (Nylas) or it
        documents none; records entered on the ``SendingDomain`` replace these.
        """
        return []

    #: The record types the provider's domains API describes and verifies, in
    #: the order it checks them; empty when it has no such API.
    domain_verification_types: ClassVar[tuple[str, ...]] = ()

    def build_find_domain(self, domain: str, page_token: str = "") -> ProviderRequest:
        """The request listing the provider's domains (one page), to find ``domain``'s id.

        Raise ``ImproperlyConfigured`` when the account lacks what the API needs.
        """
        raise UnsupportedFeature(self.account.name, "a domains API")

    def parse_find_domain(self, response: ProviderResponse, domain: str) -> tuple[str, str]:
        """``(domain id, "")`` when the page lists ``domain``, else ``("", next page
        token)``; ``("", "")`` when it is on no page. ProviderAPIError on failure."""
        raise UnsupportedFeature(self.account.name, "a domains API")

    def build_domain_info(self, domain_id: str, kind: str) -> ProviderRequest:
        """The request for the record of type ``kind`` (one of ``domain_verification_types``)."""
        raise UnsupportedFeature(self.account.name, "a domains API")

    def parse_domain_info(
        self, response: ProviderResponse, domain: str, kind: str
    ) -> RequiredRecord:
        """The record the provider wants for ``kind``, or ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "a domains API")

    def build_verify_domain(self, domain_id: str, kind: str) -> ProviderRequest:
        """The request asking the provider to check the record of type ``kind`` now."""
        raise UnsupportedFeature(self.account.name, "a domains API")

    def parse_verify_domain(self, response: ProviderResponse, kind: str) -> ProviderVerdict:
        """The provider's verdict (``done``, ``pending``, ``failed``), or ProviderAPIError."""
        raise UnsupportedFeature(self.account.name, "a domains API")

    def redact(self, text: str) -> str:
        """Remove this account's credentials from text bound for logs or errors."""
        for secret in self.account.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def api_error(
        self, response: ProviderResponse, message: str, error_type: str = "", request_id: str = ""
    ) -> ProviderAPIError:
        """The error for a failed response, classified transient or permanent."""
        return ProviderAPIError(
            self.redact(message),
            provider=self.account.name,
            status=response.status,
            error_type=error_type,
            request_id=request_id,
            transient=response.status == 429 or response.status >= 500,
            retry_after=retry_after(response.header("Retry-After")),
        )


def retry_after(value: str) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no stated offset
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` over ``base``, merging nested dicts (for esp_extra)."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def event_text(
    event: dict[str, Any], key: str, index: int, *, required: bool = False, where: str = ""
) -> str:
    """A webhook event's string field ("" when absent), or WebhookPayloadError naming it."""
    value = event.get(key)
    if value is None or value == "":
        if required:
            raise WebhookPayloadError(f"Event {index} has no {where}{key!r}.")
        return ""
    if not isinstance(value, str):
        raise WebhookPayloadError(f"Event {index}: {where}{key!r} must be a string.")
    return value


@cache
def adapter_class(path: str) -> type[Adapter]:
    try:
        cls = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"Cannot import the email adapter {path!r}: {exc}. ADAPTER is a built-in adapter "
            f"({', '.join(sorted(BUILTIN_ADAPTERS))}) or the dotted path of an Adapter "
            f"subclass.{did_you_mean(path, BUILTIN_ADAPTERS)}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ImproperlyConfigured(
            f"{path!r} is not a subclass of django_txmail.providers.Adapter."
        )
    return cls


def load_adapter(account: ProviderAccount) -> Adapter:
    return adapter_class(account.adapter)(account)
