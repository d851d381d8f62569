"""API-key authentication for the REST API.

A request carries `Authorization: Bearer prl_xxxxxxxx_<secret>`. The key's tenant becomes
`request.tenant` (so API endpoints use the same tenant-scoped managers as the dashboard)
and the key itself `request.auth`. Endpoints that change data call `require_write(request)`.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from chatbot.billing.actions import is_suspended
from chatbot.tenants.actions import authenticate_api_key
from chatbot.tenants.models import ApiKey


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = authenticate_api_key(token.strip())
        if key is None:
            return None
        if is_suspended(key.tenant_id):
            raise HttpError(
                403, "This workspace is suspended by the platform's operator; contact support."
            )
        request.tenant = key.tenant  # type: ignore[attr-defined]
        request.api_key = key  # type: ignore[attr-defined]
        return key


def require_write(request: HttpRequest) -> None:
    """Refuse a read-only key with a 403 that says what to do."""
    key: Any = getattr(request, "auth", None)
    if not isinstance(key, ApiKey) or not key.can_write:
        raise HttpError(403, "This API key is read-only. Create a read-write key to change data.")
