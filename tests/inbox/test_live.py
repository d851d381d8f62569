"""The agents' socket (/ws/dashboard/) with the visitor's widget socket, in one process.

The same flows across two ASGI processes sharing Redis are in test_scale_out.py.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from chatbot.bots.models import Bot
from chatbot.conversations import actions, replies, takeover
from chatbot.conversations.models import Conversation, Message, MessageStatus, Role, Status
from chatbot.routing import websocket_urlpatterns
from chatbot.tenants.models import User
from tests.widget.conftest import (
    ScriptedModel,
    connect,
    receive,
    receive_until,
    session_token,
)

pytestmark = pytest.mark.django_db(transaction=True)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


def agent_socket(
    cookie: str | None, origin: str | None = "http://testserver"
) -> WebsocketCommunicator:
    headers = [(b"host", b"testserver")]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), "/ws/dashboard/", headers=headers
    )


async def open_agent(user: User) -> WebsocketCommunicator:
    cookie = await database_sync_to_async(session_cookie)(user)
    comm = agent_socket(cookie)
    connected, _ = await comm.connect()
    assert connected
    return comm


async def open_visitor(bot: Bot) -> tuple[WebsocketCommunicator, Any]:
    token, visitor = await database_sync_to_async(session_token)(bot)
    comm = connect(bot)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": token})
    assert (await receive(comm))["type"] == "ready"
    return comm, visitor


async def subscribe(comm: WebsocketCommunicator, conversation_id: str) -> None:
    await comm.send_json_to({"type": "subscribe.conversation", "conversation": conversation_id})
    frames = await receive_until(comm, lambda f: f["type"] == "subscribed")
    assert frames[-1] == {
        "type": "subscribed",
        "to": "conversation",
        "conversation": conversation_id,
    }


class TestHandshake:
    async def test_it_refuses_anonymous_and_foreign_pages(self, alice: User) -> None:
        cookie = await database_sync_to_async(session_cookie)(alice)
        for comm in (
            agent_socket(None),  # no session
            agent_socket(cookie, origin=None),  # no Origin
            agent_socket(cookie, origin="https://evil.example"),  # a foreign page, our cookie
            agent_socket(cookie, origin="http://testserver.evil.example"),  # a look-alike
        ):
            connected, _ = await comm.connect()
            assert not connected

    async def test_a_foreign_conversation_is_not_found(
        self, alice: User, bob: User, acme_bot: Bot
    ) -> None:
        conversation = await database_sync_to_async(_conversation)(acme_bot, "Hi")
        comm = await open_agent(bob)
        await comm.send_json_to(
            {"type": "subscribe.conversation", "conversation": conversation.public_id}
        )
        assert await receive(comm) == {
            "type": "error",
            "code": "not_found",
            "message": "No such conversation.",
        }
        # And nothing of Acme's reaches Bravo's inbox.
        await comm.send_json_to({"type": "subscribe.inbox"})
        assert (await receive(comm))["type"] == "subscribed"
        await database_sync_to_async(takeover.add_note)(conversation, alice, "acme only")
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()


def _conversation(bot: Bot, text: str) -> Conversation:
    visitor = actions.open_visitor(bot)
    return actions.receive_visitor_message(visitor, None, client_id="c1", text=text).conversation


class TestLive:
    async def test_visitor_and_agent_see_each_other_in_real_time(
        self, charlie: User, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        agent = await open_agent(charlie)
        await agent.send_json_to({"type": "subscribe.inbox"})
        assert (await receive(agent))["type"] == "subscribed"

        visitor, _ = await open_visitor(acme_bot)
        await visitor.send_json_to(
            {"type": "message.send", "client_id": "v1", "text": "Can I talk to a person?"}
        )
        # The inbox hears a conversation waiting.
        frames = await receive_until(agent, lambda f: f["type"] == "inbox.waiting")
        conversation_id = frames[-1]["id"]
        conversation = await Conversation.objects.aget(public_id=conversation_id)
        assert conversation.status == Status.WAITING
        await subscribe(agent, conversation_id)

        # The visitor types: the agent sees it.
        await visitor.send_json_to({"type": "typing"})
        typing = await receive_until(agent, lambda f: f["type"] == "typing")
        assert typing[-1]["who"] == "visitor"

        # The agent takes over and writes: the visitor sees who joined, then the words.
        await database_sync_to_async(takeover.take_over)(conversation, charlie)
        joined = await receive_until(
            visitor, lambda f: f["type"] == "message" and f["message"]["text"] == "agent.joined"
        )
        assert joined[-1]["message"]["author"] == "Charlie"
        status = await receive_until(visitor, lambda f: f["type"] == "conversation")
        assert status[-1]["conversation"]["status"] == "agent"
        await agent.send_json_to({"type": "typing"})
        agent_typing = await receive_until(visitor, lambda f: f["type"] == "typing")
        assert agent_typing[-1] == {"type": "typing", "who": "agent"}
        await database_sync_to_async(takeover.add_note)(conversation, charlie, "secret note")
        await database_sync_to_async(takeover.agent_reply)(conversation, charlie, "Hi, Charlie")
        said = await receive_until(
            visitor, lambda f: f["type"] == "message" and f["message"]["role"] == "agent"
        )
        assert said[-1]["message"]["text"] == "Hi, Charlie"
        assert all(f.get("message", {}).get("role") != "note" for f in said)
        # The visitor's reply reaches the agent; the bot stays quiet.
        await visitor.send_json_to({"type": "message.send", "client_id": "v2", "text": "Thanks"})
        heard = await receive_until(
            agent, lambda f: f["type"] == "message" and f["message"]["text"] == "Thanks"
        )
        assert heard[-1]["message"]["role"] == "visitor"
        await asyncio.sleep(0.2)
        assert model.calls == 0
        await visitor.disconnect()
        await agent.disconnect()

    async def test_takeover_cancels_the_reply_in_flight_and_keeps_it_incomplete(
        self, charlie: User, acme_bot: Bot, model: ScriptedModel
    ) -> None:
        model.gate, model.reached, model.hold_at = asyncio.Event(), asyncio.Event(), 2
        visitor, _ = await open_visitor(acme_bot)
        await visitor.send_json_to({"type": "message.send", "client_id": "v1", "text": "Hello"})
        await asyncio.wait_for(model.reached.wait(), 5)
        conversation = await Conversation.objects.aget(visitor__bot=acme_bot)
        await asyncio.sleep(replies.FLUSH_EVERY_SECONDS * 3)  # the partial text is out
        await database_sync_to_async(takeover.take_over)(conversation, charlie)
        await actions.wait_for_replies()
        reply = await Message.objects.aget(conversation=conversation, role=Role.ASSISTANT)
        assert reply.status == MessageStatus.INCOMPLETE
        assert reply.text == "Hello from"
        await visitor.disconnect()

    async def test_a_reply_in_another_process_stops_at_its_next_save(
        self, charlie: User, acme_bot: Bot, model: ScriptedModel, monkeypatch: Any
    ) -> None:
        # The reply's task is not in this process's registry (as when the takeover arrives
        # at another ASGI process): only the status check at the periodic save can stop it.
        monkeypatch.setattr(takeover, "cancel_reply", lambda conversation_id: False)
        monkeypatch.setattr(replies, "PERSIST_EVERY_SECONDS", 0.1)
        model.gate, model.reached, model.hold_at = asyncio.Event(), asyncio.Event(), 2
        visitor, _ = await open_visitor(acme_bot)
        await visitor.send_json_to({"type": "message.send", "client_id": "v1", "text": "Hello"})
        await asyncio.wait_for(model.reached.wait(), 5)
        conversation = await Conversation.objects.aget(visitor__bot=acme_bot)
        await database_sync_to_async(takeover.take_over)(conversation, charlie)
        await asyncio.wait_for(actions.wait_for_replies(), 5)
        reply = await Message.objects.aget(conversation=conversation, role=Role.ASSISTANT)
        assert reply.status == MessageStatus.INCOMPLETE
        assert reply.error_code == "cancelled"
        assert reply.error_message == "A person took over the conversation."
        assert model.gate is not None and not model.gate.is_set()  # it never got further
        await visitor.disconnect()


async def test_bad_frames_get_error_frames(alice: User) -> None:
    comm = await open_agent(alice)
    for bad in ("not json", "[]", '{"type": 3}', '{"type": "nope"}', "x" * 5000):
        await comm.send_to(text_data=bad)
        assert (await receive(comm))["type"] == "error"
    await comm.send_json_to({"type": "typing"})
    assert (await receive(comm))["code"] == "not_subscribed"
    await comm.disconnect()


async def test_the_widget_records_the_site_and_browser_for_agents(acme_bot: Bot) -> None:
    token, visitor = await database_sync_to_async(session_token)(acme_bot)
    comm = connect(acme_bot)
    comm.scope["headers"].append((b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/131.0"))
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "hello", "token": token})
    assert (await receive(comm))["type"] == "ready"
    await visitor.arefresh_from_db()
    assert visitor.page_url == "https://shop.acme.test"
    assert "Firefox/131.0" in visitor.user_agent
    await comm.disconnect()
