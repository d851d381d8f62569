"""The cross-tenant matrix: for every route that takes an id, another tenant's member gets
exactly the answer a missing id gets (404) and nothing changes.

Entries live in tests/**/isolation_*.py (see tests/isolation_routes.py and CONTRIBUTING.md,
"Adding a route that takes an id").
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chatbot.core.public_routes import PUBLIC_URL_NAMES, PUBLIC_URL_PREFIXES
from chatbot.tenants import actions
from chatbot.tenants.models import Membership, Tenant, User
from tests.isolation_routes import EXEMPT_ID_ROUTES, ID_ROUTES, IdRouteCase, World, load_all
from tests.routes import Route, iter_routes

load_all()


def id_routes() -> list[Route]:
    return [
        route
        for route in iter_routes()
        if route.takes_params
        and route.name not in PUBLIC_URL_NAMES
        and not route.route.startswith(PUBLIC_URL_PREFIXES)
    ]


def _missing(case: IdRouteCase) -> dict[str, Any]:
    if case.missing_kwargs is not None:
        return case.missing_kwargs
    return {
        key: 2_000_000_000 if isinstance(value, int) else "missing"
        for key, value in case.kwargs.items()
    }


def _client(user: User, tenant: Tenant, api: bool) -> Client:
    if api:
        membership = Membership.objects.get(user=user, tenant=tenant)
        _key, secret = actions.create_api_key(membership, "matrix", "read_write")
        return Client(headers={"authorization": f"Bearer {secret}"})
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def _send(client: Client, method: str, url: str, data: dict[str, Any], api: bool = False) -> Any:
    if method == "get":
        return client.get(url)
    if method == "post" and not api:
        return client.post(url, data)
    return getattr(client, method)(url, data, content_type="application/json")


def test_every_route_that_takes_an_id_has_a_matrix_entry() -> None:
    missing = [
        route.name or route.route
        for route in id_routes()
        if route.name not in ID_ROUTES and route.name not in EXEMPT_ID_ROUTES
    ]
    assert not missing, (
        "These routes take an id but have no cross-tenant isolation entry: "
        f"{', '.join(missing)}. Add `@register_id_route(<name>)` with a factory in "
        "tests/<your app>/isolation_<your app>.py (recipe: CONTRIBUTING.md, "
        "'Adding a route that takes an id')."
    )


def test_every_matrix_entry_names_a_real_route() -> None:
    names = {route.name for route in iter_routes()}
    stale = sorted(set(ID_ROUTES) - names)
    assert not stale, f"Isolation entries for routes that no longer exist: {stale}"


@pytest.mark.parametrize(
    "route", [r for r in id_routes() if r.name in ID_ROUTES], ids=lambda route: route.name
)
def test_another_tenant_gets_the_answer_of_a_missing_id_and_nothing_changes(
    route: Route,
    acme: Tenant,
    bravo: Tenant,
    alice: User,
    bob: User,
    charlie: User,
) -> None:
    world = World(acme=acme, bravo=bravo, alice=alice, bob=bob, charlie=charlie)
    case = ID_ROUTES[route.name](world)
    is_api = route.name.startswith("api:")
    intruder = _client(bob, bravo, is_api)
    before = case.state()

    foreign_url = route.url(**case.kwargs)
    missing_url = route.url(**_missing(case))
    saw_404 = False
    for method in case.methods:
        foreign = _send(intruder, method, foreign_url, case.data, is_api)
        missing = _send(intruder, method, missing_url, case.data, is_api)
        assert foreign.status_code == missing.status_code, (
            f"{method.upper()} {foreign_url}: another tenant's id answers "
            f"{foreign.status_code}, a missing id {missing.status_code}"
        )
        assert foreign.status_code in (404, 405), (
            f"{method.upper()} {foreign_url} answered {foreign.status_code} to bob (Bravo)"
        )
        assert foreign.content == missing.content
        saw_404 = saw_404 or foreign.status_code == 404
        assert case.state() == before, f"{method.upper()} {foreign_url} changed Acme's data"
    assert saw_404, f"{route.name}: no method answered 404"

    # The entry must point at a real row: Acme's owner is not told "not found".
    owner = _client(alice, acme, is_api)
    answers = [
        _send(owner, method, foreign_url, case.data, is_api).status_code for method in case.methods
    ]
    assert any(status != 404 for status in answers), (
        f"{route.name}: alice (Acme's owner) also gets 404, so the entry tests nothing"
    )
