"""The public REST API (django-ninja): /api/v1/, schema at /api/v1/openapi.json.

Each domain keeps its endpoints in its own `api.py` router, added below. Every endpoint
requires an API key (ApiKeyAuth) unless it says otherwise, reads rows through
`Model.objects.for_tenant(request.tenant)`, and answers errors in the one shape of
errors.py. Conventions shared by every request (rate limits, Idempotency-Key, ETag, JSON
errors for Django's own pages) live in middleware.py. docs/api.md is the guide.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError

from chatbot.tenants.models import ApiKey

from . import errors
from .auth import ApiKeyAuth
from .schemas import with_errors

api = NinjaAPI(
    title="Parley API",
    version="1",
    description=(
        "Manage a Parley workspace from your own systems. Authenticate with an API key "
        "from Dashboard → API keys, sent as `Authorization: Bearer prl_…`. Errors are "
        '`{"error": {"code": …, "message": …}}`; lists are paged with `cursor` and '
        "`next_cursor`; POSTs accept an `Idempotency-Key`. Guide: docs/api.md."
    ),
    auth=ApiKeyAuth(),
    # Nested in chatbot/api/urls.py (app "api"), hence the full path for reverse().
    urls_namespace="api:v1",
)


def _error(request: HttpRequest, status: int, message: str, code: str | None = None) -> Any:
    return api.create_response(request, errors.body(status, message, code), status=status)


@api.exception_handler(errors.ApiError)
def api_error(request: HttpRequest, exc: errors.ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.message, exc.code)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(
        request,
        401,
        "Missing, invalid or revoked API key. Send it as "
        "'Authorization: Bearer prl_…'; create one in Dashboard → API keys.",
    )


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(Http404)
def missing(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "No such resource.")


@api.exception_handler(PermissionDenied)
def forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or "Not allowed.")


@api.exception_handler(ValidationError)
def invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {
            "field": ".".join(str(part) for part in error.get("loc", ())),
            "message": str(error.get("msg", "invalid")),
        }
        for error in exc.errors
    ]
    summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
    body = errors.body(422, f"The request is not valid ({summary}).", fields=fields)
    return api.create_response(request, body, status=422)


class RootOut(Schema):
    name: str
    version: str
    docs: str
    schema_url: str
    links: dict[str, str]


@api.get(
    "/",
    response=with_errors(RootOut),
    auth=None,
    url_name="root",
    summary="The API's version and links",
)
def root(request: HttpRequest) -> dict[str, Any]:
    base = request.build_absolute_uri("/api/v1/")
    return {
        "name": "Parley API",
        "version": "1",
        "docs": base + "docs",
        "schema_url": base + "openapi.json",
        "links": {
            name: base + name
            for name in (
                "me",
                "bots",
                "conversations",
                "visitors",
                "sources",
                "canned-responses",
                "contacts",
                "actions",
                "members",
                "invitations",
                "usage",
                "webhooks",
            )
        },
    }


class WorkspaceOut(Schema):
    id: int
    name: str
    slug: str
    timezone: str


class KeyOut(Schema):
    name: str
    prefix: str
    scope: str
    role: str
    created_at: datetime


class MeOut(Schema):
    workspace: WorkspaceOut
    key: KeyOut


@api.get("/me", response=with_errors(MeOut), summary="The workspace and key this request acts as")
def me(request: HttpRequest) -> dict[str, object]:
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    tenant = key.tenant
    return {
        "workspace": {
            "id": tenant.pk,
            "name": tenant.name,
            "slug": tenant.slug,
            "timezone": tenant.timezone,
        },
        "key": {
            "name": key.name,
            "prefix": key.prefix,
            "scope": key.scope,
            "role": request.api_role,  # type: ignore[attr-defined]
            "created_at": key.created_at,
        },
    }


for _module in (
    "chatbot.bots.api",
    "chatbot.conversations.api",
    "chatbot.knowledge.api",
    "chatbot.tenants.api",
    "chatbot.tools.api",
    "chatbot.webhooks.api",
):
    _router = __import__(_module, fromlist=["router"]).router
    api.add_router("", _router)
