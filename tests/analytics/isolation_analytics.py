"""Isolation-matrix entries for the analytics and operator pages (tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.bots.models import Bot
from chatbot.knowledge.models import Source
from tests.isolation_routes import IdRouteCase, World, exempt_id_route, register_id_route


@register_id_route("analytics:add_answer")
def add_answer(world: World) -> IdRouteCase:
    bot = Bot.objects.create(tenant=world.acme, name="Acme helper")
    return IdRouteCase(
        kwargs={"bot_id": bot.pk},
        state=lambda: list(Source.objects.filter(bot=bot).values()),
        data={"question": "Injected?", "answer": "Written into Acme's knowledge."},
    )


exempt_id_route(
    "operator:tenant_action",
    "the operator console reaches every tenant by design; anyone not staff (owners included) "
    "gets a 404 for every id (tests/billing/test_console.py)",
)
