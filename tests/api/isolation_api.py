"""Isolation-matrix entries for every REST API route that takes an id (tests/isolation_routes.py).

Bob's read-write owner key at Bravo must get, for each of Acme's ids, exactly the answer of a
missing id, on every method of the route, and Acme's rows must not change.
"""

from __future__ import annotations

from typing import Any

from chatbot.bots.models import Bot
from chatbot.conversations import actions as conversation_actions
from chatbot.conversations.models import CannedResponse, Conversation, Message, Visitor
from chatbot.knowledge.models import Source, SourceKind
from chatbot.lib import ids
from chatbot.tenants import actions as tenant_actions
from chatbot.tenants.models import Invitation, Membership, Role
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _bot(world: World) -> Bot:
    return Bot.objects.create(tenant=world.acme, name="Acme helper")


def _conversation(world: World) -> Conversation:
    bot = _bot(world)
    visitor = Visitor.objects.create(bot=bot, name="Vera", email="vera@example.com")
    received = conversation_actions.receive_visitor_message(
        visitor, None, client_id="c1", text="Hello"
    )
    return received.conversation


def _snapshot(*querysets: Any) -> Any:
    return lambda: [list(qs.all().values()) for qs in querysets]


def _conversation_case(world: World, methods: tuple[str, ...], **data: Any) -> IdRouteCase:
    conversation = _conversation(world)
    return IdRouteCase(
        kwargs={"conversation_id": conversation.public_id},
        state=_snapshot(
            Conversation.objects.filter(bot__tenant=world.acme),
            Message.objects.filter(conversation__bot__tenant=world.acme),
        ),
        data=data,
        methods=methods,
    )


def _bot_case(world: World, methods: tuple[str, ...], **data: Any) -> IdRouteCase:
    bot = _bot(world)
    return IdRouteCase(
        kwargs={"bot_id": ids.encode("bot", bot.pk)},
        state=_snapshot(
            Bot.objects.filter(tenant=world.acme), Source.objects.filter(bot__tenant=world.acme)
        ),
        data=data,
        methods=methods,
    )


@register_id_route("api:v1:bot")
def bot(world: World) -> IdRouteCase:
    return _bot_case(world, ("get", "patch", "delete"), name="hijacked")


@register_id_route("api:v1:bot_rotate_identity_secret")
def bot_rotate(world: World) -> IdRouteCase:
    return _bot_case(world, ("post",))


@register_id_route("api:v1:bot_route")
def bot_route(world: World) -> IdRouteCase:
    return _bot_case(world, ("get", "put"), endpoints=[])


@register_id_route("api:v1:bot_sources")
def bot_sources(world: World) -> IdRouteCase:
    return _bot_case(world, ("get", "post"), kind="text", title="t", text="hijacked")


@register_id_route("api:v1:bot_sources_upload")
def bot_sources_upload(world: World) -> IdRouteCase:
    return _bot_case(world, ("post",))


@register_id_route("api:v1:conversation")
def conversation(world: World) -> IdRouteCase:
    return _conversation_case(world, ("get",))


for _name in ("take_over", "hand_back", "close", "reopen"):

    def _factory(world: World) -> IdRouteCase:
        return _conversation_case(world, ("post",))

    register_id_route(f"api:v1:conversation_{_name}")(_factory)


@register_id_route("api:v1:conversation_assign")
def conversation_assign(world: World) -> IdRouteCase:
    return _conversation_case(world, ("post",), member=None)


@register_id_route("api:v1:conversation_export")
def conversation_export(world: World) -> IdRouteCase:
    return _conversation_case(world, ("get",))


@register_id_route("api:v1:conversation_messages")
def conversation_messages(world: World) -> IdRouteCase:
    return _conversation_case(world, ("get", "post"), text="hijacked")


@register_id_route("api:v1:conversation_notes")
def conversation_notes(world: World) -> IdRouteCase:
    return _conversation_case(world, ("post",), text="hijacked")


def _visitor_case(world: World, methods: tuple[str, ...]) -> IdRouteCase:
    conversation = _conversation(world)
    return IdRouteCase(
        kwargs={"visitor_id": conversation.visitor.public_id},
        state=_snapshot(
            Visitor.objects.filter(bot__tenant=world.acme),
            Message.objects.filter(conversation__bot__tenant=world.acme),
        ),
        methods=methods,
    )


@register_id_route("api:v1:visitor")
def visitor(world: World) -> IdRouteCase:
    return _visitor_case(world, ("get", "delete"))


@register_id_route("api:v1:visitor_export")
def visitor_export(world: World) -> IdRouteCase:
    return _visitor_case(world, ("get",))


@register_id_route("api:v1:canned_response")
def canned_response(world: World) -> IdRouteCase:
    canned = CannedResponse.objects.create(tenant=world.acme, shortcut="hi", text="Hello!")
    return IdRouteCase(
        kwargs={"canned_id": ids.encode("cnd", canned.pk)},
        state=_snapshot(CannedResponse.objects.filter(tenant=world.acme)),
        methods=("delete",),
    )


def _source_case(world: World, methods: tuple[str, ...]) -> IdRouteCase:
    source = Source.objects.create(bot=_bot(world), kind=SourceKind.TEXT, title="t", body="b")
    return IdRouteCase(
        kwargs={"source_id": ids.encode("src", source.pk)},
        state=_snapshot(Source.objects.filter(bot__tenant=world.acme)),
        methods=methods,
    )


@register_id_route("api:v1:source")
def source(world: World) -> IdRouteCase:
    return _source_case(world, ("get", "delete"))


@register_id_route("api:v1:source_sync")
def source_sync(world: World) -> IdRouteCase:
    return _source_case(world, ("post",))


@register_id_route("api:v1:member")
def member(world: World) -> IdRouteCase:
    return IdRouteCase(
        kwargs={"member_id": ids.encode("usr", world.charlie.pk)},
        state=_snapshot(Membership.objects.filter(tenant=world.acme)),
        data={"role": Role.OWNER},
        methods=("patch", "delete"),
    )


@register_id_route("api:v1:invitation")
def invitation(world: World) -> IdRouteCase:
    owner = Membership.objects.get(tenant=world.acme, user=world.alice)
    invited, _token = tenant_actions.invite_member(owner, "dave@acme.test", Role.AGENT)
    return IdRouteCase(
        kwargs={"invitation_id": ids.encode("inv", invited.pk)},
        state=_snapshot(Invitation.objects.filter(tenant=world.acme)),
        methods=("delete",),
    )
