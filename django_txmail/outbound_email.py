"""The provider-neutral message: what compose produces and adapters consume.

An :class:`OutboundEmail` is validated on construction by compose (see
``compose.py``) and can be rebuilt from a stored ``Message`` row, so the
first attempt and every retry send exactly the same thing.
"""

from __future__ import annotations

import enum
import io
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import IO, Any
from uuid import UUID

#: The longest idempotency key a message may carry (what providers accept).
MAX_IDEMPOTENCY_KEY = 256


class Feature(enum.StrEnum):
    """A capability a message may use and a provider may or may not carry.

    The value is the wording used in ``UnsupportedFeature`` errors and the
    docs' feature matrix.
    """

    CC = "Cc recipients"
    BCC = "Bcc recipients"
    NO_TO = "a message without To recipients"
    REPLY_TO = "Reply-To"
    MULTIPLE_REPLY_TO = "more than one Reply-To address"
    ATTACHMENTS = "attachments"
    INLINE_IMAGES = "inline images (Content-ID)"
    HEADERS = "extra headers"
    HEADER_OVERRIDES = "a To or Cc header that differs from the actual recipients"
    ALTERNATIVES = "alternative parts other than one text/html"
    METADATA = "metadata"
    TAGS = "tags"
    MULTIPLE_TAGS = "more than one tag"
    PROVIDER_TEMPLATE = "provider-hosted templates (template_id)"
    TRACK_OPENS = "open tracking (track_opens)"
    TRACK_CLICKS = "click tracking (track_clicks)"
    REPLY_TO_MESSAGE_ID = "replies to an earlier message (reply_to_message_id)"
    ESP_EXTRA = "raw provider fields (esp_extra)"
    ICAL_EVENT = "calendar invitations (ical_event)"
    STREAM_TYPE = "stream_type"
    MERGE_DATA = "per-recipient merge data (merge_data)"
    MERGE_METADATA = "per-recipient metadata (merge_metadata)"
    MERGE_HEADERS = "per-recipient headers (merge_headers)"
    ENVELOPE_SENDER = "a separate envelope sender (envelope_sender)"


@dataclass(frozen=True)
class Address:
    """One mailbox: ``email`` is the addr-spec (domain IDNA-encoded)."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2].lower()

    def as_dict(self) -> dict[str, str]:
        return {"email": self.email, "name": self.name}

    def __str__(self) -> str:
        if not self.name:
            return self.email
        quoted = self.name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{self.email}>'


@dataclass
class Attachment:
    """A file attached to the message, or an inline image when ``inline``.

    The bytes are not held here but opened on demand, so a large file read
    from storage is streamed to the provider rather than copied around.
    """

    filename: str
    mimetype: str
    size: int
    opener: Callable[[], IO[bytes]] = field(repr=False, compare=False)
    content_id: str = ""  # without angle brackets
    inline: bool = False

    @classmethod
    def from_bytes(cls, content: bytes, **kwargs: Any) -> Attachment:
        return cls(size=len(content), opener=lambda: io.BytesIO(content), **kwargs)

    def open(self) -> IO[bytes]:
        return self.opener()

    def read(self) -> bytes:
        with self.open() as f:
            return f.read()


@dataclass
class OutboundEmail:
    """Everything needed to send one message, independent of any provider."""

    from_email: Address
    to: list[Address] = field(default_factory=list)
    cc: list[Address] = field(default_factory=list)
    bcc: list[Address] = field(default_factory=list)
    reply_to: list[Address] = field(default_factory=list)
    subject: str = ""
    text: str | None = None
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    header_overrides: dict[str, list[Address]] = field(default_factory=dict)
    alternatives: list[tuple[str, str]] = field(default_factory=list)  # (content, mimetype)
    attachments: list[Attachment] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    send_at: datetime | None = None
    template_id: str = ""
    template_vars: dict[str, Any] = field(default_factory=dict)
    # The stored template the subject and bodies were rendered from (already rendered).
    template: str = ""
    template_version: int | None = None
    template_language: str = ""
    track_opens: bool | None = None
    track_clicks: bool | None = None
    reply_to_message_id: str = ""
    esp_extra: dict[str, Any] = field(default_factory=dict)
    ical_event: str = ""
    stream_type: str = ""
    merge_data: dict[str, Any] = field(default_factory=dict)
    merge_metadata: dict[str, Any] = field(default_factory=dict)
    merge_headers: dict[str, Any] = field(default_factory=dict)
    envelope_sender: str = ""
    #: The kind of mail (``TXMAIL["STREAMS"]``): its suppressions and unsubscribe headers;
    #: empty, the default stream (``conf.DEFAULT_STREAM``).
    stream: str = ""
    #: The lane ("high", "normal", "low"; empty: normal): who is sent first when many wait.
    priority: str = ""
    # Routing requests from the caller (msg.grant_id / msg.provider).
    grant_id: str = ""
    provider: str = ""
    # Given when the message is planned for the outbox (django_txmail.outbox.store.plan).
    message_id: UUID | None = None
    idempotency_key: str = ""
    #: The provider payloads built from this message (``Adapter.payload``), so the one
    #: measured when it is checked is the one sent; a copy starts with none.
    payloads: dict[Any, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def recipients(self) -> list[Address]:
        return [*self.to, *self.cc, *self.bcc]

    def without(self, addresses: set[str]) -> OutboundEmail:
        """A copy without the recipients in ``addresses`` (lower-cased); itself if none."""
        if not any(a.email.lower() in addresses for a in self.recipients):
            return self

        def kept(values: list[Address]) -> list[Address]:
            return [a for a in values if a.email.lower() not in addresses]

        return replace(self, to=kept(self.to), cc=kept(self.cc), bcc=kept(self.bcc))

    def features(self) -> set[Feature]:
        """The features this message uses, for checking against a provider."""
        used: set[Feature] = set()
        checks = {
            Feature.CC: self.cc,
            Feature.BCC: self.bcc,
            Feature.NO_TO: not self.to,
            Feature.REPLY_TO: self.reply_to,
            Feature.MULTIPLE_REPLY_TO: len(self.reply_to) > 1,
            Feature.ATTACHMENTS: any(not a.inline for a in self.attachments),
            Feature.INLINE_IMAGES: any(a.inline for a in self.attachments),
            Feature.HEADERS: self.headers,
            Feature.HEADER_OVERRIDES: self.header_overrides,
            Feature.ALTERNATIVES: self.alternatives,
            Feature.METADATA: self.metadata,
            Feature.TAGS: self.tags,
            Feature.MULTIPLE_TAGS: len(self.tags) > 1,
            Feature.PROVIDER_TEMPLATE: self.template_id,
            Feature.TRACK_OPENS: self.track_opens is not None,
            Feature.TRACK_CLICKS: self.track_clicks is not None,
            Feature.REPLY_TO_MESSAGE_ID: self.reply_to_message_id,
            Feature.ESP_EXTRA: self.esp_extra,
            Feature.ICAL_EVENT: self.ical_event,
            Feature.STREAM_TYPE: self.stream_type,
            Feature.MERGE_DATA: self.merge_data,
            Feature.MERGE_METADATA: self.merge_metadata,
            Feature.MERGE_HEADERS: self.merge_headers,
            Feature.ENVELOPE_SENDER: self.envelope_sender,
        }
        for feature, present in checks.items():
            if present:
                used.add(feature)
        return used
