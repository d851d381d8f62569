"""Tools test helpers: a bot routed to a fixture model server, the shop's order endpoint.

The model servers speak the real wire formats over loopback sockets (tests/llm/wire.py);
they stand in for llama.cpp where a test must choose exactly which tool call the model makes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chatbot.bots.models import Bot
from chatbot.conversations import replies
from chatbot.llm.service import Route
from chatbot.tenants.models import Tenant
from chatbot.tools.endpoint import store_headers
from chatbot.tools.models import Action, ActionKind
from tests.llm.conftest import make_spec
from tests.llm.wire import Reply, Request, openai_chunk, sse

SHOP = "https://shop.acme.test"
SECRET = "sk_live_very_secret_value"


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(
        tenant=acme, name="Acme help", system_prompt="You help Acme.", allowed_origins=[SHOP]
    )


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.OUTBOUND_ALLOW_CIDRS = ["127.0.0.0/8"]


def route_to(monkeypatch: pytest.MonkeyPatch, url: str, kind: str = "openai") -> None:
    spec = make_spec(url, kind)
    monkeypatch.setattr(replies, "_route", lambda bot: Route((spec,), False))


def make_action(
    tenant: Tenant, bot: Bot, url: str = "", *, kind: str = ActionKind.HTTP, **fields: Any
) -> Action:
    values: dict[str, Any] = {
        "name": "find_order",
        "title": "Looking up your order",
        "description": "Find an order by its number.",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string", "description": "Order number"}},
            "required": ["order_id"],
        },
        "url": url,
        "method": "GET",
    }
    values.update(fields)
    action = Action(tenant=tenant, kind=kind, **values)
    store_headers(action, {"Authorization": f"Bearer {SECRET}"})
    action.save()
    action.bots.add(bot)
    return action


def tool_call_chunk(index: int, *, call_id: str = "", name: str = "", arguments: str = "") -> str:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id:
        call["id"] = call_id
        call["type"] = "function"
    if name:
        call["function"]["name"] = name
    return sse(
        {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}],
        }
    )


Turn = Callable[[Request, Reply], Any]


def openai_turns(*turns: list[str]) -> tuple[Callable[[Request, Reply], Any], list[Request]]:
    """A model server answering its n-th request with the n-th list of SSE pieces."""
    seen: list[Request] = []

    async def scenario(request: Request, reply: Reply) -> None:
        seen.append(request)
        pieces = turns[min(len(seen), len(turns)) - 1]
        await reply.start(200, "text/event-stream")
        for piece in pieces:
            await reply.send(piece)
        await reply.send("data: [DONE]\n\n")
        await reply.end()

    return scenario, seen


def calls_turn(*calls: tuple[str, str, str]) -> list[str]:
    """One model turn asking for `calls` (id, name, arguments), each sent whole."""
    pieces = [
        tool_call_chunk(i, call_id=call_id, name=name, arguments=arguments)
        for i, (call_id, name, arguments) in enumerate(calls)
    ]
    return [*pieces, openai_chunk(finish="tool_calls")]


def text_turn(text: str) -> list[str]:
    return [openai_chunk(text), openai_chunk(finish="stop")]


def messages_of(request: Request) -> list[dict[str, Any]]:
    return list(request.json()["messages"])


def tool_messages(request: Request) -> list[dict[str, Any]]:
    return [m for m in messages_of(request) if m["role"] == "tool"]


def json_endpoint(body: Any, status: int = 200) -> tuple[Callable[..., Any], list[Request]]:
    seen: list[Request] = []

    async def scenario(request: Request, reply: Reply) -> None:
        seen.append(request)
        data = body(request) if callable(body) else body
        await reply.whole(status, json.dumps(data).encode())

    return scenario, seen
