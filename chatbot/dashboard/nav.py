"""The dashboard's navigation, built from a registry so each app adds its own section.

An app adds its entry in its AppConfig.ready(), without touching the dashboard template:

    # chatbot/bots/apps.py
    class BotsConfig(AppConfig):
        def ready(self) -> None:
            from chatbot.dashboard.nav import NavItem, register

            register(NavItem("Bots", "bots:list", roles=MANAGERS, icon="bot", order=20))

`roles` says who sees the entry (the view must still check with the decorators in
chatbot/tenants/permissions.py: hiding a link is not a permission). An entry whose url_name
does not resolve (the app is not wired yet) is simply not shown. `order` sorts the entries;
the built-in ones use 10 (Home) and 80-95 (Team, API keys, Audit log, Settings).
Icons: one of ICONS below (an unknown name falls back to a dot).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext, gettext_noop

from chatbot.tenants.models import Role

if TYPE_CHECKING:
    from django.http import HttpRequest

EVERYONE: frozenset[str] = frozenset({Role.OWNER, Role.ADMIN, Role.AGENT})
MANAGERS: frozenset[str] = frozenset({Role.OWNER, Role.ADMIN})
OWNERS: frozenset[str] = frozenset({Role.OWNER})


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    roles: frozenset[str] = EVERYONE
    icon: str = ""
    order: int = 50
    # A number shown next to the entry (the inbox's waiting visitors), or None.
    badge: Callable[[HttpRequest], int] | None = None


@dataclass(frozen=True)
class NavLink:
    label: str
    url: str
    icon: str
    active: bool
    badge: int | None = None


# Labels are English msgids, translated when the links are built (apps mark theirs with
# gettext_noop so that `make messages` extracts them).
NAV: list[NavItem] = [
    NavItem(gettext_noop("Home"), "dashboard:home", EVERYONE, "home", 10),
    NavItem(gettext_noop("Team"), "dashboard:team", MANAGERS, "users", 80),
    NavItem(gettext_noop("API keys"), "dashboard:keys", MANAGERS, "key", 85),
    NavItem(gettext_noop("Audit log"), "dashboard:audit", MANAGERS, "list", 90),
    NavItem(gettext_noop("Settings"), "dashboard:settings", MANAGERS, "settings", 95),
]


def register(item: NavItem) -> None:
    """Add an entry (idempotent: registering the same url_name again replaces it)."""
    NAV[:] = [existing for existing in NAV if existing.url_name != item.url_name]
    NAV.append(item)


def links_for(request: HttpRequest) -> list[NavLink]:
    """The entries this member may see, resolved, with the current section marked."""
    membership = getattr(request, "membership", None)
    if membership is None:
        return []
    links: list[NavLink] = []
    path = request.path
    for item in sorted(NAV, key=lambda entry: (entry.order, entry.label)):
        if membership.role not in item.roles:
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        # "Home" is active only on itself; other sections also own their sub-pages.
        active = path == url if item.url_name == "dashboard:home" else path.startswith(url)
        badge = item.badge(request) if item.badge is not None else None
        links.append(NavLink(gettext(item.label), url, item.icon, active, badge))
    return links


# Outline icons (24x24 viewBox, stroke paths) for the nav; apps may add their own.
ICONS: dict[str, str] = {
    "home": "M3 11l9-8 9 8M5 10v10h5v-6h4v6h5V10",
    "bot": "M12 3v3M5 8h14v11H5zM9 13h.01M15 13h.01M9 16h6",
    "inbox": "M3 13l3-8h12l3 8v6H3zM3 13h5l1 3h6l1-3h5",
    "book": "M4 5a2 2 0 012-2h13v16H6a2 2 0 00-2 2zM4 5v16",
    "cpu": "M7 7h10v10H7zM10 3v4M14 3v4M10 17v4M14 17v4M3 10h4M3 14h4M17 10h4M17 14h4",
    "users": "M9 11a4 4 0 100-8 4 4 0 000 8zM2 21a7 7 0 0114 0M16 3a4 4 0 010 8M18 14a6 6 0 014 7",
    "key": "M15 7a4 4 0 11-3.9 4.9L3 20v-3l2-2h2v-2h2l2.1-2.1A4 4 0 0115 7z",
    "list": "M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01",
    "settings": "M12 15a3 3 0 100-6 3 3 0 000 6zM4 12h2M18 12h2M12 4v2M12 18v2M6.3 6.3l1.4 "
    "1.4M16.3 16.3l1.4 1.4M6.3 17.7l1.4-1.4M16.3 7.7l1.4-1.4",
    "webhook": "M18 16a3 3 0 10-2.8-4M6 16a3 3 0 102.8 4H15M12 6a3 3 0 10-1.5 5.6L7 17",
    "chart": "M4 20V10M10 20V4M16 20v-7M22 20H2",
}


def icon_path(name: str) -> str:
    return ICONS.get(name, "M12 12h.01")
