"""Two ASGI processes sharing Redis and PostgreSQL: the visitor on one, the agent on the other.

Everything crosses processes: the inbox notification, typing both ways, messages both ways,
the takeover (an HTTP request to the agent's process) and the cancellation of a reply that
streams in the visitor's process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from django.test import Client
from django.utils.crypto import get_random_string
from websockets.sync.client import ClientConnection, connect

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Conversation, Message, MessageStatus, Role, Status
from chatbot.tenants.models import Tenant, User
from tests.fixtures.servers import free_port
from tests.inbox.processes import child_env, process, wait_until_up
from tests.llm.wire import Reply, Request, WireServer, openai_chunk
from widget.tokens import issue_session_token

pytestmark = [pytest.mark.redis, pytest.mark.postgres]

SHOP = "https://shop.acme.test"


class EndlessModel:
    """An OpenAI-compatible server that streams a word every 20 ms until the client leaves."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server: WireServer | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def scenario(self, request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        for _ in range(5000):
            await reply.send(openai_chunk("word "))
            await asyncio.sleep(0.02)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def main() -> None:
            async with WireServer(self.scenario) as server:
                self.server = server
                self.ready.set()
                while True:
                    await asyncio.sleep(3600)

        # The loop is stopped at the end of the test ("stopped before Future completed").
        with contextlib.suppress(RuntimeError):
            self.loop.run_until_complete(main())

    def start(self) -> str:
        self.thread.start()
        self.ready.wait(10)
        assert self.server is not None
        return self.server.url

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def endless_model() -> Iterator[EndlessModel]:
    model = EndlessModel()
    model.start()
    yield model
    model.stop()


def route_to(bot: Bot, url: str) -> None:
    from chatbot.llm import models as llm_models
    from chatbot.llm import service

    endpoint = llm_models.ModelEndpoint(
        tenant=None,
        name="endless",
        kind="openai",
        base_url=f"{url}/v1",
        model="endless",
        source=llm_models.Source.ADMIN,
        auth="none",
    )
    endpoint.save()
    service.set_bot_route(bot, [endpoint.pk])


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client.cookies["sessionid"].value


def receive_until(
    ws: ClientConnection, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if predicate(frame):
            return frame


def test_an_agent_and_a_visitor_on_two_processes(
    live_db: None, acme: Tenant, alice: User, endless_model: EndlessModel
) -> None:
    bot = Bot.objects.create(tenant=acme, name="Acme help", allowed_origins=[SHOP])
    assert endless_model.server is not None
    route_to(bot, endless_model.server.url)
    visitor = actions.open_visitor(bot)
    token, _ = issue_session_token(bot, visitor.public_id, SHOP)
    cookie = session_cookie(alice)
    csrf = get_random_string(32)

    ports = free_port(), free_port()
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    serve = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port"]
    env = child_env(LLM_AUTODETECT="0")
    with (
        process([*serve, str(ports[0])], env) as (a, _),
        process([*serve, str(ports[1])], env) as (b, _),
    ):
        wait_until_up(urls[0], a)
        wait_until_up(urls[1], b)
        agent_http = httpx.Client(
            base_url=urls[1],
            cookies={"sessionid": cookie, "csrftoken": csrf},
            headers={"X-CSRFToken": csrf, "Origin": urls[1]},
        )

        def post(conversation: str, action: str, **data: str) -> None:
            response = agent_http.post(f"/conversations/{conversation}/{action}/", data=data)
            assert response.status_code == 302, response.text[:500]

        # The agent is on process B, the visitor on process A.
        agent_url = f"ws://127.0.0.1:{ports[1]}/ws/dashboard/"
        visitor_url = f"ws://127.0.0.1:{ports[0]}/ws/widget/{bot.public_key}"
        with (
            connect(
                agent_url,
                origin=urls[1],  # type: ignore[arg-type]
                additional_headers={"Cookie": f"sessionid={cookie}"},
            ) as agent,
            connect(visitor_url, origin=SHOP) as visitor_ws,  # type: ignore[arg-type]
        ):
            _conversation_flow(agent, visitor_ws, token, post, endless_model)
        agent_http.close()


def _conversation_flow(
    agent: ClientConnection,
    visitor_ws: ClientConnection,
    token: str,
    post: Callable[..., None],
    endless_model: EndlessModel,
) -> None:
    assert endless_model.server is not None
    agent.send(json.dumps({"type": "subscribe.inbox"}))
    receive_until(agent, lambda f: f["type"] == "subscribed")
    visitor_ws.send(json.dumps({"type": "hello", "token": token}))
    receive_until(visitor_ws, lambda f: f["type"] == "ready")

    # Visitor (A) asks for a person → the agent's inbox (B) hears it.
    visitor_ws.send(
        json.dumps({"type": "message.send", "client_id": "v1", "text": "Talk to a person"})
    )
    waiting = receive_until(agent, lambda f: f["type"] == "inbox.waiting")
    conversation_id = waiting["id"]
    agent.send(json.dumps({"type": "subscribe.conversation", "conversation": conversation_id}))
    receive_until(agent, lambda f: f["type"] == "subscribed")

    # Typing, both ways.
    visitor_ws.send(json.dumps({"type": "typing"}))
    assert receive_until(agent, lambda f: f["type"] == "typing")["who"] == "visitor"

    post(conversation_id, "takeover")
    joined = receive_until(
        visitor_ws, lambda f: f["type"] == "message" and f["message"]["text"] == "agent.joined"
    )
    assert joined["message"]["author"] == "Alice"
    agent.send(json.dumps({"type": "typing"}))
    assert receive_until(visitor_ws, lambda f: f["type"] == "typing")["who"] == "agent"

    # Messages, both ways.
    post(conversation_id, "reply", text="Hello, Alice here.")
    said = receive_until(
        visitor_ws, lambda f: f["type"] == "message" and f["message"]["role"] == "agent"
    )
    assert said["message"]["text"] == "Hello, Alice here."
    visitor_ws.send(json.dumps({"type": "message.send", "client_id": "v2", "text": "Hi!"}))
    heard = receive_until(agent, lambda f: f["type"] == "message" and f["message"]["text"] == "Hi!")
    assert heard["message"]["role"] == "visitor"

    # Hand back: the bot's reply streams in A (the agent in B sees its deltas), then the
    # agent takes over from B and A's reply stops, kept as incomplete.
    post(conversation_id, "handback")
    visitor_ws.send(json.dumps({"type": "message.send", "client_id": "v3", "text": "Tell me more"}))
    receive_until(agent, lambda f: f["type"] == "delta")
    post(conversation_id, "takeover")
    conversation = Conversation.objects.get(public_id=conversation_id)
    deadline = time.monotonic() + 15
    reply = None
    while time.monotonic() < deadline:
        reply = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).first()
        if reply is not None and reply.status != MessageStatus.STREAMING:
            break
        time.sleep(0.1)
    assert reply is not None and reply.status == MessageStatus.INCOMPLETE, reply
    assert reply.error_code == "cancelled"
    assert reply.text.startswith("word word")
    assert endless_model.server.disconnected.is_set()  # the upstream request ended too
    conversation.refresh_from_db()
    assert conversation.status == Status.AGENT
