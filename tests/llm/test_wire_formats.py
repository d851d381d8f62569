"""Each adapter against a fixture server speaking its engine's exact wire format."""

from __future__ import annotations

import base64
import json

from chatbot.llm.routing import stream_route
from chatbot.llm.types import (
    ChatMessage,
    ChatRequest,
    ImagePart,
    Routed,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolSpec,
)

from .conftest import collect, finish_of, hello_request, in_loop, make_spec, text_of, usage_of
from .wire import (
    Reply,
    Request,
    WireServer,
    bedrock_event,
    bedrock_exception,
    ollama_done,
    ollama_line,
    openai_chunk,
    sse,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


async def route_one(spec, request=None):  # type: ignore[no-untyped-def]
    request = request or hello_request()
    return await collect(stream_route([spec], lambda _spec: request))


# --- Ollama ----------------------------------------------------------------------------------


async def ollama_hello(request: Request, reply: Reply) -> None:
    await reply.start(200, "application/x-ndjson")
    for piece in ("Hello", " from", " Ollama"):
        await reply.send(ollama_line(piece))
    await reply.send(ollama_done("stop", prompt=21, completion=3))
    await reply.end()


@in_loop
async def test_ollama_streams_ndjson_with_usage_and_finish() -> None:
    async with WireServer(ollama_hello) as server:
        spec = make_spec(server.url, kind="ollama", images=True, context_window=2048)
        request = ChatRequest(
            messages=(ChatMessage("user", (TextPart("What is this?"), ImagePart(PNG))),),
            system="You are terse.",
            temperature=0.2,
            max_tokens=50,
            stop=("\n\n",),
        )
        events = await route_one(spec, request)
    assert events[0] == Routed(endpoint=spec.name, model="llama3.2")
    assert text_of(events) == "Hello from Ollama"
    usage = usage_of(events)
    assert (usage.prompt_tokens, usage.completion_tokens) == (21, 3)
    assert usage.endpoint == spec.name and usage.ttft_ms is not None
    assert finish_of(events).reason == "stop"
    sent = server.requests[0]
    assert sent.path == "/api/chat"
    body = sent.json()
    assert body["messages"][0] == {"role": "system", "content": "You are terse."}
    assert body["messages"][1]["images"] == [base64.b64encode(PNG).decode()]
    assert body["options"] == {
        "num_ctx": 2048,
        "temperature": 0.2,
        "num_predict": 50,
        "stop": ["\n\n"],
    }


@in_loop
async def test_ollama_length_finish() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/x-ndjson")
        await reply.send(ollama_line("Hel"))
        await reply.send(ollama_done("length", completion=1))
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url, kind="ollama"))
    assert finish_of(events).reason == "length"


@in_loop
async def test_ollama_mid_stream_error_line_ends_the_reply_with_its_message() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/x-ndjson")
        await reply.send(ollama_line("Hello"))
        await reply.send(json.dumps({"error": "llama runner process has terminated"}) + "\n")
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url, kind="ollama"))
    assert text_of(events) == "Hello"
    finish = finish_of(events)
    assert finish.reason == "error" and finish.error is not None
    assert finish.error.code == "upstream"
    assert "llama runner process has terminated" in finish.error.message


@in_loop
async def test_ollama_unknown_model_is_named() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.whole(404, {"error": 'model "llama9" not found, try pulling it first'})

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url, kind="ollama", model="llama9"))
    error = finish_of(events).error
    assert error is not None and error.code == "not_found" and error.status == 404
    assert "llama9" in error.message and "try pulling it first" in error.message


# --- OpenAI-compatible variants ----------------------------------------------------------------


@in_loop
async def test_vllm_flat_context_error_is_a_context_error() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.whole(
            400,
            {
                "object": "error",
                "message": "This model's maximum context length is 4096 tokens. However, you "
                "requested 5000 tokens.",
                "type": "BadRequestError",
                "code": 400,
            },
        )

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    error = finish_of(events).error
    assert error is not None and error.code == "context"
    assert "maximum context length is 4096" in error.message


@in_loop
async def test_tgi_error_inside_the_stream() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        await reply.send(openai_chunk("Hi"))
        await reply.send(
            sse({"error": "Request failed during generation: CUDA OOM", "error_type": "generation"})
        )
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    assert text_of(events) == "Hi"
    error = finish_of(events).error
    assert error is not None and error.code == "upstream" and "CUDA OOM" in error.message


@in_loop
async def test_tgi_string_error_status_is_read() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.whole(
            422,
            {
                "error": "Input validation error: `stop` supports up to 4 stop sequences",
                "error_type": "validation",
            },
        )

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    error = finish_of(events).error
    assert error is not None and error.code == "bad_request" and "up to 4 stop" in error.message


@in_loop
async def test_groq_usage_under_x_groq() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        await reply.send(openai_chunk("Fast"))
        await reply.send(
            openai_chunk(
                finish="stop",
                x_groq={
                    "id": "req_1",
                    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
                },
            )
        )
        await reply.send("data: [DONE]\n\n")
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    usage = usage_of(events)
    assert (usage.prompt_tokens, usage.completion_tokens) == (9, 1)


@in_loop
async def test_vertex_array_wrapped_rate_limit() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.whole(
            429,
            [
                {
                    "error": {
                        "code": 429,
                        "message": "Quota exceeded for aiplatform.googleapis.com",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                }
            ],
        )

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    error = finish_of(events).error
    assert error is not None and error.code == "rate_limited" and error.retryable
    assert "Quota exceeded" in error.message


@in_loop
async def test_azure_style_api_key_header_and_image_parts() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        await reply.send(": keep-alive\n\n")
        await reply.send(
            openai_chunk("ok", finish="stop", usage={"prompt_tokens": 5, "completion_tokens": 1})
        )
        await reply.send("data: [DONE]\n\n")
        await reply.end()

    async with WireServer(scenario) as server:
        spec = make_spec(
            server.url, auth="header", auth_header="api-key", api_key="az-secret", images=True
        )
        request = ChatRequest(
            messages=(ChatMessage("user", (TextPart("see"), ImagePart(PNG, "image/png"))),),
            stop=("END",),
            extra={"top_p": 0.9},
        )
        events = await route_one(spec, request)
    assert text_of(events) == "ok" and finish_of(events).reason == "stop"
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["api-key"] == "az-secret" and "authorization" not in sent.headers
    body = sent.json()
    assert body["stream_options"] == {"include_usage": True}
    assert body["stop"] == ["END"] and body["top_p"] == 0.9
    image = body["messages"][0]["content"][1]
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()


@in_loop
async def test_stream_without_finish_reason_is_an_error() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        await reply.send(openai_chunk("half"))
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    error = finish_of(events).error
    assert error is not None and "without finishing" in error.message


# --- Bedrock ---------------------------------------------------------------------------------


def bedrock_spec(url: str, **kw):  # type: ignore[no-untyped-def]
    return make_spec(
        url,
        kind="bedrock",
        base_url=url,
        model="meta.llama3-3-70b-instruct-v1:0",
        auth="aws",
        region="us-west-2",
        aws_access_key_id="AKIDEXAMPLE",
        api_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        **kw,
    )


@in_loop
async def test_bedrock_converse_stream_frames_signed_request() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/vnd.amazon.eventstream")
        await reply.send(bedrock_event("messageStart", {"role": "assistant"}))
        frames = bedrock_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hola"}}
        )
        frames += bedrock_event(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " amigo"}}
        )
        # Two frames in one chunk, and one frame split across chunks.
        await reply.send(frames)
        stop = bedrock_event("messageStop", {"stopReason": "max_tokens"})
        await reply.send(stop[:7])
        await reply.send(stop[7:])
        await reply.send(
            bedrock_event(
                "metadata",
                {
                    "usage": {"inputTokens": 17, "outputTokens": 2, "totalTokens": 19},
                    "metrics": {"latencyMs": 80},
                },
            )
        )
        await reply.end()

    async with WireServer(scenario) as server:
        spec = bedrock_spec(server.url)
        request = ChatRequest(
            messages=(ChatMessage.text("user", "Hi"), ChatMessage.text("user", "again")),
            system="Be brief.",
            max_tokens=2,
        )
        events = await route_one(spec, request)
    assert text_of(events) == "Hola amigo"
    assert finish_of(events).reason == "length"
    usage = usage_of(events)
    assert (usage.prompt_tokens, usage.completion_tokens) == (17, 2)
    sent = server.requests[0]
    assert sent.path == "/model/meta.llama3-3-70b-instruct-v1%3A0/converse-stream"
    auth = sent.headers["authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-west-2/bedrock/aws4_request" in auth and "x-amz-date" in sent.headers
    body = sent.json()
    assert body["system"] == [{"text": "Be brief."}]
    # Consecutive user turns are merged: Converse wants alternating roles.
    assert body["messages"] == [{"role": "user", "content": [{"text": "Hi"}, {"text": "again"}]}]
    assert body["inferenceConfig"] == {"maxTokens": 2}


@in_loop
async def test_bedrock_exception_frame_mid_stream() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/vnd.amazon.eventstream")
        await reply.send(bedrock_event("contentBlockDelta", {"delta": {"text": "Partial"}}))
        await reply.send(bedrock_exception("modelStreamErrorException", "The model stream failed"))
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(bedrock_spec(server.url))
    assert text_of(events) == "Partial"
    error = finish_of(events).error
    assert error is not None and "modelStreamErrorException" in error.message
    assert "The model stream failed" in error.message


@in_loop
async def test_bedrock_access_denied_is_an_auth_error() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.whole(
            403, {"message": "The security token included in the request is invalid."}
        )

    async with WireServer(scenario) as server:
        events = await route_one(bedrock_spec(server.url))
    error = finish_of(events).error
    assert error is not None and error.code == "auth" and "security token" in error.message
    assert not any(isinstance(e, TextDelta) for e in events)


@in_loop
async def test_a_server_refusing_stream_options_is_asked_again_without() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        if "stream_options" in request.json():
            await reply.whole(
                400,
                {"error": {"message": "Unrecognized request argument supplied: stream_options"}},
            )
            return
        await reply.start(200, "text/event-stream")
        await reply.send(openai_chunk("fine", finish="stop"))
        await reply.send("data: [DONE]\n\n")
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url))
    assert text_of(events) == "fine" and finish_of(events).reason == "stop"
    assert [("stream_options" in r.json()) for r in server.requests] == [True, False]


@in_loop
async def test_bedrock_api_key_and_images() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/vnd.amazon.eventstream")
        await reply.send(bedrock_event("contentBlockDelta", {"delta": {"text": "A red square."}}))
        await reply.send(bedrock_event("messageStop", {"stopReason": "end_turn"}))
        await reply.end()

    async with WireServer(scenario) as server:
        spec = make_spec(
            server.url, kind="bedrock", base_url=server.url, region="us-east-1", images=True,
            model="meta.llama3-2-11b-instruct-v1:0", auth="bearer", api_key="ABSK-bedrock-key",
        )  # fmt: skip
        request = ChatRequest(
            messages=(ChatMessage("user", (TextPart("what is it?"), ImagePart(PNG, "image/jpeg"))),)
        )
        events = await route_one(spec, request)
    assert text_of(events) == "A red square." and finish_of(events).reason == "stop"
    sent = server.requests[0]
    assert sent.headers["authorization"] == "Bearer ABSK-bedrock-key"
    image = sent.json()["messages"][0]["content"][1]["image"]
    assert image == {"format": "jpeg", "source": {"bytes": base64.b64encode(PNG).decode()}}


LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by its number",
    parameters={"type": "object", "properties": {"number": {"type": "string"}}},
)


@in_loop
async def test_openai_tool_call_deltas_and_finish_tool() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "text/event-stream")
        first = {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup_order", "arguments": ""},
        }
        more = {"index": 0, "function": {"arguments": '{"number": "A1"}'}}
        for call in (first, more):
            await reply.send(
                sse(
                    {
                        "choices": [
                            {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                        ]
                    }
                )
            )
        await reply.send(openai_chunk(finish="tool_calls"))
        await reply.send("data: [DONE]\n\n")
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(make_spec(server.url), hello_request(tools=(LOOKUP,)))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert [(c.call_id, c.name, c.arguments_json) for c in calls] == [
        ("call_1", "lookup_order", ""),
        ("call_1", "lookup_order", '{"number": "A1"}'),
    ]
    assert finish_of(events).reason == "tool"
    tools = server.requests[0].json()["tools"]
    assert tools == [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Find an order by its number",
                "parameters": LOOKUP.parameters,
            },
        }
    ]


@in_loop
async def test_bedrock_tool_use_blocks() -> None:
    async def scenario(request: Request, reply: Reply) -> None:
        await reply.start(200, "application/vnd.amazon.eventstream")
        await reply.send(
            bedrock_event(
                "contentBlockStart",
                {
                    "contentBlockIndex": 1,
                    "start": {"toolUse": {"toolUseId": "tu_1", "name": "lookup_order"}},
                },
            )
        )
        await reply.send(
            bedrock_event(
                "contentBlockDelta",
                {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"number":'}}},
            )
        )
        await reply.send(
            bedrock_event(
                "contentBlockDelta",
                {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ' "A1"}'}}},
            )
        )
        await reply.send(bedrock_event("messageStop", {"stopReason": "tool_use"}))
        await reply.end()

    async with WireServer(scenario) as server:
        events = await route_one(bedrock_spec(server.url), hello_request(tools=(LOOKUP,)))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert "".join(c.arguments_json for c in calls) == '{"number": "A1"}'
    assert {(c.call_id, c.name) for c in calls} == {("tu_1", "lookup_order")}
    assert finish_of(events).reason == "tool"
    spec = server.requests[0].json()["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "lookup_order" and spec["inputSchema"] == {"json": LOOKUP.parameters}
