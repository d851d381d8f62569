"""The role matrix: an agent (charlie at Acme) cannot reach keys, team, bots or settings.

Every view decorated with `manager_required` or `owner_required` (any app) is found by its
`parley_role` mark and tried as charlie, GET and POST, with Acme's real ids where the route
takes one (from the isolation registry). Nothing may change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from chatbot.core.public_routes import PUBLIC_URL_NAMES
from chatbot.tenants.models import Membership, Role, Tenant, User
from tests.isolation_routes import ID_ROUTES, World, load_all
from tests.routes import Route, iter_routes

load_all()

# Sections the issue names as off limits for agents: every non-public route in them must be
# marked manager- or owner-only.
MANAGER_ONLY_NAMESPACES = ("bots:",)
MANAGER_ONLY_NAMES = {
    "dashboard:team",
    "dashboard:member_role",
    "dashboard:member_remove",
    "dashboard:invitation_revoke",
    "dashboard:keys",
    "dashboard:key_revoke",
    "dashboard:audit",
    "dashboard:settings",
    "dashboard:delete_workspace",
}


def role_of(route: Route) -> str | None:
    return getattr(route.callback, "parley_role", None)


def restricted_routes() -> list[Route]:
    return [route for route in iter_routes() if role_of(route) in ("manager", "owner")]


def test_agent_only_sections_are_marked_for_managers() -> None:
    unmarked = [
        route.name
        for route in iter_routes()
        if (route.name in MANAGER_ONLY_NAMES or route.name.startswith(MANAGER_ONLY_NAMESPACES))
        and route.name not in PUBLIC_URL_NAMES
        and role_of(route) not in ("manager", "owner")
    ]
    assert not unmarked, (
        f"Decorate these views with manager_required (chatbot/tenants/permissions.py): {unmarked}"
    )


@pytest.mark.parametrize("route", restricted_routes(), ids=lambda route: route.name)
def test_an_agent_is_refused_every_manager_page(
    route: Route,
    acme: Tenant,
    bravo: Tenant,
    alice: User,
    bob: User,
    charlie: User,
    client_for: Callable[[User], Client],
) -> None:
    world = World(acme=acme, bravo=bravo, alice=alice, bob=bob, charlie=charlie)
    state: Callable[[], object] = lambda: None  # noqa: E731
    data: dict[str, object] = {}
    if route.takes_params:
        assert route.name in ID_ROUTES, f"{route.name} needs an isolation entry first"
        case = ID_ROUTES[route.name](world)
        url, state, data = route.url(**case.kwargs), case.state, case.data
    else:
        url = route.url()
    members_before = list(Membership.objects.filter(tenant=acme).values())
    before = state()
    agent = client_for(charlie)
    for response in (agent.get(url), agent.post(url, data)):
        assert response.status_code in (403, 405), f"{url}: charlie got {response.status_code}"
    assert agent.get(url).status_code in (403, 405)
    assert state() == before
    assert list(Membership.objects.filter(tenant=acme).values()) == members_before
    assert Membership.objects.get(tenant=acme, user=charlie).role == Role.AGENT


def test_the_refusal_page_says_which_role_is_needed(
    charlie: User, client_for: Callable[[User], Client]
) -> None:
    response = client_for(charlie).get("/dashboard/keys/")
    assert response.status_code == 403
    text = response.content.decode()
    assert "This page is for an owner or an admin" in text
    assert "You are agent in this workspace" in text


def test_an_admin_may_manage_but_not_delete_the_workspace(
    acme: Tenant, alice: User, client_for: Callable[[User], Client]
) -> None:
    from tests.fixtures.personas import make_member

    admin = make_member(acme, "adele@acme.test", Role.ADMIN, "Adele")
    client = client_for(admin)
    for url in (
        "/dashboard/keys/",
        "/dashboard/team/",
        "/dashboard/settings/",
        "/dashboard/audit/",
    ):
        assert client.get(url).status_code == 200, url
    assert client.get("/dashboard/settings/delete/").status_code == 403
    assert client.post("/dashboard/settings/delete/", {"confirmation": "Acme"}).status_code == 403
    assert Tenant.objects.filter(pk=acme.pk).exists()


def test_an_agent_sees_no_manager_links_in_the_navigation(
    charlie: User, alice: User, client_for: Callable[[User], Client]
) -> None:
    agent_page = client_for(charlie).get("/dashboard/").content.decode()
    owner_page = client_for(alice).get("/dashboard/").content.decode()
    for href in (
        'href="/dashboard/keys/"',
        'href="/dashboard/team/"',
        'href="/dashboard/settings/"',
    ):
        assert href not in agent_page
        assert href in owner_page
