"""What every request under /api/ shares, before and after django-ninja sees it.

- JSON errors: Django's own answers (an unknown path, a wrong method, an unhandled exception)
  become the API's error shape instead of an HTML page.
- Rate limits per key: counted on the SHA-256 of the Authorization header (so guessing a
  key's visible prefix cannot spend that key's budget), answered 429 with Retry-After.
- Idempotency-Key on POST: the first answer (status and body) is kept for 24 hours under
  the key, the header and the body's hash; the same key and body replay it, the same key with
  another body is a 422, and a second request while the first still runs is a 409.
- ETag / If-None-Match on successful GETs (a 304 with no body when nothing changed).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.utils.cache import get_conditional_response, set_response_etag

from widget import ratelimit

from . import errors

log = logging.getLogger(__name__)

PREFIX = "/api/"
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY = 255


def _caller(request: HttpRequest) -> str:
    raw = request.headers.get("Authorization", "")
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class ApiMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(PREFIX):
            return self.get_response(request)
        caller = _caller(request)
        if request.headers.get("Authorization"):
            try:
                ratelimit.hit("api:key", caller)
            except ratelimit.RateLimited as refused:
                answer = errors.response(
                    request,
                    429,
                    f"Too many requests for this key; retry in {refused.retry_after} s.",
                )
                answer["Retry-After"] = str(refused.retry_after)
                return answer
        if request.method == "POST" and "Idempotency-Key" in request.headers:
            return self._idempotent(request, caller)
        return self._finish(request, self.get_response(request))

    def _idempotent(self, request: HttpRequest, caller: str) -> HttpResponseBase:
        key = request.headers["Idempotency-Key"]
        if not key or len(key) > MAX_IDEMPOTENCY_KEY or not key.isprintable():
            return errors.response(
                request, 400, "Idempotency-Key must be 1-255 printable characters."
            )
        digest = hashlib.sha256(request.body).hexdigest()
        name = hashlib.sha256(f"{caller}:{request.path}:{key}".encode()).hexdigest()
        stored_key, lock_key = f"api:idem:{name}", f"api:idem-lock:{name}"
        stored = cache.get(stored_key)
        if stored is None:
            if not cache.add(lock_key, 1, timeout=60):
                return errors.response(
                    request,
                    409,
                    "A request with this Idempotency-Key is still being processed.",
                    code="idempotency_in_progress",
                )
            try:
                response = self.get_response(request)
                if response.status_code < 500 and isinstance(response, HttpResponse):
                    cache.set(
                        stored_key,
                        {
                            "body_hash": digest,
                            "status": response.status_code,
                            "content": response.content,
                            "type": response.get("Content-Type", "application/json"),
                        },
                        timeout=IDEMPOTENCY_SECONDS,
                    )
            finally:
                cache.delete(lock_key)
            return self._finish(request, response)
        if stored["body_hash"] != digest:
            return errors.response(
                request,
                422,
                "This Idempotency-Key was used with a different body; use a new key.",
                code="idempotency_mismatch",
            )
        replay = HttpResponse(stored["content"], status=stored["status"])
        replay["Content-Type"] = stored["type"]
        replay["Idempotent-Replayed"] = "true"
        return replay

    def _finish(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        response = _as_json_error(request, response)
        if (
            request.method in ("GET", "HEAD")
            and response.status_code == 200
            and isinstance(response, HttpResponse)
        ):
            if not response.has_header("ETag"):
                set_response_etag(response)
            conditional = get_conditional_response(
                request, etag=response.get("ETag"), response=response
            )
            if conditional is not None:
                return conditional
        return response

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not request.path.startswith(PREFIX) or settings.DEBUG:
            return None
        log.exception("api: unhandled error", exc_info=exc)
        return errors.response(request, 500, "Something went wrong on our side; try again.")


def _as_json_error(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    """Django's HTML 404/405/500 (or a redirect to add a slash) as the API's JSON shape."""
    status = response.status_code
    if status < 400 and status not in (301, 302):
        return response
    if response.get("Content-Type", "").startswith("application/json"):
        return response
    if status in (301, 302):
        return errors.response(
            request, 404, f"No such endpoint: {request.path}. See /api/v1/ for the list."
        )
    messages = {
        404: f"No such endpoint: {request.path}. See /api/v1/ for the list.",
        405: f"{request.method} is not allowed here.",
    }
    message = messages.get(status, "The request could not be handled.")
    answer: JsonResponse = errors.response(request, status, message)
    for header in ("Allow", "Retry-After"):
        if response.has_header(header):
            answer[header] = response[header]
    return answer
