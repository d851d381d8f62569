"""Helpers the dashboard templates call (added to the Jinja2 environment in chatbot/jinja2.py).

They import lazily: the environment is built before every app's models are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest


def dashboard_nav(request: HttpRequest) -> list[Any]:
    from .nav import links_for

    return links_for(request)


def nav_icon(name: str) -> str:
    from .nav import icon_path

    return icon_path(name)


def user_workspaces(request: HttpRequest) -> list[Any]:
    """The user's memberships, for the workspace switcher."""
    from chatbot.tenants.models import Membership

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    return list(
        Membership.objects.filter(user=user).select_related("tenant").order_by("tenant__name")
    )


GLOBALS: dict[str, Any] = {
    "dashboard_nav": dashboard_nav,
    "nav_icon": nav_icon,
    "user_workspaces": user_workspaces,
}
