from __future__ import annotations

import contextvars
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

from .logging import request_id_var

log = logging.getLogger("parley.request")
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane incoming X-Request-ID) for logs and replies."""

    async_capable = True
    sync_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def _start(self, request: HttpRequest) -> tuple[str, float, contextvars.Token[str]]:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex[:16]
        request.request_id = request_id  # type: ignore[attr-defined]
        return request_id, time.perf_counter(), request_id_var.set(request_id)

    def _finish(
        self, request: HttpRequest, response: HttpResponse, started: float, request_id: str
    ) -> None:
        response["X-Request-ID"] = request_id
        if not request.path.startswith("/static/") and request.path not in ("/healthz",):
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    # The peer, or the forwarded visitor behind a TRUSTED_PROXIES proxy.
                    "client": request.META.get("REMOTE_ADDR") or "-",
                    "status": response.status_code,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self.__acall__(request)
        request_id, started, token = self._start(request)
        try:
            response = self.get_response(request)
            self._finish(request, response, started, request_id)
            return response
        finally:
            request_id_var.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        request_id, started, token = self._start(request)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
            self._finish(request, response, started, request_id)
            return response
        finally:
            request_id_var.reset(token)
