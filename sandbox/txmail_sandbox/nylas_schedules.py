"""The Nylas v3 schedules API for scheduled grant-route sends, emulated.

A grant-route send with ``send_at`` is answered with a ``schedule_id``
(``nylas.py``); these endpoints let the sender see and cancel it, which is
how delivery code cancels a scheduled message it has already handed over:

``GET /v3/grants/{grant_id}/messages/schedules``
    ``{request_id, data: [schedule, ...]}``: the grant's schedules, oldest
    first.
``GET /v3/grants/{grant_id}/messages/schedules/{schedule_id}``
    ``{request_id, data: schedule}``.
``DELETE /v3/grants/{grant_id}/messages/schedules/{schedule_id}``
    Cancel: 202 ``{request_id, data: {message}}``.

A schedule is ``{schedule_id, status: {code, description}, close_time}``
with Nylas's codes: ``pending`` until its ``send_at`` (no ``close_time``,
as Nylas leaves it out), then ``success`` with ``close_time`` = ``send_at``;
or ``cancelled`` with ``close_time`` = when it was cancelled. Time is the
sandbox's ``wall_clock``, so a test can move past ``send_at``.

Rules where Nylas documents none:

* A schedule id unknown for this grant (another grant's included) is 404
  ``not_found_error``.
* Cancelling an already cancelled schedule is 404 ``not_found_error`` too:
  there is no pending schedule left to cancel. A client that retries a
  cancel after losing the 202 can GET the schedule to see ``cancelled``.
* Cancelling once ``send_at`` has passed is 400 ``invalid_request_error``:
  the message has gone out (Nylas only promises cancellation up to 10 s
  before ``send_at``).

The domain route accepts ``send_at`` but has no schedules API, as at Nylas.
Same authentication as the send endpoints; no faults apply here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .httpd import Request, Response
from .nylas_responses import error_response, request_id
from .routing import Route
from .state import ReceivedMessage, SandboxState

_PENDING = {"code": "pending", "description": "schedule send awaiting send at time"}
_SUCCESS = {"code": "success", "description": "schedule send succeeded"}
_CANCELLED = {"code": "cancelled", "description": "schedule send cancelled"}
_UNAUTHORIZED = "Unauthorized: send 'Authorization: Bearer <API key>' with a valid key."


class NylasSchedules:
    def __init__(self, state: SandboxState, authorized: Callable[[Request], bool]) -> None:
        self.state = state
        self._authorized = authorized

    def routes(self) -> list[Route]:
        one = "/v3/grants/{grant_id}/messages/schedules/{schedule_id}"
        return [
            Route("GET", "/v3/grants/{grant_id}/messages/schedules", self.list_schedules),
            Route("GET", one, self.get_schedule),
            Route("DELETE", one, self.cancel_schedule),
        ]

    def list_schedules(self, request: Request, grant_id: str) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        now = self.state.wall_clock()
        data = [
            _schedule(message, now)
            for message in self.state.messages
            if message.grant_id == grant_id and message.schedule_id is not None
        ]
        return Response.json(200, {"request_id": request_id(), "data": data})

    def get_schedule(self, request: Request, grant_id: str, schedule_id: str) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        message = self._find(grant_id, schedule_id)
        if message is None:
            return _not_found(grant_id, schedule_id)
        data = _schedule(message, self.state.wall_clock())
        return Response.json(200, {"request_id": request_id(), "data": data})

    def cancel_schedule(self, request: Request, grant_id: str, schedule_id: str) -> Response:
        if not self._authorized(request):
            return error_response(401, _UNAUTHORIZED)
        while True:
            message = self._find(grant_id, schedule_id)
            if message is None:
                return _not_found(grant_id, schedule_id)
            if message.cancelled:
                return error_response(
                    404, f"Schedule {schedule_id} was already cancelled; nothing left to cancel."
                )
            now = self.state.wall_clock()
            if now >= message.payload["send_at"]:
                return error_response(
                    400, f"Schedule {schedule_id} was sent at its send_at; it cannot be cancelled."
                )
            cancelled = replace(message, cancelled_at=datetime.fromtimestamp(now, UTC))
            # Lost a race with another cancel of the same schedule: look again.
            if self.state.replace_message(message, cancelled):
                break
        body = {"request_id": request_id(), "data": {"message": "Scheduled send cancelled."}}
        return Response.json(202, body)

    def _find(self, grant_id: str, schedule_id: str) -> ReceivedMessage | None:
        for message in self.state.messages:
            if message.schedule_id == schedule_id and message.grant_id == grant_id:
                return message
        return None


def _schedule(message: ReceivedMessage, now: float) -> dict[str, Any]:
    schedule: dict[str, Any] = {"schedule_id": message.schedule_id}
    send_at = message.payload["send_at"]
    if message.cancelled_at is not None:
        schedule["status"] = _CANCELLED
        schedule["close_time"] = int(message.cancelled_at.timestamp())
    elif now >= send_at:
        schedule["status"] = _SUCCESS
        schedule["close_time"] = send_at
    else:
        schedule["status"] = _PENDING
    return schedule


def _not_found(grant_id: str, schedule_id: str) -> Response:
    return error_response(404, f"No scheduled message {schedule_id} for grant {grant_id}.")
