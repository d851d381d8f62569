"""Against a real llama.cpp server running the generated tiny model (see tests/llama/)."""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from chatbot.llm import routing
from chatbot.llm.prompt import build_request
from chatbot.llm.routing import stream_route
from chatbot.llm.types import ChatMessage, ChatRequest, ImagePart, Routed, TextDelta, TextPart
from tests.fixtures.llama import LlamaServer
from tests.llama.tiny_model import REPLY, eot_token_id

from .conftest import collect, finish_of, hello_request, in_loop, make_spec, text_of, usage_of

pytestmark = pytest.mark.llama


def llama_spec(server: LlamaServer, **kw: Any):  # type: ignore[no-untyped-def]
    values: dict[str, Any] = {
        "auth": "bearer",
        "api_key": server.key,
        "model": server.model,
        "context_window": server.context,
        "chars_per_token": 1.0,  # the tiny model spends a token per character
        "images": True,
    }
    values.update(kw)
    return make_spec(server.url, **values)


def route(spec, request):  # type: ignore[no-untyped-def]
    return stream_route([spec], lambda _spec: request)


def png(size: int = 28) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@in_loop
async def test_it_streams_the_exact_reply_with_usage(llama_server: LlamaServer) -> None:
    spec = llama_spec(llama_server)
    events = await collect(route(spec, hello_request()))
    assert events[0] == Routed(endpoint=spec.name, model=llama_server.model)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert "".join(deltas) == REPLY and len(deltas) > 1  # streamed in pieces, not at once
    assert finish_of(events).reason == "stop"
    usage = usage_of(events)
    # llama-server counts the end-of-turn token in completion_tokens: 6 pieces + 1.
    assert usage.completion_tokens == 7
    assert usage.prompt_tokens > len("Hi there")
    assert usage.ttft_ms is not None and usage.duration_ms is not None
    assert usage.duration_ms >= usage.ttft_ms


@in_loop
async def test_max_tokens_gives_length(llama_server: LlamaServer) -> None:
    events = await collect(route(llama_spec(llama_server), hello_request(max_tokens=3)))
    assert text_of(events) == "Hello from a"
    assert finish_of(events).reason == "length"
    assert usage_of(events).completion_tokens == 3


@in_loop
async def test_a_stop_sequence_gives_stop(llama_server: LlamaServer) -> None:
    events = await collect(route(llama_spec(llama_server), hello_request(stop=(" tiny",))))
    assert text_of(events) == "Hello from a"
    assert finish_of(events).reason == "stop"


@in_loop
async def test_a_bad_key_is_a_clear_auth_error(llama_server: LlamaServer) -> None:
    spec = llama_spec(llama_server, api_key="sk-wrong")
    events = await collect(route(spec, hello_request()))
    error = finish_of(events).error
    assert error is not None and error.code == "auth" and error.status == 401
    assert "check the API key" in error.message and "Invalid API Key" in error.message
    assert not any(isinstance(e, TextDelta) for e in events)


@in_loop
async def test_context_overflow_is_named(llama_server: LlamaServer) -> None:
    # The endpoint believes tokens are long, so our budget lets a too-long prompt through and
    # the server itself refuses it.
    spec = llama_spec(llama_server, chars_per_token=50.0)
    long = ChatMessage.text("user", "word " * (llama_server.context // 4))
    events = await collect(route(spec, ChatRequest(messages=(long,))))
    error = finish_of(events).error
    assert error is not None and error.code == "context" and error.status == 400
    assert "does not fit the context window" in error.message
    # Not the endpoint's fault: the breaker stays closed.
    assert routing.health_for(spec).breaker.state == "closed"


@in_loop
async def test_prompt_assembly_trims_history_to_fit(llama_server: LlamaServer) -> None:
    # The operator declared a smaller window than the server has; assembly must respect it.
    spec = llama_spec(llama_server, context_window=512)
    history = []
    for turn in range(12):
        history.append(ChatMessage.text("user", f"question {turn} " + "x" * 60))
        history.append(ChatMessage.text("assistant", f"answer {turn} " + "y" * 60))
    history.append(ChatMessage.text("user", "and now?"))
    request = build_request(spec, system="Be kind.", history=history, max_tokens=32)
    assert len(request.messages) < len(history)
    assert request.messages[-1].plain_text == "and now?"
    assert request.messages[0].role == "user"
    events = await collect(route(spec, request))
    assert finish_of(events).reason == "stop" and text_of(events) == REPLY
    assert usage_of(events).prompt_tokens <= 512 - 32


@in_loop
async def test_an_image_part_reaches_the_projector(llama_server: LlamaServer) -> None:
    spec = llama_spec(llama_server)
    plain = await collect(route(spec, hello_request()))
    message = ChatMessage("user", (TextPart("Hi there"), ImagePart(png(), "image/png")))
    events = await collect(route(spec, ChatRequest(messages=(message,))))
    assert text_of(events) == REPLY and finish_of(events).reason == "stop"
    # The image costs prompt tokens: it was encoded, not dropped.
    assert usage_of(events).prompt_tokens > usage_of(plain).prompt_tokens


async def _busy_slots(server: LlamaServer) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{server.url}/slots", headers={"Authorization": f"Bearer {server.key}"}
        )
    return sum(1 for slot in response.json() if slot["is_processing"])


async def _predicted_total(server: LlamaServer) -> int:
    async with httpx.AsyncClient() as client:
        response = await client.get(
            f"{server.url}/metrics", headers={"Authorization": f"Bearer {server.key}"}
        )
    for line in response.text.splitlines():
        if line.startswith("llamacpp:tokens_predicted_total"):
            return int(float(line.split()[-1]))
    raise AssertionError("llama-server exposes no tokens_predicted_total")


@in_loop
async def test_cancelling_mid_stream_stops_generation(llama_server: LlamaServer) -> None:
    spec = llama_spec(llama_server)
    # End of turn banned: the model would fill its whole context window (~8k tokens). How many
    # tokens the server generated for this request tells whether the cancellation reached it.
    request = hello_request(
        max_tokens=llama_server.context, extra={"logit_bias": {str(eot_token_id()): -100}}
    )
    predicted_before = await _predicted_total(llama_server)
    received: list[str] = []

    async def consume() -> None:
        async for event in route(spec, request):
            if isinstance(event, TextDelta):
                received.append(event.text)

    task = asyncio.create_task(consume())
    while len(received) < 10:
        await asyncio.sleep(0.005)
    assert await _busy_slots(llama_server) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    # The server notices the closed connection and frees the slot.
    deadline = time.monotonic() + 10
    while await _busy_slots(llama_server) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await _busy_slots(llama_server) == 0
    assert routing.health_for(spec).in_flight == 0
    generated = await _predicted_total(llama_server) - predicted_before
    assert len(received) <= generated < llama_server.context // 4
