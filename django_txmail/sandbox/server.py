"""``SandboxServer``: the emulated providers behind one local HTTP server.

The sandbox lets the app run, be tested and be benchmarked with no provider
account: adapters talk to it over real HTTP on loopback, in the providers'
real wire formats, and tests read back exactly what was sent::

    with SandboxServer(nylas_api_keys={"sandbox-nylas-key"}) as sandbox:
        requests.post(f"{sandbox.url}/v3/domains/acme.io/messages/send", ...)
        assert sandbox.messages[0].payload["subject"] == "Welcome"

Each provider is one emulator module (``nylas.py``); they share the state in
``state.py`` (messages, request log, idempotency cache, faults) and the HTTP
plumbing in ``httpd.py``. Nothing here imports Django.

Failures come two ways: ``inject()`` scripts the next few sends (``faults.py``),
and a :class:`FaultPlan` makes a seeded, reproducible share of all sends fail
(``fault_plan.py``). A send that gets an injected fault gets no planned one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Protocol

from .fault_plan import FaultPlan
from .faults import Fault
from .httpd import Request, Response, SandboxHTTPServer
from .inspection import InspectionAPI
from .nylas import NylasEmulator
from .routing import NoRoute, Route, Router
from .state import ReceivedMessage, RequestRecord, SandboxState, loggable_headers

DEFAULT_NYLAS_API_KEY = "sandbox-nylas-key"


class _Emulator(Protocol):
    path_prefix: str

    def routes(self) -> list[Route]: ...

    def error_response(self, status: int, message: str) -> Response: ...


class SandboxServer:
    """A local HTTP server emulating the providers' send APIs.

    ``port=0`` picks a free port; read it back from :attr:`url` after
    :meth:`start`. ``nylas_api_keys`` are the keys accepted as
    ``Authorization: Bearer <key>``. ``latency`` (seconds) is added to every
    send; ``idempotency_ttl`` (seconds) is how long an Idempotency-Key's
    response is kept. ``faults`` is the :class:`FaultPlan` to start with
    (None: no random faults). ``on_request`` is called with every
    :class:`RequestRecord`, from the thread that served it. ``wall_clock``
    is the provider's "now" in Unix seconds (``send_at`` checks, schedules);
    a test can pass a fake one to move past a scheduled send's time.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        nylas_api_keys: Iterable[str] = (DEFAULT_NYLAS_API_KEY,),
        latency: float = 0.0,
        idempotency_ttl: float = 3600.0,
        faults: FaultPlan | None = None,
        on_request: Callable[[RequestRecord], None] | None = None,
        wall_clock: Callable[[], float] = time.time,
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
        emulators: list[_Emulator] = [
            NylasEmulator(self._state, nylas_api_keys),
            InspectionAPI(self._state, self.reset),  # last: it also answers unknown paths
        ]
        self._app = _Application(self._state, emulators)
        self._httpd: SandboxHTTPServer | None = None
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
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection. Idempotent.

        Requests waiting (latency, a slow or held answer) stop waiting, so
        this returns at once even while a 30-second hang is pending.
        """
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._state.stopping.set()
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
        faults. The fault plan stays, started from scratch (see
        :meth:`set_fault_plan`)."""
        self._state.reset()


class _Application:
    """Routes requests to the emulators and logs each one when answered.

    A path outside every emulator's prefix belongs to the sandbox itself
    (the inspection API), whose error envelope it gets.
    """

    def __init__(self, state: SandboxState, emulators: list[_Emulator]) -> None:
        self._state = state
        self._emulators = emulators
        self._router = Router(route for e in emulators for route in e.routes())

    def handle(self, request: Request) -> Response:
        try:
            handler, params = self._router.resolve(request.method, request.path)
        except NoRoute as exc:
            return self._no_route(request, exc.allowed)
        return handler(request, **params)

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
            )
        )

    def _no_route(self, request: Request, allowed: tuple[str, ...]) -> Response:
        owner = next(
            (e for e in self._emulators if request.path.startswith(e.path_prefix)),
            self._emulators[-1],
        )
        if not allowed:
            return owner.error_response(404, f"No such endpoint: {request.path}")
        message = f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}."
        return owner.error_response(405, message).with_headers(("Allow", ", ".join(allowed)))
