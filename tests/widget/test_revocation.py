"""Revocation reaches open widget sockets within a second, with the protocol's close codes.

The owner's actions (disable the bot, rotate its identity secret or public key, remove an
allowed origin, delete the bot, suspend the workspace) and the token's expiry close sockets
that are already talking, without waiting for the visitor's next frame
(docs/widget-protocol.md, close codes). The SSE fallback stream ends the same way.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient

from chatbot.billing import actions as billing_actions
from chatbot.bots import actions as bot_actions
from chatbot.bots.models import Bot
from widget.consumers import Close
from widget.tokens import _session_key

from .conftest import SHOP, connect, receive, session_token

pytestmark = pytest.mark.django_db(transaction=True)

WITHIN = 1.0  # seconds: the promise


async def open_socket(bot: Bot, token: str | None = None) -> WebsocketCommunicator:
    if token is None:
        token, _ = await database_sync_to_async(session_token)(bot)
    comm = connect(bot)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "hello", "token": token})
    assert (await receive(comm))["type"] == "ready"
    return comm


async def expect_close(comm: WebsocketCommunicator, code: int, timeout: float = WITHIN) -> None:
    output = await comm.receive_output(timeout=timeout)
    assert output["type"] == "websocket.close", output
    assert output["code"] == code


def _fresh(bot: Bot) -> Bot:
    return Bot.objects.select_related("tenant").get(pk=bot.pk)


async def owner_does(action: object, bot: Bot, *args: object, **kwargs: object) -> None:
    fresh = await database_sync_to_async(_fresh)(bot)
    await database_sync_to_async(action)(fresh, *args, **kwargs)  # type: ignore[operator]


class TestWidgetRevocation:
    async def test_disabling_the_bot_closes_with_4004(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(bot_actions.update_bot, acme_bot, None, enabled=False)
        await expect_close(comm, Close.BOT_DISABLED)

    async def test_rotating_the_identity_secret_closes_with_4001(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(bot_actions.rotate_identity_secret, acme_bot, None)
        await expect_close(comm, Close.BAD_TOKEN)

    async def test_rotating_the_public_key_closes_with_4001(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(bot_actions.rotate_public_key, acme_bot, None)
        await expect_close(comm, Close.BAD_TOKEN)

    async def test_removing_the_origin_closes_with_4003(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(
            bot_actions.update_bot, acme_bot, None, allowed_origins=["https://other.acme.test"]
        )
        await expect_close(comm, Close.ORIGIN_NOT_ALLOWED)

    async def test_deleting_the_bot_closes_with_4004(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(bot_actions.delete_bot, acme_bot, None)
        await expect_close(comm, Close.BOT_DISABLED)

    async def test_suspending_the_workspace_closes_with_4004(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await database_sync_to_async(billing_actions.suspend)(acme_bot.tenant, None, "unpaid")
        await expect_close(comm, Close.BOT_DISABLED)

    async def test_an_expiring_token_closes_with_4002_though_the_client_is_silent(
        self, acme_bot: Bot
    ) -> None:
        _, visitor = await database_sync_to_async(session_token)(acme_bot)
        now = int(time.time())
        claims = {
            "typ": "visitor",
            "bot": acme_bot.public_key,
            "vid": visitor.public_id,
            "aud": SHOP,
            "gen": acme_bot.session_generation,
            "iat": now,
            "exp": now + 2,
        }
        comm = await open_socket(acme_bot, jwt.encode(claims, _session_key(), "HS256"))
        # Nothing is sent: the server's own timer closes it (at most ~2 s from now).
        await expect_close(comm, Close.TOKEN_EXPIRED, timeout=2 + WITHIN + 1)

    async def test_a_harmless_change_leaves_the_socket_open(self, acme_bot: Bot) -> None:
        comm = await open_socket(acme_bot)
        await owner_does(bot_actions.update_bot, acme_bot, None, name="Acme helper")
        await owner_does(
            bot_actions.update_bot, acme_bot, None, allowed_origins=[SHOP, "https://b.acme.test"]
        )
        assert await comm.receive_nothing(timeout=0.3)
        await comm.send_json_to({"type": "ping"})
        assert await receive(comm) == {"type": "pong"}
        await comm.disconnect()

    async def test_the_sse_stream_ends_when_the_bot_is_disabled(self, acme_bot: Bot) -> None:
        token, _ = await database_sync_to_async(session_token)(acme_bot)
        client = AsyncClient()
        response = await client.get(
            "/widget/api/events",
            headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
        )
        assert response.status_code == 200
        chunks = aiter(response.streaming_content)
        first = (await anext(chunks)).decode()
        assert first.startswith("event: ready")
        await owner_does(bot_actions.update_bot, acme_bot, None, enabled=False)
        last = (await _next_within(chunks, WITHIN)).decode()
        assert last.startswith("event: error")
        data = json.loads(last.split("data: ", 1)[1])
        assert data["code"] == "bot_disabled"
        with pytest.raises(StopAsyncIteration):
            await _next_within(chunks, WITHIN)


async def _next_within(chunks: object, seconds: float) -> bytes:
    import asyncio

    return await asyncio.wait_for(anext(chunks), seconds)  # type: ignore[call-overload]
