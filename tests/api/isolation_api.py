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
from chatbot.tools import actions as tool_actions
from chatbot.tools.endpoint import store_headers
from chatbot.tools.models import Action, ActionCall, CallStatus, Contact
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
        data={"shortcut": "hijacked", "text": "hijacked"},
        methods=("patch", "delete"),
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


def _action_case(world: World, methods: tuple[str, ...], **data: Any) -> IdRouteCase:
    action = Action(
        tenant=world.acme,
        name="find_order",
        title="Looking up your order",
        description="Acme's orders",
        url="https://93.184.215.14/orders/{order_id}",
        method="GET",
    )
    store_headers(action, {"Authorization": "Bearer acme-secret"})
    action.save()
    action.bots.add(_bot(world))
    return IdRouteCase(
        kwargs={"action_id": ids.encode("act", action.pk)},
        state=_snapshot(
            Action.objects.filter(tenant=world.acme),
            Action.bots.through.objects.filter(action__tenant=world.acme),
        ),
        data=data,
        methods=methods,
    )


@register_id_route("api:v1:action")
def action(world: World) -> IdRouteCase:
    return _action_case(world, ("get", "patch", "delete"), name="hijacked", headers={})


@register_id_route("api:v1:action_test")
def action_test(world: World) -> IdRouteCase:
    # A built-in would answer without calling anything; an HTTP one must not even be tried.
    return _action_case(world, ("post",), arguments={"order_id": "A1"})


@register_id_route("api:v1:conversation_action_calls")
def conversation_action_calls(world: World) -> IdRouteCase:
    conversation = _conversation(world)
    ActionCall.objects.create(
        conversation=conversation,
        name="find_order",
        kind="http",
        arguments={"order_id": "A17"},
        status=CallStatus.DONE,
    )
    return IdRouteCase(
        kwargs={"conversation_id": conversation.public_id},
        state=_snapshot(ActionCall.objects.filter(conversation__bot__tenant=world.acme)),
        methods=("get",),
    )


@register_id_route("api:v1:contact")
def contact(world: World) -> IdRouteCase:
    conversation = _conversation(world)
    lead = tool_actions.capture_lead(conversation.pk, {"name": "Vera", "email": "vera@acme.test"})
    return IdRouteCase(
        kwargs={"contact_id": ids.encode("ctc", lead.pk)},
        state=_snapshot(Contact.objects.filter(tenant=world.acme)),
        methods=("get", "delete"),
    )
