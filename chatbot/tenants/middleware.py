"""Sets `request.tenant` and `request.membership` for logged-in members.

The active tenant is kept in the session (a user may belong to several and switch); a stale
or foreign choice falls back to the user's first membership.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .models import Membership

SESSION_KEY = "parley_tenant_id"


def resolve_membership(request: HttpRequest) -> Membership | None:
    from .models import Membership

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("tenant").order_by("id")
    chosen = request.session.get(SESSION_KEY)
    if chosen is not None:
        membership = memberships.filter(tenant_id=chosen).first()
        if membership is not None:
            return membership
    return memberships.first()


class TenantMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        membership = resolve_membership(request)
        request.membership = membership  # type: ignore[attr-defined]
        request.tenant = membership.tenant if membership else None  # type: ignore[attr-defined]
        return self.get_response(request)
