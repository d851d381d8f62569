"""The public REST API (django-ninja): /api/v1/, schema at /api/v1/openapi.json.

Other apps add their endpoints with a router:

    # chatbot/bots/api.py
    router = Router(tags=["bots"])
    ...
    # and in chatbot/api/api.py:  api.add_router("/bots", "chatbot.bots.api.router")

Every endpoint requires an API key (ApiKeyAuth) unless it says otherwise, and reads rows
through `Model.objects.for_tenant(request.tenant)`.
"""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError

from chatbot.tenants.models import ApiKey

from .auth import ApiKeyAuth

api = NinjaAPI(
    title="Parley API",
    version="1",
    description=(
        "Manage a Parley workspace from your own systems. Authenticate with an API key "
        "from Dashboard → API keys, sent as `Authorization: Bearer prl_…`."
    ),
    auth=ApiKeyAuth(),
    # Nested in chatbot/api/urls.py (app "api"), hence the full path for reverse().
    urls_namespace="api:v1",
)


@api.exception_handler(AuthenticationError)
def unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request,
        {
            "detail": "Missing, invalid or revoked API key. Send it as "
            "'Authorization: Bearer prl_…'; create one in Dashboard → API keys."
        },
        status=401,
    )


class WorkspaceOut(Schema):
    id: int
    name: str
    slug: str
    timezone: str


class KeyOut(Schema):
    name: str
    prefix: str
    scope: str
    created_at: datetime


class MeOut(Schema):
    workspace: WorkspaceOut
    key: KeyOut


@api.get("/me", response=MeOut, summary="The workspace and key this request acts as")
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
            "created_at": key.created_at,
        },
    }
