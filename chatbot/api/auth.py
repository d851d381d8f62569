"""API-key authentication for the REST API.

A request carries `Authorization: Bearer prl_xxxxxxxx_<secret>`. The key's tenant becomes
`request.tenant` (so API endpoints use the same tenant-scoped managers as the dashboard), the
key itself `request.auth`, and the role its creator holds in the workspace
`request.api_role`: a key acts with its creator's role, so an agent's key cannot change bots
and a key whose creator left the workspace stops working.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.errors import HttpError
from ninja.security import HttpBearer

from chatbot.api.errors import ApiError
from chatbot.billing.actions import is_suspended
from chatbot.tenants.actions import authenticate_api_key
from chatbot.tenants.models import ApiKey, Membership, Role, User


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        key = authenticate_api_key(token.strip())
        if key is None:
            return None
        if key.created_by_id is None:
            raise HttpError(403, "The member who created this API key is gone; create a new key.")
        role = (
            Membership.objects.filter(tenant_id=key.tenant_id, user_id=key.created_by_id)
            .values_list("role", flat=True)
            .first()
        )
        if role is None:
            raise HttpError(
                403, "The member who created this API key has left the workspace; create a new key."
            )
        if is_suspended(key.tenant_id):
            raise ApiError(
                403,
                "This workspace is suspended by the platform's operator; contact support.",
                code="workspace_suspended",
            )
        request.tenant = key.tenant  # type: ignore[attr-defined]
        request.api_key = key  # type: ignore[attr-defined]
        request.api_role = role  # type: ignore[attr-defined]
        return key


def require_write(request: HttpRequest) -> None:
    """Refuse a read-only key with a 403 that says what to do."""
    key: Any = getattr(request, "auth", None)
    if not isinstance(key, ApiKey) or not key.can_write:
        raise HttpError(403, "This API key is read-only. Create a read-write key to change data.")


def require_manager(request: HttpRequest) -> None:
    """Owners and admins only (bots, knowledge, exports, team, webhooks)."""
    if getattr(request, "api_role", None) not in (Role.OWNER, Role.ADMIN):
        raise HttpError(
            403, "This needs an owner's or an admin's key; this key's creator is an agent."
        )


def require_owner(request: HttpRequest) -> None:
    if getattr(request, "api_role", None) != Role.OWNER:
        raise HttpError(403, "This needs a key created by an owner of the workspace.")


def actor(request: HttpRequest) -> User:
    """The person the key acts as (its creator, still a member: checked at authentication)."""
    key: ApiKey = request.auth  # type: ignore[attr-defined]
    assert key.created_by is not None
    return key.created_by
