"""``SandboxServer``: the emulated providers behind one local HTTP server.

The sandbox lets the app run, be tested and be benchmarked with no provider
account: adapters talk to it over real HTTP on loopback, in the providers'
real wire formats, and tests read back exactly what was sent::

    with SandboxServer(nylas_api_keys={"sandbox-nylas-key"}) as sandbox:
        requests.post(f"{sandbox.url}/v3/domains/acme.io/messages/send", ...)
        assert sandbox.messages[0].payload["subject"] == "Welcome"

Each provider is one emulator module (``nylas.py``, ``mailtrap.py``,
``mailerlogic.py``); they share the state in ``state.py`` (messages, request
log, idempotency cache, faults), the fault steps in ``send_steps.py`` and
the HTTP plumbing in ``httpd.py``. Nothing here imports Django.

Failures come two ways: ``inject()`` scripts the next few sends (``faults.py``),
and a :class:`FaultPlan` makes a seeded, reproducible share of all sends fail
(``fault_plan.py``). A send that gets an injected fault gets no planned one.
The plan also takes accounts down (503) and closes ports of :meth:`listen`
for a while, counted in requests; ``set_outage()`` and
``refuse_connections()`` do the same when a test says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Protocol

from .account_limits import credential_of
from .fault_plan import FaultPlan
from .faults import Fault
from .httpd import Request, Response, SandboxHTTPServer
from .inspection import InspectionAPI, foreign_host
from .mailerlogic import MailerLogicEmulator
from .mailerlogic_notifications import MailerLogicNotifications
from .mailtrap import MailtrapEmulator
from .mailtrap_notifications import MailtrapNotifications
from .mailtrap_templates import new_template as mailtrap_template
from .nylas import NylasEmulator
from .nylas_domains import NylasDomainsAPI
from .nylas_grants import NylasGrants, NylasGrantsInspection
from .nylas_notifications import NylasNotifications
from .nylas_templates import new_template as nylas_template
from .nylas_webhooks_api import NylasWebhooksAPI
from .ports import Port, PortServer, port_of
from .routing import NoRoute, Route, Router
from .state import ReceivedMessage, RequestRecord, SandboxState, loggable_headers
from .webhook_emitter import WebhookEmitter
from .webhook_inspection import WebhookInspectionAPI
from .webhook_values import WebhookDelivery, WebhookOptions, WebhookTarget

DEFAULT_NYLAS_API_KEY = "sandbox-nylas-key"
DEFAULT_MAILTRAP_API_TOKEN = "sandbox-mailtrap-token"
DEFAULT_MAILERLOGIC_API_KEY = "sandbox-mailerlogic-key"


class _Emulator(Protocol):
    path_prefix: str

    def routes(self) -> list[Route]: ...

    def error_response(self, status: int, message: str) -> Response: ...


class SandboxServer:
    """A local HTTP server emulating the providers' send APIs.

    ``port=0`` picks a free port; read it back from :attr:`url` after
    :meth:`start`. ``nylas_api_keys`` are the keys accepted as
    ``Authorization: Bearer <key>``; ``mailtrap_api_tokens`` the Mailtrap
    tokens (``Api-Token`` or Bearer), ``mailerlogic_api_keys`` the
    MailerLogic keys (``X-API-Key``). ``mailtrap_verified_domains`` and
    ``mailerlogic_verified_domains``, when given, are the only sending
    domains those providers accept (None: any). ``latency`` (seconds) is
    added to every send; ``idempotency_ttl`` (seconds) is how long an
    Idempotency-Key's response is kept. ``faults`` is the :class:`FaultPlan` to start with
    (None: no random faults). ``on_request`` is called with every
    :class:`RequestRecord`, from the thread that served it. ``wall_clock``
    is the provider's "now" in Unix seconds (``send_at`` checks, schedules);
    a test can pass a fake one to move past a scheduled send's time.
    ``webhooks`` maps a provider to the ``(url, secret)`` its delivery
    notifications are posted to, under ``webhook_options``
    (``webhook_emitter.py``); a webhook registered through the provider's
    API (``POST /v3/webhooks``) becomes a target as well.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        nylas_api_keys: Iterable[str] = (DEFAULT_NYLAS_API_KEY,),
        mailtrap_api_tokens: Iterable[str] = (DEFAULT_MAILTRAP_API_TOKEN,),
        mailerlogic_api_keys: Iterable[str] = (DEFAULT_MAILERLOGIC_API_KEY,),
        mailtrap_verified_domains: Iterable[str] | None = None,
        mailerlogic_verified_domains: Iterable[str] | None = None,
        latency: float = 0.0,
        idempotency_ttl: float = 3600.0,
        faults: FaultPlan | None = None,
        on_request: Callable[[RequestRecord], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
        webhooks: Mapping[str, tuple[str, str]] | None = None,
        webhook_options: WebhookOptions | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._state = SandboxState(
            latency=latency,
            idempotency_ttl=idempotency_ttl,
            faults=faults,
            on_request=on_request,
            wall_clock=wall_clock,
        )
        self._webhooks = WebhookEmitter(
            {
                "nylas": NylasNotifications(),
                "mailtrap": MailtrapNotifications(),
                "mailerlogic": MailerLogicNotifications(),
            },
            webhook_options,
            wall_clock=wall_clock,
        )
        for provider, (url, secret) in (webhooks or {}).items():
            self.set_webhook(provider, url, secret)
        self._state.on_message(self._webhooks.accept)
        nylas = NylasEmulator(self._state, nylas_api_keys)
        self._nylas_grants = nylas.grants = NylasGrants(
            nylas.is_api_key,
            nylas.authorized,
            lambda found: self._webhooks.emit("nylas", found, "grants"),
            wall_clock,
        )
        self._mailtrap = MailtrapEmulator(
            self._state, mailtrap_api_tokens, mailtrap_verified_domains
        )
        self._nylas_domains = NylasDomainsAPI(wall_clock)
        emulators: list[_Emulator] = [
            self._nylas_domains,
            self._nylas_grants,
            nylas,
            NylasWebhooksAPI(self._webhooks, nylas.authorized, wall_clock),
            # MailerLogic's /api/v1/ before Mailtrap's /api/: unknown paths go to the longer.
            MailerLogicEmulator(self._state, mailerlogic_api_keys, mailerlogic_verified_domains),
            self._mailtrap,
            WebhookInspectionAPI(self._webhooks),
            NylasGrantsInspection(self._nylas_grants),
            InspectionAPI(self._state, self.reset),  # last: it also answers unknown paths
        ]
        self._app = _Application(self._state, emulators)
        self._httpd: SandboxHTTPServer | None = None
        self._listeners: dict[int, SandboxHTTPServer] = {}
        self._ports: dict[int, Port] = {}  # port number → the listen() port it is
        self._thread: threading.Thread | None = None

    def start(self) -> SandboxServer:
        """Bind and serve in a background daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("This SandboxServer is already started.")
        self._httpd = SandboxHTTPServer((self.host, self.port), self._app)
        self._state.stopping.clear()
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"txmail-sandbox:{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._webhooks.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Idempotent.

        Requests waiting (latency, a slow or held answer) stop waiting, so
        this returns at once even while a 30-second hang is pending. Webhook
        notifications not posted yet are dropped; a post in progress is cut.
        """
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._webhooks.stop()
        self._state.stopping.set()
        for url_port in list(self._listeners):
            self.refuse_connections(f"http://{self.host}:{url_port}")
        for port in self._ports.values():
            port.release()
        httpd.shutdown()
        httpd.server_close()
        httpd.close_connections()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://<host>:<port>``, known once started (and kept after stop)."""
        if self._thread is None:
            raise RuntimeError("Call start() before reading the sandbox's url.")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Accepted messages in arrival order (a snapshot)."""
        return self._state.messages

    @property
    def grants(self) -> list[dict[str, Any]]:
        """Grants issued through the emulated Hosted OAuth, as ``GET /_sandbox/grants``."""
        return self._nylas_grants.listed()

    def expire_grant(self, grant_id: str) -> None:
        """Make a grant invalid and emit ``grant.expired`` (a password change, say)."""
        self._nylas_grants.expire_now(grant_id)

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request seen, in completion order (a snapshot)."""
        return self._state.requests

    @property
    def pending_faults(self) -> list[tuple[Fault, int]]:
        """Injected faults not used up yet, with their remaining counts."""
        return self._state.faults.pending()

    def inject(self, fault: Fault, times: int = 1) -> None:
        """Apply ``fault`` to the next ``times`` matching send requests."""
        self._state.faults.add(fault, times)

    def set_rate_limit(self, credential: str, count: int | None, seconds: float = 1.0) -> None:
        """Answer 429 (with ``Retry-After`` where the provider sends one) to requests with
        ``credential`` beyond ``count`` in any ``seconds``; None lifts the limit."""
        self._state.limits.set_rate_limit(credential, count, seconds)

    def set_outage(self, credential: str, seconds: float) -> None:
        """Answer 503 to every request with ``credential`` for ``seconds`` from now."""
        self._state.limits.set_outage(credential, seconds)

    def listen(self) -> str:
        """Serve on one more port as well (this server's emulators and state) and return
        its URL: give an account this as its API_URI, and that account's connections
        can be refused (:meth:`refuse_connections`, or the fault plan's
        ``refusal_rate``) while the others' go through."""
        port = Port(self._app, len(self._ports), self._planned_closing)
        httpd = PortServer((self.host, 0), port)
        host = f"[{self.host}]" if ":" in self.host else self.host
        port.url = f"http://{host}:{httpd.server_address[1]}"
        port.hold(self.host, httpd.server_address[1])
        self._ports[httpd.server_address[1]] = port
        self._start_listener(httpd)
        return port.url

    def refuse_connections(self, url: str, seconds: float | None = None) -> None:
        """Close the listener of ``url`` (from :meth:`listen`): connecting to it is refused,
        before any request is written. After ``seconds`` (None: never, until
        :meth:`accept_connections`) it listens again on the same port."""
        httpd = self._stop_listening(url)
        if httpd is not None:
            httpd.close_connections()
        if seconds is not None:
            self._listen_again(url, seconds)

    def accept_connections(self, url: str) -> None:
        """Listen again on the port of ``url`` after :meth:`refuse_connections`."""
        port = port_of(url)
        if port not in self._listeners and self._httpd is not None:
            self._start_listener(PortServer((self.host, port), self._ports[port]))

    def port_index(self, url: str) -> int:
        """Which :meth:`listen` port (from 0, in the order they were made) serves ``url``:
        the ``port`` a fault plan's refusal schedule (``FaultPlan.closes_port``) is
        drawn for."""
        return self._ports[port_of(url)].index

    @property
    def planned_closings(self) -> list[tuple[int, int]]:
        """The fault plan's closings of :meth:`listen` ports so far: ``(port, request)``,
        the ``port``-th port (from 0) closed after its ``request``-th request (from 0)."""
        return self._state.planned_faults.closings()

    def _planned_closing(self, port: Port, response: Response) -> Response:
        """``response`` to a request through ``port``; when the fault plan closes the port
        after it, the port stops listening now and drops its connections once
        this answer is written."""
        seconds = self._state.planned_faults.closes(port.index)
        if seconds is None:
            return response
        httpd = self._stop_listening(port.url)
        if httpd is None:
            return response  # closed already, by another request or the test
        self._listen_again(port.url, seconds)
        return replace(response, then=httpd.close_connections)

    def _stop_listening(self, url: str) -> SandboxHTTPServer | None:
        """Stop accepting connections on the port of ``url``; its server, if it was listening."""
        httpd = self._listeners.pop(port_of(url), None)
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        return httpd

    def _listen_again(self, url: str, seconds: float) -> None:
        timer = threading.Timer(seconds, self.accept_connections, args=(url,))
        timer.daemon = True
        timer.start()

    def _start_listener(self, httpd: SandboxHTTPServer) -> None:
        self._listeners[httpd.server_address[1]] = httpd
        threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"txmail-sandbox:{httpd.server_address[1]}",
            daemon=True,
        ).start()

    @property
    def fault_plan(self) -> FaultPlan | None:
        return self._state.planned_faults.plan

    def set_fault_plan(self, plan: FaultPlan | None) -> None:
        """Use ``plan`` for random faults from now on (None: stop them).

        The plan starts from scratch: per-key counts and :attr:`fault_stats`
        are zeroed, so the same requests get the same faults as on a fresh
        server.
        """
        self._state.planned_faults.set_plan(plan)

    @property
    def fault_stats(self) -> dict[str, int]:
        """How many planned faults of each kind were given (every kind listed)."""
        return self._state.planned_faults.stats()

    def stats(self) -> dict[str, object]:
        """``{"messages": n, "requests": n, "faults": fault_stats}``."""
        return self._state.stats()

    def reset(self) -> None:
        """Forget messages, the request log, idempotency keys and injected
        faults, the webhook log, unposted notifications and registered
        webhooks, the Nylas domains, grants, service accounts and DNS servers, and
        Mailtrap's suppression list.
        The fault plan stays, started from scratch (see
        :meth:`set_fault_plan`), and so do configured webhook targets and
        options (see :meth:`clear_webhooks`)."""
        self._state.reset()
        self._webhooks.reset()
        self._nylas_domains.reset()
        self._nylas_grants.reset()
        self._mailtrap.suppressions.clear()

    @property
    def mailtrap_suppressions(self) -> list[dict[str, Any]]:
        """Mailtrap's suppression list, newest first, as its API lists it."""
        return self._mailtrap.suppressions.listed()

    def add_mailtrap_suppression(
        self, email: str, type: str = "manual import", sending_stream: str = "transactional"
    ) -> dict[str, Any]:
        """Put an address on Mailtrap's suppression list (``type`` and
        ``sending_stream`` as Mailtrap names them); returns the entry."""
        return self._mailtrap.suppressions.add(email, type, sending_stream)

    def add_nylas_service_account(self, key_id: str, public_key_pem: str) -> None:
        """Accept Manage Domains requests signed by this key (``X-Nylas-Kid: key_id``)."""
        self._nylas_domains.add_service_account(key_id, public_key_pem)

    def add_nylas_domain(self, address: str, records: Mapping[str, Mapping[str, str]]) -> str:
        """Register a Nylas domain; returns its id. ``records`` maps each
        verification type (``ownership``, ``spf``, ``dkim``, ``feedback``,
        ``mx``) to the ``{host, type, value}`` its ``info`` answers with."""
        return self._nylas_domains.add_domain(
            address, {kind: dict(options) for kind, options in records.items()}
        )

    def set_dns_nameservers(self, servers: Iterable[tuple[str, int]]) -> None:
        """The DNS servers (address, port) Nylas ``verify`` asks; none: the system's."""
        self._nylas_domains.set_nameservers(list(servers))

    def add_template(
        self,
        provider: str,
        template_id: str,
        *,
        subject: str,
        html: str,
        text: str = "",
        engine: str = "mustache",
    ) -> None:
        """Store a provider-hosted template under a chosen id, as if made in the provider's
        dashboard (``nylas``: a template id; ``mailtrap``: a template UUID). Templates can
        also be made over HTTP with the providers' template APIs; ``reset`` forgets them."""
        if provider == "nylas":
            template = nylas_template(template_id, subject=subject, body=html, engine=engine)
        elif provider == "mailtrap":
            template = mailtrap_template(
                template_id, subject=subject, body_html=html, body_text=text
            )
        else:
            raise ValueError(f"{provider!r} has no hosted templates; use 'nylas' or 'mailtrap'.")
        self._state.templates.put(provider, template_id, template)

    def set_webhook(self, provider: str, url: str | None, secret: str = "") -> None:
        """Post ``provider``'s delivery notifications to ``url``, signed with
        ``secret`` (the app's ``WEBHOOK_SECRET``); ``url=None`` stops them."""
        target = None if url is None else WebhookTarget(url, secret)
        self._webhooks.set_target(provider, target)

    @property
    def webhook_options(self) -> WebhookOptions:
        return self._webhooks.options

    def set_webhook_options(self, options: WebhookOptions) -> None:
        """Delay, duplicates, reordering and retries from now on; seeded
        decisions start from scratch, as for :meth:`set_fault_plan`."""
        self._webhooks.set_options(options)

    @property
    def webhook_log(self) -> list[WebhookDelivery]:
        """Every notification posted so far, with the app's answer (a snapshot)."""
        return self._webhooks.log

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        """Wait until every queued notification has been posted, retries
        included; TimeoutError after ``timeout`` seconds."""
        self._webhooks.flush(timeout)

    def clear_webhooks(self) -> None:
        """No webhook targets (configured or registered), default options,
        an empty webhook log: nothing more is posted anywhere."""
        self._webhooks.clear()


class _Application:
    """Routes requests to the emulators and logs each one when answered.

    A path outside every emulator's prefix belongs to the sandbox itself
    (the inspection API), whose error envelope it gets; so does a request
    for the sandbox's own endpoints under a Host that is not loopback.
    """

    def __init__(self, state: SandboxState, emulators: list[_Emulator]) -> None:
        self._state = state
        self._emulators = emulators
        self._router = Router(route for e in emulators for route in e.routes())

    def handle(self, request: Request) -> Response:
        refused = foreign_host(request)
        if refused is not None:
            return self._emulators[-1].error_response(400, refused)
        try:
            handler, params = self._router.resolve(request.method, request.path)
        except NoRoute as exc:
            return self._no_route(request, exc.allowed)
        if self._state.planned_faults.outage(credential_of(request.headers)):
            return self._refused(request, 503, None, "planned outage")
        refusal = self._state.limits.refusal(request.headers)
        if refusal is not None:
            return self._refused(request, *refusal)
        return handler(request, **params)

    def _owner(self, request: Request) -> _Emulator:
        return next(
            (e for e in self._emulators if request.path.startswith(e.path_prefix)),
            self._emulators[-1],
        )

    def _refused(
        self, request: Request, status: int, retry_after: float | None, fault: str = ""
    ) -> Response:
        """An account over its rate limit (429) or down (503), in the provider's envelope."""
        request.fault = fault or f"account {status}"
        owner = self._owner(request)
        if status == 503:
            return owner.error_response(503, "The service is unavailable; try again later.")
        response = owner.error_response(429, "Too many requests for this account.")
        if retry_after is None or not getattr(owner, "sends_retry_after", True):
            return response
        return response.with_headers(("Retry-After", str(int(retry_after))))

    def finished(self, request: Request, response: Response, duration: float) -> None:
        self._state.log_request(
            RequestRecord(
                method=request.method,
                path=request.path,
                status=None if response.drop else response.status,
                headers=loggable_headers(request.headers),
                idempotency_key=request.headers.get("Idempotency-Key"),
                transport=request.transport,
                duration=duration,
                fault=request.fault,
                received_at=time.monotonic() - duration,
            )
        )

    def _no_route(self, request: Request, allowed: tuple[str, ...]) -> Response:
        owner = self._owner(request)
        if not allowed:
            return owner.error_response(404, f"No such endpoint: {request.path}")
        message = f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}."
        return owner.error_response(405, message).with_headers(("Allow", ", ".join(allowed)))
