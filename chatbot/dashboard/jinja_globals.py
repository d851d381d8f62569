"""Helpers the dashboard templates call (added to the Jinja2 environment in chatbot/jinja2.py).

They import lazily: the environment is built before every app's models are needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString

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


WAITING = "%(num)d waiting for a person"


def dashboard_strings() -> SafeString:
    """The words the dashboard's scripts show, in the request's language (a JSON script
    element: data, not code, so the strict CSP allows it)."""
    from django.utils.html import json_script
    from django.utils.translation import gettext, ngettext

    # json_script escapes <, > and & and returns a SafeString (Jinja keeps it as it is).
    return json_script(
        {
            "waitingOne": ngettext(WAITING, WAITING, 1),
            "waitingMany": ngettext(WAITING, WAITING, 2),
            "visitorWaiting": gettext("A visitor is waiting for a person."),
            "visitorWrote": gettext("A visitor wrote in your conversation."),
            "visitorTyping": gettext("The visitor is typing…"),
            "teammateTyping": gettext("%(name)s is typing…"),
            "teammate": gettext("A teammate"),
            "notifyOn": gettext("Notifications are allowed."),
            "notifyOff": gettext("Notifications are blocked in this browser."),
            "notifyTest": gettext("Parley notifications work."),
        },
        "dashboard-strings",
    )


GLOBALS: dict[str, Any] = {
    "dashboard_strings": dashboard_strings,
    "dashboard_nav": dashboard_nav,
    "nav_icon": nav_icon,
    "user_workspaces": user_workspaces,
}
