"""Role checks for dashboard views: `member_required`, `manager_required`, `owner_required`.

    from chatbot.tenants.permissions import manager_required

    @manager_required
    def bot_list(request): ...          # request.tenant / request.membership are set

- anonymous -> 302 to the log-in page (with ?next=)
- logged in but in no workspace -> a page that says so and offers to create one
- logged in, role too low -> 403 with a page naming the role needed
- every answer carries a strict Content-Security-Policy (DASHBOARD_CSP) unless the view
  set its own

Each decorated view carries `parley_role` ("member", "manager" or "owner"); the role matrix
test (tests/tenants/test_role_matrix.py) reads it to check that an agent is refused every
manager page of every app. Works on sync and async views.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_noop

from .models import Role

ROLE_LEVELS: dict[str, frozenset[str]] = {
    "member": frozenset({Role.OWNER, Role.ADMIN, Role.AGENT}),
    "manager": frozenset({Role.OWNER, Role.ADMIN}),
    "owner": frozenset({Role.OWNER}),
}
# Translated where the page shows them (dashboard/forbidden.html).
_NEEDED = {
    "manager": gettext_noop("an owner or an admin"),
    "owner": gettext_noop("an owner"),
}

V = TypeVar("V", bound=Callable[..., Any])

# Dashboard pages show visitors' messages and model output: no inline script may run, nothing
# loads from elsewhere, and no other site may frame them. A view that needs more sets its own
# Content-Security-Policy header, which is then left alone.
DASHBOARD_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def _protect(response: Any) -> Any:
    if isinstance(response, HttpResponse) and "Content-Security-Policy" not in response:
        response["Content-Security-Policy"] = DASHBOARD_CSP
    return response


def refusal(request: HttpRequest, level: str) -> HttpResponse | None:
    """The response that refuses `request` at this role level, or None when it may pass."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    membership = getattr(request, "membership", None)
    if membership is None:
        return render(request, "dashboard/no_workspace.html", status=200)
    if membership.role not in ROLE_LEVELS[level]:
        return render(
            request,
            "dashboard/forbidden.html",
            {
                "needed": _NEEDED.get(level, gettext_noop("a member")),
                "role": membership.get_role_display(),
            },
            status=403,
        )
    return None


def _require(level: str) -> Callable[[V], V]:
    def decorator(view: V) -> V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                # Rendering the refusal page reads the session: do it off the event loop.
                denied = await sync_to_async(refusal)(request, level)
                if denied is not None:
                    return _protect(denied)
                return _protect(await view(request, *args, **kwargs))

            async_wrapper.parley_role = level  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            denied = refusal(request, level)
            if denied is not None:
                return _protect(denied)
            return _protect(view(request, *args, **kwargs))

        wrapper.parley_role = level  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


member_required = _require("member")
member_required.__doc__ = "Any member of the active tenant (owner, admin or agent)."
manager_required = _require("manager")
manager_required.__doc__ = "Owners and admins: bots, keys, team, settings."
owner_required = _require("owner")
owner_required.__doc__ = "Owners only: deleting the tenant."
