"""The registry of routes that take an id, for the cross-tenant matrix.

tests/tenants/test_isolation_matrix.py walks every URL pattern with a parameter and needs an
entry here for each one: a factory that creates Acme's row and says how to reach it and how
to tell whether it changed. Each app keeps its entries in its own tests folder, in a module
named `isolation_<something>.py` (imported automatically):

    # tests/bots/isolation_bots.py
    from tests.isolation_routes import IdRouteCase, World, register_id_route

    @register_id_route("bots:edit")
    def bot_edit(world: World) -> IdRouteCase:
        bot = Bot.objects.create(tenant=world.acme, name="Acme helper")
        return IdRouteCase(
            kwargs={"bot_id": bot.pk},
            state=lambda: list(Bot.objects.filter(pk=bot.pk).values()),
            data={"name": "hijacked"},  # what the attacker POSTs
        )

The test then checks, as bob (owner at Bravo), that GET and POST on Acme's id answer
exactly like a missing id (404), that `state()` is unchanged, and that alice (Acme's owner)
does not get a 404 on the same URL (so the entry really points at a row).
Routes whose parameter is not a tenant row (a signed token, say) are declared with
`exempt_id_route(name, reason)`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot.tenants.models import Tenant, User


@dataclass
class World:
    acme: Tenant
    bravo: Tenant
    alice: User  # owner at Acme
    bob: User  # owner at Bravo (the attacker in the matrix)
    charlie: User  # agent at Acme


@dataclass
class IdRouteCase:
    kwargs: dict[str, Any]
    # A snapshot of everything the route could change (compared before and after).
    state: Callable[[], Any]
    data: dict[str, Any] = field(default_factory=dict)
    methods: tuple[str, ...] = ("get", "post")
    # The kwargs of a row that does not exist; by default ints become 2_000_000_000 and
    # strings "missing".
    missing_kwargs: dict[str, Any] | None = None


Factory = Callable[[World], IdRouteCase]
ID_ROUTES: dict[str, Factory] = {}
EXEMPT_ID_ROUTES: dict[str, str] = {}


def register_id_route(name: str) -> Callable[[Factory], Factory]:
    def decorator(factory: Factory) -> Factory:
        if name in ID_ROUTES and ID_ROUTES[name] is not factory:
            raise ValueError(f"{name} is registered twice in the isolation matrix")
        ID_ROUTES[name] = factory
        return factory

    return decorator


def exempt_id_route(name: str, reason: str) -> None:
    EXEMPT_ID_ROUTES[name] = reason


def load_all() -> None:
    """Import every tests/**/isolation_*.py module so that their entries register."""
    root = Path(__file__).resolve().parent
    for module_path in sorted(root.rglob("isolation_*.py")):
        relative = module_path.relative_to(root.parent).with_suffix("")
        importlib.import_module(".".join(relative.parts))
