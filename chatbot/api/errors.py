"""The API's one error shape: `{"error": {"code": "not_found", "message": "..."}}`.

Validation errors add `fields`: `[{"field": "body.name", "message": "..."}]`. Every answer
under /api/ uses it, including Django's own 404/405/500 pages (middleware.py turns those
into JSON), so a client never has to parse HTML.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "rate_limited",
    500: "server_error",
}


class ApiError(Exception):
    """Raise from an endpoint: answered as the error shape with `status`."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.message = message


def body(status: int, message: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code or CODES.get(status, "error"), "message": message, **extra}}


def response(
    request: HttpRequest | None, status: int, message: str, code: str | None = None, **extra: Any
) -> JsonResponse:
    return JsonResponse(body(status, message, code, **extra), status=status)


def not_found(what: str = "resource") -> ApiError:
    """A missing row and another workspace's row answer exactly alike."""
    return ApiError(404, f"No such {what}.")
