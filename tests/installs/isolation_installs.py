"""Isolation-matrix entries for the installation help pages (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.bots.models import Bot
from chatbot.installs.models import WidgetSighting
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _acme_bot(world: World) -> Bot:
    return Bot.objects.create(
        tenant=world.acme, name="Acme helper", allowed_origins=["https://acme.test"]
    )


@register_id_route("installs:check")
def check(world: World) -> IdRouteCase:
    bot = _acme_bot(world)
    return IdRouteCase(
        kwargs={"bot_id": bot.pk},
        state=lambda: list(WidgetSighting.objects.filter(bot=bot).values()),
        data={"url": "http://127.0.0.1:9/"},  # refused by the SSRF guard at once,
    )


@register_id_route("installs:guides")
def guides(world: World) -> IdRouteCase:
    bot = _acme_bot(world)
    return IdRouteCase(kwargs={"bot_id": bot.pk}, state=lambda: None, methods=("get",))
