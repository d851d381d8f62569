"""Widget test helpers: a bot on Acme's shop, session tokens, a scripted model stream.

The scripted stream stands in for the model only where a real llama.cpp server cannot show
the behaviour on demand (a reply held mid-stream, a failure after some text); end-to-end
tests use the real `stream_reply` with the llama server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator

from chatbot.bots.models import Bot
from chatbot.conversations import actions, replies
from chatbot.conversations.models import Visitor
from chatbot.llm.types import ChatMessage, Event, Finish, Routed, StreamError, TextDelta, Usage
from chatbot.routing import websocket_urlpatterns
from chatbot.tenants.models import Tenant
from widget.tokens import issue_session_token

SHOP = "https://shop.acme.test"


@pytest.fixture
def acme_bot(acme: Tenant) -> Bot:
    return Bot.objects.create(
        tenant=acme,
        name="Acme help",
        system_prompt="You help Acme's customers.",
        greeting="Hi!",
        allowed_origins=[SHOP],
    )


@pytest.fixture
def bravo_bot(bravo: Tenant) -> Bot:
    return Bot.objects.create(
        tenant=bravo, name="Bravo help", allowed_origins=["https://bravo.test"]
    )


def session_token(
    bot: Bot, visitor: Visitor | None = None, origin: str = SHOP
) -> tuple[str, Visitor]:
    visitor = visitor or actions.open_visitor(bot)
    token, _ = issue_session_token(bot, visitor.public_id, origin)
    return token, visitor


def connect(bot: Bot, origin: str | None = SHOP) -> WebsocketCommunicator:
    headers = [(b"origin", origin.encode())] if origin is not None else []
    return WebsocketCommunicator(
        URLRouter(websocket_urlpatterns), f"/ws/widget/{bot.public_key}", headers=headers
    )


async def receive(comm: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    return json.loads(await comm.receive_from(timeout=timeout))


async def receive_until(
    comm: WebsocketCommunicator, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5
) -> list[dict[str, Any]]:
    """Every frame up to and including the first that matches."""
    seen: list[dict[str, Any]] = []
    while True:
        frame = await receive(comm, timeout)
        seen.append(frame)
        if predicate(frame):
            return seen


def is_final_reply(frame: dict[str, Any]) -> bool:
    return (
        frame.get("type") == "message"
        and frame["message"]["role"] == "assistant"
        and frame["message"]["status"] != "streaming"
    )


@dataclass
class ScriptedModel:
    """Yields `chunks`; waits on `gate` (if set) before chunk number `hold_at`."""

    chunks: list[str] = field(default_factory=lambda: ["Hello", " from", " Acme", "!"])
    fail_with: StreamError | None = None
    hold_at: int | None = None
    gate: asyncio.Event | None = None
    reached: asyncio.Event | None = None
    histories: list[Sequence[ChatMessage]] = field(default_factory=list)
    calls: int = 0

    async def __call__(
        self,
        bot: Bot,
        history: Sequence[ChatMessage],
        *,
        knowledge: Sequence[Any] = (),
        route: Any = None,
    ) -> AsyncIterator[Event]:
        self.calls += 1
        self.histories.append(list(history))
        yield Routed(endpoint="scripted", model="tiny")
        for index, chunk in enumerate(self.chunks):
            if index == self.hold_at and self.gate is not None:
                if self.reached is not None:
                    self.reached.set()
                await self.gate.wait()
            yield TextDelta(chunk)
        if self.fail_with is not None:
            yield Finish("error", self.fail_with)
            return
        yield Usage(prompt_tokens=12, completion_tokens=len(self.chunks))
        yield Finish("stop")


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedModel]:
    scripted = ScriptedModel()
    monkeypatch.setattr(replies, "stream_reply", scripted)
    yield scripted
