"""Cross-tenant matrix entries for the inbox routes (tests/isolation_routes.py)."""

from __future__ import annotations

from typing import Any

from chatbot.conversations.models import CannedResponse, Conversation, Message, Visitor
from tests.inbox.helpers import chat, make_bot
from tests.isolation_routes import IdRouteCase, World, register_id_route


def _acme_conversation(world: World) -> Conversation:
    return chat(make_bot(world.acme, "Acme helper"), "Where is my order?")


def _state(conversation: Conversation) -> Any:
    return (
        list(Conversation.objects.filter(pk=conversation.pk).values()),
        list(Message.objects.filter(conversation=conversation).values("seq", "role", "text")),
        list(Visitor.objects.filter(pk=conversation.visitor_id).values()),
    )


def _conversation_route(name: str, data: dict[str, Any] | None = None) -> None:
    @register_id_route(f"conversations:{name}")
    def case(world: World) -> IdRouteCase:
        conversation = _acme_conversation(world)
        return IdRouteCase(
            kwargs={"public_id": conversation.public_id},
            state=lambda: _state(conversation),
            data=data or {},
        )


_conversation_route("detail")
_conversation_route("live")
_conversation_route("export")
_conversation_route("takeover")
_conversation_route("handback")
_conversation_route("close")
_conversation_route("reopen")
_conversation_route("reply", {"text": "hijacked"})
_conversation_route("note", {"text": "hijacked"})
_conversation_route("assign", {"user": ""})


def _visitor_route(name: str) -> None:
    @register_id_route(f"conversations:{name}")
    def case(world: World) -> IdRouteCase:
        conversation = _acme_conversation(world)
        visitor = conversation.visitor
        return IdRouteCase(
            kwargs={"visitor_id": visitor.public_id},
            state=lambda: _state(conversation),
            data={"confirm": visitor.public_id},
        )


_visitor_route("visitor_export")
_visitor_route("visitor_erase")


@register_id_route("conversations:canned_delete")
def canned_delete(world: World) -> IdRouteCase:
    canned = CannedResponse.objects.create(tenant=world.acme, shortcut="hello", text="Hi!")
    return IdRouteCase(
        kwargs={"canned_id": canned.pk},
        state=lambda: list(CannedResponse.objects.filter(pk=canned.pk).values()),
    )
