"""Any `/v1/chat/completions` server: vLLM, llama.cpp's llama-server, TGI, LM Studio, Together,
Groq, Fireworks, Azure OpenAI (v1), Vertex AI's Llama endpoint, Meta's Llama API.

Streaming is server-sent events: `data: {chunk}` lines and a final `data: [DONE]`. Usage comes
in the last chunk when `stream_options.include_usage` is honoured (llama-server, vLLM), under
`x_groq.usage` (Groq), or not at all (then none is reported). Errors come as an HTTP status
with one of several body shapes, or inside the stream as a `data: {"error": ...}` line.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..spec import EndpointSpec
from ..types import (
    ChatMessage,
    ChatRequest,
    Event,
    Finish,
    ImagePart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)
from .base import LLMError, error_text, fail, finish_reason, iter_line_batches, raise_for_status


def auth_headers(spec: EndpointSpec) -> dict[str, str]:
    if spec.auth == "bearer" and spec.api_key:
        return {"Authorization": f"Bearer {spec.api_key}"}
    if spec.auth == "header" and spec.api_key:
        return {spec.auth_header or "api-key": spec.api_key}
    return {}


def _content(message: ChatMessage) -> str | list[dict[str, Any]]:
    if not message.has_images:
        return message.plain_text
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            data = base64.b64encode(part.data).decode()
            parts.append(
                {"type": "image_url", "image_url": {"url": f"data:{part.media_type};base64,{data}"}}
            )
    return parts


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "content": message.plain_text,
        }
    item: dict[str, Any] = {"role": message.role, "content": _content(message)}
    if message.tool_calls:
        item["content"] = message.plain_text or None
        item["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments_json or "{}"},
            }
            for call in message.tool_calls
        ]
    return item


def build_body(spec: EndpointSpec, request: ChatRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages += [_message(m) for m in request.messages]
    body: dict[str, Any] = {
        "model": spec.model,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    if request.tools:
        body["tools"] = tool_schemas(request)
    body.update(request.extra)
    return body


def tool_schemas(request: ChatRequest) -> list[dict[str, Any]]:
    """The OpenAI `tools` shape, which Ollama accepts too."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
        }
        for t in request.tools
    ]


def _usage(chunk: dict[str, Any]) -> Usage | None:
    raw = chunk.get("usage")
    if not isinstance(raw, dict):
        groq = chunk.get("x_groq")
        raw = groq.get("usage") if isinstance(groq, dict) else None
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens", raw.get("input_tokens"))
    completion = raw.get("completion_tokens", raw.get("output_tokens"))
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


class OpenAIAdapter:
    async def stream(
        self, client: httpx.AsyncClient, spec: EndpointSpec, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        body = build_body(spec, request)
        response = await self._send(client, spec, body)
        try:
            if response.status_code == 400:
                try:
                    await raise_for_status(response, spec)
                except LLMError as exc:
                    # A few servers refuse the usage option itself: ask once more without it.
                    if "stream_options" not in exc.error.message:
                        raise
                await response.aclose()
                body.pop("stream_options", None)
                response = await self._send(client, spec, body)
            await raise_for_status(response, spec)
            usage: Usage | None = None
            reason: str | None = None
            tool_names: dict[int, tuple[str, str]] = {}
            done = False
            async for lines in iter_line_batches(response):
                for line in lines:
                    if not line.startswith(b"data:"):
                        # Comments (": keep-alive"), "event:"/"id:" lines, blank separators.
                        continue
                    payload = line[5:].strip()
                    if payload == b"[DONE]":
                        done = True
                        break
                    try:
                        chunk = json.loads(payload)
                    except ValueError:
                        raise fail(
                            "upstream",
                            f"{spec.label} sent a malformed stream chunk",
                            retryable=True,
                        ) from None
                    if isinstance(chunk, list) and chunk:  # Vertex may wrap chunks (and errors)
                        chunk = chunk[0]
                    if not isinstance(chunk, dict):
                        continue
                    if "error" in chunk or chunk.get("object") == "error":
                        message = error_text(payload)
                        raise fail(
                            "upstream",
                            f"{spec.label} failed in the middle of the reply: {message}",
                            retryable=True,
                        )
                    usage = _usage(chunk) or usage
                    for choice in chunk.get("choices") or ():
                        if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                            continue
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if isinstance(text, str) and text:
                            yield TextDelta(text)
                        for call in delta.get("tool_calls") or ():
                            index = call.get("index", 0)
                            function = call.get("function") or {}
                            call_id, name = tool_names.get(index, ("", ""))
                            call_id = call.get("id") or call_id
                            name = function.get("name") or name
                            tool_names[index] = (call_id, name)
                            arguments = function.get("arguments") or ""
                            if not isinstance(arguments, str):  # a few servers send an object
                                arguments = json.dumps(arguments)
                            yield ToolCallDelta(
                                call_id=call_id,
                                name=name,
                                arguments_json=arguments,
                                index=index if isinstance(index, int) else 0,
                            )
                        if choice.get("finish_reason"):
                            reason = choice["finish_reason"]
                if done:
                    break
            if reason is None:
                # The stream ended without a finish reason: the server dropped it half-way.
                raise fail(
                    "upstream",
                    f"{spec.label} ended the stream without finishing the reply",
                    retryable=True,
                )
            if reason == "content_filter":
                raise fail("upstream", f"{spec.label}'s content filter stopped the reply")
            if usage is not None:
                yield usage
            yield Finish(finish_reason(reason))  # type: ignore[arg-type]
        finally:
            await response.aclose()

    @staticmethod
    async def _send(
        client: httpx.AsyncClient, spec: EndpointSpec, body: dict[str, Any]
    ) -> httpx.Response:
        headers = {"Accept": "text/event-stream", **auth_headers(spec)}
        request = client.build_request(
            "POST", spec.base_url + "/chat/completions", json=body, headers=headers
        )
        return await client.send(request, stream=True)
