"""``webhooks/<provider name>/``: receive a provider's delivery events.

For ``POST``, in this order, and nothing is stored unless every step passes:

1. the account must exist (404) and have a webhook secret (403: refusing is
   safer than accepting unsigned events);
2. the signature header must be present (401), before any of the body is read;
3. the body may not exceed ``TXMAIL["WEBHOOK_MAX_BYTES"]`` (413), checked on
   ``Content-Length`` before reading and again while reading; a body sent
   chunked, without ``Content-Length``, is read the same way (see
   :func:`read_body`);
4. the signature must equal, compared in constant time, the lowercase hex
   HMAC-SHA256 of the *raw* body under one of the account's secrets (403) —
   ``WEBHOOK_SECRET`` plus any in ``WEBHOOK_SECRETS``, so a secret can be
   rotated without losing events;
5. a body nested deeper than ``MAX_JSON_DEPTH`` is refused before it is
   parsed (400; ``depth.py``);
6. the adapter parses the body; a body that is not JSON or not the provider's
   shape, or a batch with any malformed event, is refused whole (400).
   Unknown event *types* are not malformed: they are stored as "unknown";
7. a request holding more than ``TXMAIL["WEBHOOK_MAX_EVENTS"]`` events is
   refused whole (413);
8. the events are stored once each (a redelivered batch answers 200 and
   stores nothing new) and applied to their messages; grant events
   (Nylas ``grant.*``) also move their Grant's status (``grants.py``). A
   database that is busy (SQLite locked by a worker, a deadlock) is tried
   again for a few seconds before the answer is 503, which the provider
   retries.

``GET`` answers a provider's verification request (Nylas ``?challenge=``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from django.core.exceptions import ImproperlyConfigured
from django.db import DataError, OperationalError
from django.http import HttpRequest, HttpResponse
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from django_txmail.conf import get_settings
from django_txmail.exceptions import WebhookPayloadError
from django_txmail.grants import apply_events as apply_grant_events
from django_txmail.providers import Adapter, load_adapter
from django_txmail.providers.base import WebhookEvent
from django_txmail.tracking.depth import MAX_JSON_DEPTH, too_deep
from django_txmail.tracking.ingest import IngestResult, ingest

logger = logging.getLogger("django_txmail.tracking.views")


def signature_matches(body: bytes, signature: str, secrets: tuple[str, ...]) -> bool:
    """True if ``signature`` is the HMAC-SHA256 of ``body`` under any of ``secrets``."""
    given = signature.strip().lower().encode()
    matched = False
    for secret in secrets:  # no early exit: the time taken does not tell which matched
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given)
    return matched


def read_body(request: HttpRequest, limit: int) -> bytes | Response:
    """The raw body, if it is at most ``limit`` bytes; else the answer refusing it.

    With ``Content-Length``, a body declared over the limit is refused before
    reading. A body sent chunked has none: Django's WSGI request then reads
    as empty, so it is read from the server's input stream instead, which
    servers that take chunked bodies (gunicorn, waitress, mod_wsgi) end
    where the body ends and mark ``wsgi.input_terminated``; a server that
    does not (``runserver``) gets 411, so the provider knows to send it
    again rather than have it refused as unsigned. Under ASGI the request
    holds the whole body, however it was sent. Either way no more than
    ``limit + 1`` bytes are read.
    """
    too_big = Response({"detail": f"The body is over {limit} bytes."}, status=413)
    meta = request.META
    declared = meta.get("CONTENT_LENGTH") or ""
    stream = request
    if declared:
        try:
            if int(declared) > limit:
                return too_big
        except ValueError:
            return Response({"detail": "Bad Content-Length."}, status=400)
    elif meta.get("wsgi.input_terminated"):
        stream = meta["wsgi.input"]
    elif "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and "wsgi.input" in meta:
        return Response(
            {"detail": "This server cannot read a chunked body; send a Content-Length."},
            status=411,
        )
    chunks, size = [], 0
    while size <= limit:
        chunk = stream.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > limit:
        return too_big
    return b"".join(chunks)


#: Pauses, in seconds, between tries at storing events while the database is busy.
BUSY_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)


def ingest_when_free(account: str, events: list[WebhookEvent]) -> IngestResult:
    """``ingest()``, tried again while the database is busy.

    SQLite refuses a write at once ("database is locked") when another
    process writes and the transaction could not wait its turn (no
    ``transaction_mode: IMMEDIATE``); a provider retries a 503 only a few
    times, soon, so a short wait here keeps the events. Nothing is stored by
    a failed try: ``ingest`` runs in one transaction, and a redelivered event
    is stored once.
    """
    for delay in BUSY_RETRY_DELAYS:
        try:
            return ingest(account, events)
        except OperationalError as exc:
            logger.info("Webhook for %r: database busy (%s); trying again", account, exc)
            time.sleep(delay)
    return ingest(account, events)


class WebhookView(APIView):
    """Delivery events from one provider account (the ``provider`` URL argument)."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    renderer_classes = [JSONRenderer]
    parser_classes: list = []  # the raw body is read and verified before any parsing
    schema = None  # a provider's endpoint, not part of any OpenAPI description

    def _adapter(self, provider: str) -> Adapter | None:
        try:
            return load_adapter(get_settings().account(provider))
        except ImproperlyConfigured:
            return None

    def get(self, request, provider: str):
        adapter = self._adapter(provider)
        if adapter is None:
            return Response({"detail": "Unknown provider."}, status=404)
        answer = adapter.webhook_challenge(request.query_params)
        if answer is None:
            return Response({"detail": "Send events with POST."}, status=405)
        return HttpResponse(answer, content_type="text/plain")

    def post(self, request, provider: str):
        adapter = self._adapter(provider)
        if adapter is None:
            return Response({"detail": "Unknown provider."}, status=404)
        account = adapter.account
        if not account.webhook_secrets:
            logger.error("Webhook for %r refused: the account has no WEBHOOK_SECRET.", provider)
            return Response({"detail": "Webhooks are not configured for this account."}, 403)
        header = adapter.signature_header()
        signature = request.headers.get(header, "")
        if not signature:
            return Response({"detail": f"The {header} header is missing."}, status=401)
        body = read_body(request._request, get_settings().webhook_max_bytes)
        if isinstance(body, Response):
            return body
        if not signature_matches(body, signature, account.webhook_secrets):
            return Response({"detail": "The signature does not match."}, status=403)
        if too_deep(body):
            return Response({"detail": f"The body nests deeper than {MAX_JSON_DEPTH}."}, 400)
        try:
            events = adapter.parse_webhook(body, request.content_type or "")
            if len(events) > (most := get_settings().webhook_max_events):
                return Response({"detail": f"Over {most} events in one request."}, status=413)
            result = ingest_when_free(account.name, events)
            apply_grant_events(account.name, events)
        except WebhookPayloadError as exc:
            return Response({"detail": str(exc)}, status=400)
        except DataError as exc:
            # A value the database refuses that the checks above did not foresee:
            # the transaction rolled back, so nothing was stored.
            logger.warning("Webhook for %r refused by the database: %s", provider, exc)
            return Response({"detail": "An event holds a value that cannot be stored."}, 400)
        except OperationalError:
            # Still busy after a few seconds: nothing stored; the provider retries.
            logger.warning("Webhook for %r hit a database conflict", provider, exc_info=True)
            return Response({"detail": "Busy; send it again."}, status=503)
        return Response(result.as_dict())
