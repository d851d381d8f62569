"""Ollama's native `/api/chat`: newline-delimited JSON.

Each line carries `message.content`; the last has `"done": true` with `done_reason`,
`prompt_eval_count` and `eval_count`. A failure after the headers arrives as a
`{"error": "..."}` line on a 200 response. Images travel as raw base64 strings in `images`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from ..spec import EndpointSpec
from ..types import ChatRequest, Event, Finish, ImagePart, TextDelta, ToolCallDelta, Usage
from .base import fail, finish_reason, iter_line_batches, raise_for_status
from .openai import auth_headers, tool_schemas


def build_body(spec: EndpointSpec, request: ChatRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        item: dict[str, Any] = {"role": message.role, "content": message.plain_text}
        if message.tool_calls:
            item["tool_calls"] = [
                {"function": {"name": call.name, "arguments": _arguments(call.arguments_json)}}
                for call in message.tool_calls
            ]
        if message.role == "tool" and message.tool_name:
            item["tool_name"] = message.tool_name
        images = [
            base64.b64encode(part.data).decode()
            for part in message.parts
            if isinstance(part, ImagePart)
        ]
        if images:
            item["images"] = images
        messages.append(item)
    options: dict[str, Any] = {"num_ctx": spec.context_window}
    if request.temperature is not None:
        options["temperature"] = request.temperature
    if request.max_tokens is not None:
        options["num_predict"] = request.max_tokens
    if request.stop:
        options["stop"] = list(request.stop)
    extra = dict(request.extra)
    if request.tools:
        extra.setdefault("tools", tool_schemas(request))
    options.update(extra.pop("options", None) or {})  # type: ignore[call-overload]
    return {"model": spec.model, "messages": messages, "stream": True, "options": options, **extra}


def _arguments(text: str) -> Any:
    """Ollama wants the arguments of a past call as an object, not as JSON text."""
    try:
        return json.loads(text or "{}")
    except ValueError:
        return {}


class OllamaAdapter:
    async def stream(
        self, client: httpx.AsyncClient, spec: EndpointSpec, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        url = spec.base_url + "/api/chat"
        async with client.stream(
            "POST", url, json=build_body(spec, request), headers=auth_headers(spec)
        ) as response:
            await raise_for_status(response, spec)
            calls_seen = 0  # Ollama sends whole calls, possibly over several lines
            saw_calls = False
            async for lines in iter_line_batches(response):
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        chunk = json.loads(line)
                    except ValueError:
                        raise fail(
                            "upstream", f"{spec.label} sent a malformed stream line", retryable=True
                        ) from None
                    if not isinstance(chunk, dict):
                        continue
                    if chunk.get("error"):
                        raise fail(
                            "upstream",
                            f"{spec.label} failed in the middle of the reply: {chunk['error']}",
                            retryable=True,
                        )
                    message = chunk.get("message") or {}
                    text = message.get("content")
                    if isinstance(text, str) and text:
                        yield TextDelta(text)
                    for call in message.get("tool_calls") or ():
                        function = call.get("function") or {}
                        arguments = function.get("arguments") or {}
                        yield ToolCallDelta(
                            call_id=str(call.get("id") or f"call_{calls_seen}"),
                            name=str(function.get("name") or ""),
                            arguments_json=arguments
                            if isinstance(arguments, str)
                            else json.dumps(arguments),
                            index=calls_seen,
                        )
                        calls_seen += 1
                        saw_calls = True
                    if chunk.get("done"):
                        prompt = chunk.get("prompt_eval_count")
                        completion = chunk.get("eval_count")
                        if isinstance(prompt, int) or isinstance(completion, int):
                            yield Usage(
                                prompt_tokens=int(prompt or 0),
                                completion_tokens=int(completion or 0),
                            )
                        reason = chunk.get("done_reason") or "stop"
                        if saw_calls:
                            reason = "tool_calls"
                        yield Finish(finish_reason(reason))  # type: ignore[arg-type]
                        return
            raise fail(
                "upstream",
                f"{spec.label} ended the stream without finishing the reply",
                retryable=True,
            )
