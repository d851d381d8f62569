"""Isolation-matrix entries for actions and contacts (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.bots.models import Bot
from chatbot.tools.models import Action, Contact
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _acme_action(world: World) -> Action:
    return Action.objects.create(
        tenant=world.acme,
        name="find_order",
        title="Looking up your order",
        description="Acme's orders",
        url="https://shop.acme.test/orders/{order_id}",
        method="GET",
    )


def _state(action: Action) -> object:
    return list(Action.objects.filter(pk=action.pk).values())


@register_id_route("tools:edit")
def action_edit(world: World) -> IdRouteCase:
    action = _acme_action(world)
    return IdRouteCase(
        kwargs={"action_id": action.pk},
        state=lambda: _state(action),
        data={"name": "hijacked", "title": "x", "description": "x", "timeout_seconds": 5},
    )


@register_id_route("tools:test")
def action_test(world: World) -> IdRouteCase:
    action = _acme_action(world)
    return IdRouteCase(
        kwargs={"action_id": action.pk},
        state=lambda: _state(action),
        data={"arguments": "{}"},
        methods=("post",),
    )


@register_id_route("tools:delete")
def action_delete(world: World) -> IdRouteCase:
    action = _acme_action(world)
    return IdRouteCase(
        kwargs={"action_id": action.pk}, state=lambda: _state(action), methods=("post",)
    )


@register_id_route("tools:contact_delete")
def contact_delete(world: World) -> IdRouteCase:
    bot = Bot.objects.create(tenant=world.acme, name="Acme leads")
    contact = Contact.objects.create(tenant=world.acme, bot=bot, email="lead@acme.test")
    return IdRouteCase(
        kwargs={"contact_id": contact.pk},
        state=lambda: list(Contact.objects.filter(pk=contact.pk).values()),
        methods=("post",),
    )
