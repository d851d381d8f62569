"""Isolation-matrix entries for the knowledge routes (see tests/isolation_routes.py)."""

from __future__ import annotations

from chatbot.bots.models import Bot
from chatbot.knowledge.models import Chunk, Source
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _acme_source(world: World) -> Source:
    bot = Bot.objects.create(tenant=world.acme, name="Acme knowledge bot")
    return Source.objects.create(bot=bot, kind="text", title="Acme secret", body="Acme only.")


def _state(source: Source) -> object:
    return (
        list(Source.objects.filter(pk=source.pk).values()),
        list(Chunk.objects.filter(source_id=source.pk).values("id", "text")),
    )


@register_id_route("knowledge:detail")
def source_detail(world: World) -> IdRouteCase:
    source = _acme_source(world)
    return IdRouteCase(
        kwargs={"source_id": source.pk},
        state=lambda: _state(source),
        data={"title": "hijacked", "body": "hijacked", "sync_interval": 24},
    )


@register_id_route("knowledge:sync")
def source_sync(world: World) -> IdRouteCase:
    source = _acme_source(world)
    return IdRouteCase(
        kwargs={"source_id": source.pk}, state=lambda: _state(source), methods=("post",)
    )


@register_id_route("knowledge:delete")
def source_delete(world: World) -> IdRouteCase:
    source = _acme_source(world)
    return IdRouteCase(
        kwargs={"source_id": source.pk}, state=lambda: _state(source), methods=("post",)
    )
