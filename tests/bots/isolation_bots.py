"""Isolation-matrix entries for the bot pages (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.bots.models import Bot
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _acme_bot(world: World) -> Bot:
    return Bot.objects.create(
        tenant=world.acme, name="Acme helper", allowed_origins=["https://acme.test"]
    )


def _state(bot: Bot) -> object:
    return list(Bot.objects.filter(pk=bot.pk).values())


@register_id_route("bots:edit")
def bot_edit(world: World) -> IdRouteCase:
    bot = _acme_bot(world)
    return IdRouteCase(
        kwargs={"bot_id": bot.pk},
        state=lambda: _state(bot),
        data={
            "name": "hijacked",
            "accent_color": "#000000",
            "position": "left",
            "theme": "dark",
            "launcher_icon": "chat",
            "default_locale": "en",
            "allowed_origins_text": "https://evil.example",
        },
    )


@register_id_route("bots:rotate_secret")
def bot_rotate_secret(world: World) -> IdRouteCase:
    bot = _acme_bot(world)
    return IdRouteCase(kwargs={"bot_id": bot.pk}, state=lambda: _state(bot), methods=("post",))


@register_id_route("bots:delete")
def bot_delete(world: World) -> IdRouteCase:
    bot = _acme_bot(world)
    return IdRouteCase(kwargs={"bot_id": bot.pk}, state=lambda: _state(bot), methods=("post",))
