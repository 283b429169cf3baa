"""The fault steps every emulated send goes through, whatever the provider.

Faults are the sandbox's, not a provider's, so they act the same way on
every provider's send endpoint; only the error body is the provider's, built
by the emulator's ``refuse(status, message, error_type, headers)``:

* :func:`injected_refusal` — a pending ``inject()``-ed status fault, before
  anything else (authentication included) happens;
* :func:`planned_refusal` — the fault plan's 5xx, 429 and reset kinds, in
  front of the API: nothing is stored;
* :func:`delay_or_withhold` — for a request that accepted a new message, an
  injected ``delay_after_accept``, else the plan's ``slow`` or
  ``timeout-after-accept``.

See ``faults.py`` and ``fault_plan.py`` for what each kind means.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .fault_plan import FaultPlan
from .faults import AFTER_ACCEPT, BEFORE_ACCEPT
from .httpd import Request, Response
from .state import SandboxState

#: ``refuse(status, message, error_type, headers)``: the provider's error answer.
Refuse = Callable[[int, str, str | None, Iterable[tuple[str, str]]], Response]


def injected_refusal(
    state: SandboxState, provider: str, route: str, request: Request, refuse: Refuse
) -> Response | None:
    """The answer of a pending injected status fault for this send, if any."""
    fault = state.faults.take(provider, route, BEFORE_ACCEPT)
    if fault is None or fault.status is None:
        return None
    request.fault = f"injected {fault.status}"
    headers = [("Retry-After", str(fault.retry_after))] if fault.retry_after is not None else []
    message = fault.message or f"Injected fault: HTTP {fault.status}."
    return refuse(fault.status, message, fault.error_type, headers)


def planned_refusal(
    state: SandboxState, request: Request, kind: str, plan: FaultPlan, refuse: Refuse
) -> Response:
    """The answer of a drawn refusal kind (see ``fault_plan.REFUSALS``)."""
    state.planned_faults.count(kind)
    request.fault = kind
    if kind == "reset":
        return Response.reset()
    status = int(kind[:3])
    message = f"Sandbox fault plan (seed {plan.seed}): HTTP {status}."
    headers = [("Retry-After", str(plan.retry_after))] if kind == "429" else []
    return refuse(status, message, None, headers)


def delay_or_withhold(
    state: SandboxState,
    provider: str,
    route: str,
    request: Request,
    response: Response,
    drawn: tuple[str, FaultPlan] | None,
) -> Response:
    """For a newly accepted message: an injected delay first, else the
    plan's ``slow`` (answered late) or ``timeout-after-accept`` (held, then
    the connection is closed without an answer)."""
    injected = state.faults.take(provider, route, AFTER_ACCEPT)
    if injected is not None and injected.delay_after_accept is not None:
        request.fault = "injected delay"
        state.pause(injected.delay_after_accept)
        return response
    if drawn is None:
        return response
    kind, plan = drawn
    state.planned_faults.count(kind)
    request.fault = kind
    if kind == "slow":
        state.pause(plan.slow)
        return response
    state.pause(plan.hang)  # timeout-after-accept
    return response.withheld()
