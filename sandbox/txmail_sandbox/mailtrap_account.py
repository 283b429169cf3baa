"""What Mailtrap's account API (``/api/accounts/{account_id}/...``: templates,
suppressions) shares: its error body and its guard."""

from __future__ import annotations

from collections.abc import Callable

from .httpd import Request, Response


def error(status: int, errors: list[str]) -> Response:
    """Mailtrap's error body: ``{"success": false, "errors": [...]}``."""
    return Response.json(status, {"success": False, "errors": errors})


def account_api(
    authorized: Callable[[Request], bool], handler: Callable[..., Response]
) -> Callable[..., Response]:
    """``handler`` behind the account API's checks: the token (401), then a numeric
    account id (404); the handler gets the request and the path's other parameters."""

    def checked(request: Request, account_id: str, **params: str) -> Response:
        if not authorized(request):
            return error(401, ["Unauthorized"])
        if not account_id.isdigit():
            return error(404, [f"No account {account_id!r}: account ids are numbers."])
        return handler(request, **params)

    return checked
