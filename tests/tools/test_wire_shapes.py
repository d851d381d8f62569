"""Each adapter's tool-call shapes on the wire: what is sent back, what is parsed out."""

from __future__ import annotations

import json

from chatbot.llm.adapters import adapter_for
from chatbot.llm.adapters.bedrock import build_body as bedrock_body
from chatbot.llm.adapters.ollama import build_body as ollama_body
from chatbot.llm.adapters.openai import build_body as openai_body
from chatbot.llm.routing import client_for
from chatbot.llm.types import (
    ChatMessage,
    ChatRequest,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
)
from tests.llm.conftest import collect, in_loop, make_spec
from tests.llm.wire import Reply, Request, WireServer, bedrock_event, ndjson, ollama_done

FIND = ToolSpec("find_order", "Find an order", {"type": "object", "properties": {}})
CALL = ToolCall("call_1", "find_order", '{"order_id": "A17"}')
HISTORY = (
    ChatMessage.text("user", "Where is A17?"),
    ChatMessage("assistant", (), tool_calls=(CALL,)),
    ChatMessage(
        "tool", (TextPart('{"result": "shipped"}'),), tool_call_id="call_1", tool_name="find_order"
    ),
)
REQUEST = ChatRequest(messages=HISTORY, tools=(FIND,))


def test_openai_sends_the_call_and_its_result() -> None:
    body = openai_body(make_spec("http://x"), REQUEST)
    assert body["tools"][0]["function"]["name"] == "find_order"
    assistant, tool = body["messages"][1], body["messages"][2]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "find_order", "arguments": '{"order_id": "A17"}'},
            }
        ],
    }
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": '{"result": "shipped"}'}


def test_ollama_sends_arguments_as_an_object_and_names_the_tool() -> None:
    body = ollama_body(make_spec("http://x", "ollama"), REQUEST)
    assert body["tools"][0]["function"]["name"] == "find_order"
    assert body["messages"][1]["tool_calls"] == [
        {"function": {"name": "find_order", "arguments": {"order_id": "A17"}}}
    ]
    assert body["messages"][2]["tool_name"] == "find_order"


def test_bedrock_sends_tool_use_and_tool_result_blocks() -> None:
    body = bedrock_body(REQUEST)
    assert body["toolConfig"]["tools"][0]["toolSpec"]["name"] == "find_order"
    assert body["messages"][1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "find_order", "input": {"order_id": "A17"}}}
        ],
    }
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "call_1", "content": [{"text": '{"result": "shipped"}'}]}}
        ],
    }


@in_loop
async def test_ollama_parallel_calls_over_several_lines_get_distinct_indexes() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/x-ndjson")
        for name in ("find_order", "find_order"):
            call = {"function": {"name": name, "arguments": {"order_id": name[-1]}}}
            line = {"message": {"role": "assistant", "content": "", "tool_calls": [call]}}
            await reply.send(ndjson({**line, "done": False}))
        await reply.send(ollama_done())
        await reply.end()

    async with WireServer(scenario) as server:
        spec = make_spec(server.url, "ollama")
        events = await collect(adapter_for("ollama").stream(client_for(spec), spec, REQUEST))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [d.index for d in deltas] == [0, 1]
    assert json.loads(deltas[0].arguments_json) == {"order_id": "r"}
    assert events[-1].reason == "tool"  # type: ignore[union-attr]


@in_loop
async def test_bedrock_streams_tool_use_input_in_fragments() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/vnd.amazon.eventstream")
        start = {"toolUse": {"toolUseId": "tu1", "name": "find_order"}}
        await reply.send(
            bedrock_event("contentBlockStart", {"contentBlockIndex": 1, "start": start})
        )
        for piece in ('{"order', '_id": "A17"}'):
            delta = {"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}
            await reply.send(bedrock_event("contentBlockDelta", delta))
        await reply.send(bedrock_event("messageStop", {"stopReason": "tool_use"}))
        await reply.end()

    async with WireServer(scenario) as server:
        spec = make_spec(server.url, "bedrock", auth="bearer", api_key="k", region="us-east-1")
        events = await collect(adapter_for("bedrock").stream(client_for(spec), spec, REQUEST))
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert {(d.call_id, d.name, d.index) for d in deltas} == {("tu1", "find_order", 1)}
    assert "".join(d.arguments_json for d in deltas) == '{"order_id": "A17"}'
    assert events[-1].reason == "tool"  # type: ignore[union-attr]


def test_bedrock_without_tools_carries_past_calls_as_text() -> None:
    body = bedrock_body(ChatRequest(messages=HISTORY))
    assert "toolConfig" not in body
    assert body["messages"][1]["content"] == [
        {"text": '[called find_order with {"order_id": "A17"}]'}
    ]
    assert body["messages"][2]["content"] == [
        {"text": '[result of find_order: {"result": "shipped"}]'}
    ]
