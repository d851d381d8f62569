"""The widget socket against the real model service and a real llama.cpp server."""

from __future__ import annotations

from typing import Any

import pytest
from channels.db import database_sync_to_async

from chatbot.bots.models import Bot
from chatbot.conversations import actions
from chatbot.conversations.models import Message

from .conftest import is_final_reply, receive, receive_until, session_token
from .test_consumer import hello

pytestmark = [pytest.mark.llama, pytest.mark.django_db(transaction=True)]

TINY_REPLY = "Hello from a tiny llama!"


@pytest.fixture
def llama(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("llama_server")


def route_to(bot: Bot, llama: Any) -> None:
    from chatbot.llm import models as llm_models
    from chatbot.llm import service

    endpoint = llm_models.ModelEndpoint(
        tenant=None,
        name="tiny-llama",
        kind="openai",
        base_url=f"{llama.url}/v1",
        model=llama.model,
        source=llm_models.Source.ADMIN,
        auth="bearer",
    )
    endpoint.set_secret(llama.key)
    endpoint.save()
    service.set_bot_route(bot, [endpoint.pk])


async def test_a_visitor_gets_the_real_models_reply_streamed_and_stored(
    acme_bot: Bot, llama: Any
) -> None:
    await database_sync_to_async(route_to)(acme_bot, llama)
    token, _ = await database_sync_to_async(session_token)(acme_bot)
    comm, _ = await hello(acme_bot, token)
    await comm.send_json_to({"type": "message.send", "client_id": "e1", "text": "Hi!"})
    frames = await receive_until(comm, is_final_reply, timeout=30)
    await actions.wait_for_replies()
    final = frames[-1]["message"]
    assert final["status"] == "complete", final
    assert final["text"] == TINY_REPLY
    streamed = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert streamed == TINY_REPLY
    reply = await database_sync_to_async(Message.objects.get)(role="assistant")
    assert reply.text == TINY_REPLY and reply.endpoint == "tiny-llama"
    assert reply.tokens_out and reply.tokens_in and reply.ttft_ms is not None
    await comm.disconnect()

    # "Reload": a new socket with the same token sees the whole history.
    comm, ready = await hello(acme_bot, token)
    assert ready["last_seq"] == 2
    history = [await receive(comm), await receive(comm)]
    assert [m["message"]["text"] for m in history] == ["Hi!", TINY_REPLY]
    await comm.disconnect()


async def test_without_a_reachable_model_the_reply_fails_as_offline(
    acme_bot: Bot, llama: Any
) -> None:
    # No route and no operator endpoint: the service answers offline, the message is kept.
    token, _ = await database_sync_to_async(session_token)(acme_bot)
    comm, _ = await hello(acme_bot, token)
    await comm.send_json_to({"type": "message.send", "client_id": "e1", "text": "Anyone?"})
    frames = await receive_until(comm, is_final_reply, timeout=30)
    await actions.wait_for_replies()
    final = frames[-1]["message"]
    assert final["status"] == "failed" and final["error"]["code"] == "offline"
    assert await database_sync_to_async(Message.objects.filter(role="visitor").count)() == 1
    await comm.disconnect()
