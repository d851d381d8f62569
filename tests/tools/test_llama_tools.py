"""The tool loop against a real llama.cpp server (`--jinja`) running the generated tool model.

The model (tests/llama/tiny_model.py) carries Qwen 2.5's chat template; llama-server analyses
it and parses the model's `<tool_call>{"name": .., "arguments": ..}</tool_call>` into streamed
OpenAI `tool_calls`. Its first reply calls find_order for A17; once a tool result is in the
prompt, it answers with TOOL_ANSWER.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async

from chatbot.bots.models import Bot
from chatbot.llm import service
from chatbot.llm.models import ModelEndpoint
from chatbot.tools.models import CallStatus
from tests.fixtures.llama import LlamaServer
from tests.llama.tiny_model import (
    CONTEXT,
    TOOL_ANSWER,
    TOOL_ARGUMENTS,
    TOOL_CALL_OPEN,
    TOOL_NAME,
    TOOL_RESPONSE_CLOSE,
    TOOL_RESPONSE_OPEN,
)
from tests.llm.wire import Request, WireServer

from .conftest import SECRET, json_endpoint, make_action
from .test_loop import actions_in, ask, calls, final_text, open_chat

pytestmark = [pytest.mark.llama, pytest.mark.django_db(transaction=True)]


def route_bot_to(bot: Bot, server: LlamaServer) -> None:
    """The bot's own model endpoint: the llama-server, as a tenant would add it."""
    endpoint = ModelEndpoint(
        tenant=bot.tenant,
        name="tiny-tools",
        kind="openai",
        base_url=f"{server.url}/v1",
        model=server.model,
        auth="bearer",
        context_window=CONTEXT,
        chars_per_token=1.0,  # the tiny model spends about a token per character
    )
    endpoint.set_secret(server.key)
    endpoint.save()
    service.set_bot_route(bot, [endpoint.pk])


async def last_prompt(server: LlamaServer) -> str:
    """The prompt of the server's last request, as its chat template rendered it."""
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(
            f"{server.url}/slots", headers={"Authorization": f"Bearer {server.key}"}
        )
    answer.raise_for_status()
    [slot] = answer.json()
    return str(slot["prompt"])


async def test_the_models_tool_call_runs_the_action_and_its_answer_follows_the_result(
    acme_bot: Bot, loopback_allowed: None, llama_tool_server: LlamaServer
) -> None:
    def order(request: Request) -> dict[str, Any]:
        return {"order": request.path, "status": "shipped", "carrier": "Parcelo"}

    endpoint, hits = json_endpoint(order)
    async with WireServer(endpoint) as shop:
        await database_sync_to_async(make_action)(
            acme_bot.tenant, acme_bot, shop.url + "/orders/{order_id}", name=TOOL_NAME
        )
        await database_sync_to_async(route_bot_to)(acme_bot, llama_tool_server)
        comm = await open_chat(acme_bot)
        frames = await ask(comm, "Where is my order A17?")
        await comm.disconnect()

    # The model's call reached the endpoint with its arguments, once, with the action's secret.
    assert [hit.path for hit in hits] == [f"/orders/{TOOL_ARGUMENTS['order_id']}"]
    assert hits[0].headers["authorization"] == f"Bearer {SECRET}"
    # It is recorded under the id llama-server gave the call (Parley names a call that comes
    # without one call_<step>_<index>).
    [call] = await calls()
    assert call.name == TOOL_NAME and call.arguments == TOOL_ARGUMENTS
    assert call.status == CallStatus.DONE
    assert call.call_id and not re.fullmatch(r"call_\d+_\d+", call.call_id)
    assert call.result is not None and "Parcelo" in json.dumps(call.result)
    assert [a["status"] for a in actions_in(frames)][-1] == "done"
    # The result went back to the model: the server's own rendering of the second prompt
    # holds the call and the endpoint's answer, and the secret nowhere.
    prompt = await last_prompt(llama_tool_server)
    assert f'{TOOL_CALL_OPEN}\n{{"name": "{TOOL_NAME}", "arguments": ' in prompt
    result = prompt.split(TOOL_RESPONSE_OPEN, 1)[1].split(TOOL_RESPONSE_CLOSE, 1)[0]
    assert "Parcelo" in result and "/orders/A17" in result
    assert SECRET not in prompt
    # The visitor sees the model's second planted reply, streamed.
    assert final_text(frames) == TOOL_ANSWER
    assert SECRET not in json.dumps(frames)
