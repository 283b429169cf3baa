"""The errors django-txmail raises.

Every error derives from :class:`TxMailError`, so ``except TxMailError``
catches all of them. Each message says what went wrong *and* what to do.
Errors raised before a message is recorded mean nothing was stored and
nothing was sent.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class TxMailError(Exception):
    """Base class of every django-txmail error."""

    #: A short machine-readable kind, recorded on failed attempts.
    error_type: str = "txmail_error"


class InvalidMessage(TxMailError, ValueError):
    """The message cannot be sent as written (bad address, no recipients...)."""

    error_type = "invalid_message"


class HeaderInjection(InvalidMessage):
    """A header, subject or address contains a line break.

    Line breaks in header values are how mail header injection works; the
    message is refused rather than cleaned up behind the caller's back.
    """

    error_type = "header_injection"


class MessageTooLarge(InvalidMessage):
    """The message is over the size the chosen provider accepts."""

    error_type = "message_too_large"


class IdempotencyKeyReused(InvalidMessage):
    """The idempotency key was already used for a message with other content."""

    error_type = "idempotency_key_reused"


class UnroutableSender(TxMailError):
    """No Grant or SendingDomain can send for the message's From address."""

    error_type = "unroutable_sender"


class UnsupportedFeature(TxMailError):
    """The chosen provider cannot carry a feature the message uses."""

    error_type = "unsupported_feature"

    def __init__(self, provider: str, feature: str, hint: str = "") -> None:
        self.provider = provider
        self.feature = feature
        text = f"Provider {provider!r} cannot send {feature}."
        if hint:
            text = f"{text} {hint}"
        super().__init__(text)


class GrantUnavailable(UnroutableSender):
    """The message's From address is a connected mailbox whose grant is not valid.

    The user changed their password or revoked access (grant "expired"), or
    the mailbox was disconnected ("revoked"). Nothing was recorded; the user
    must connect the mailbox again (``grants/connect/``).
    """

    error_type = "grant_unavailable"

    def __init__(self, email: str, status: str) -> None:
        self.email = email
        self.status = status
        super().__init__(
            f"The mailbox {email!r} cannot send: its grant is {status}. Ask its owner to "
            "connect it again (grants/connect/); mail already queued for it waits until then."
        )


class TemplateError(TxMailError):
    """A template cannot be found or rendered."""

    error_type = "template_error"


class WebhookPayloadError(TxMailError):
    """A webhook body is not what the provider sends; nothing of it is stored."""

    error_type = "webhook_payload"


class CannotCancel(TxMailError):
    """The message is not (or no longer) waiting to be sent."""

    error_type = "cannot_cancel"


class DeliveryError(TxMailError):
    """Sending failed on our side, e.g. the stored content can no longer be read."""

    def __init__(self, message: str, *, error_type: str) -> None:
        self.error_type = error_type
        super().__init__(message)


class ProviderAPIError(TxMailError):
    """The provider answered a send with an error.

    Carries the HTTP ``status``, the provider's ``error_type`` and
    ``request_id``; never the credentials used for the request.
    ``transient`` tells whether sending again later may succeed (429, 5xx,
    connection problems) or not (other 4xx); ``reached`` is False only when
    the request provably never got to the provider.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        error_type: str = "",
        request_id: str = "",
        transient: bool = False,
        retry_after: float | None = None,
        reached: bool = True,
    ) -> None:
        self.provider = provider
        #: False when the request provably never reached the provider (refused
        #: connection, DNS or TLS failure before the request was written).
        self.reached = reached
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.transient = transient
        self.retry_after = retry_after
        #: The provider said the grant (connected mailbox) itself is gone or expired.
        self.grant_gone = False
        parts = [f"{provider}"]
        if status is not None:
            parts.append(f"HTTP {status}")
        if error_type:
            parts.append(error_type)
        head = " ".join(parts)
        tail = f" (request id {request_id})" if request_id else ""
        super().__init__(f"{head}: {message}{tail}")


class AcceptedNotRecorded(TxMailError):
    """The provider accepted the message, but the database could not record that.

    Do not send the message again. Its row stays "sending" under its lease
    and is reconciled: the provider's delivery webhook records what happened
    to it, and if none has arrived when the lease runs out a worker tries it
    once more with the same idempotency key (answered from the provider's
    cache where the provider honours the key; see the README on duplicates).
    """

    error_type = "accepted_not_recorded"


class CannotResend(TxMailError):
    """The message cannot be resent (not sent yet, cancelled, or already resent)."""

    error_type = "cannot_resend"


class CannotRetry(TxMailError):
    """The message is not waiting for a retry nor failed, so there is nothing to retry."""

    error_type = "cannot_retry"


class StreamMisconfigured(TxMailError, ImproperlyConfigured):
    """A message's stream needs a setting that is missing (``BASE_URL`` for unsubscribe links)."""

    error_type = "stream_misconfigured"


class InvalidUnsubscribeToken(TxMailError, ValueError):
    """An unsubscribe token that was not made by this site, or was altered."""

    error_type = "invalid_unsubscribe_token"


# Sending-domain DNS checks (django_txmail.dns): what one DNS question can end in.


class LookupFailed(Exception):
    """The DNS question got no usable answer; ``kind`` is ``timeout``,
    ``servfail``, ``refused`` or ``error``."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class NameMissing(Exception):
    """NXDOMAIN: the name does not exist at all (no record of any type)."""
