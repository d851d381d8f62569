"""AWS Bedrock's ConverseStream for Meta Llama models (an optional extra: `parley[bedrock]`).

botocore signs the request (SigV4) and parses the `application/vnd.amazon.eventstream` frames;
httpx sends it, so Bedrock shares the router's pools, timeouts and cancellation with the other
adapters. Bedrock API keys (bearer tokens) work too, with auth "bearer".
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote

import httpx

from ..spec import EndpointSpec
from ..types import (
    ChatRequest,
    Event,
    Finish,
    ImagePart,
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)
from .base import fail, finish_reason, raise_for_status

_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}


def build_body(request: ChatRequest) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    # Converse refuses toolUse/toolResult blocks without a toolConfig: a request offering no
    # tools (the tool loop's last turn) carries past calls and results as text instead.
    as_text = not request.tools
    for message in request.messages:
        content: list[dict[str, Any]] = []
        if message.role == "tool" and as_text:
            content.append({"text": f"[result of {message.tool_name}: {message.plain_text}]"})
        elif message.role == "tool":
            content.append(
                {
                    "toolResult": {
                        "toolUseId": message.tool_call_id,
                        "content": [{"text": message.plain_text}],
                    }
                }
            )
        for part in message.parts if message.role != "tool" else ():
            if isinstance(part, TextPart) and part.text:
                content.append({"text": part.text})
            elif isinstance(part, ImagePart):
                content.append(
                    {
                        "image": {
                            "format": _FORMATS.get(part.media_type, "png"),
                            "source": {"bytes": base64.b64encode(part.data).decode()},
                        }
                    }
                )
        for call in message.tool_calls if as_text else ():
            content.append({"text": f"[called {call.name} with {call.arguments_json}]"})
        for call in message.tool_calls if not as_text else ():
            content.append(
                {
                    "toolUse": {
                        "toolUseId": call.id,
                        "name": call.name,
                        "input": _arguments(call.arguments_json),
                    }
                }
            )
        if not content:
            continue
        # Tool results travel in a user turn (Converse's rule).
        role = "assistant" if message.role == "assistant" else "user"
        # Converse wants alternating turns: merge consecutive messages of one role.
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] += content
        else:
            messages.append({"role": role, "content": content})
    body: dict[str, Any] = {"messages": messages}
    if request.system:
        body["system"] = [{"text": request.system}]
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxTokens"] = request.max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if config:
        body["inferenceConfig"] = config
    if request.tools:
        body["toolConfig"] = {
            "tools": [
                {
                    "toolSpec": {
                        "name": t.name,
                        "description": t.description,
                        "inputSchema": {"json": t.parameters},
                    }
                }
                for t in request.tools
            ]
        }
    if request.extra:
        body["additionalModelRequestFields"] = dict(request.extra)
    return body


def _arguments(text: str) -> Any:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def signed_headers(spec: EndpointSpec, url: str, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/vnd.amazon.eventstream"}
    if spec.auth == "bearer":
        return {**headers, "Authorization": f"Bearer {spec.api_key}"}
    try:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        from botocore.session import Session
    except ImportError:
        raise fail(
            "unsupported",
            "the bedrock adapter needs botocore: pip install 'parley[bedrock]'",
        ) from None
    if spec.aws_access_key_id and spec.api_key:
        credentials = Credentials(
            spec.aws_access_key_id, spec.api_key, spec.aws_session_token or None
        )
    else:
        # The standard AWS chain: environment, shared config, instance role.
        credentials = Session().get_credentials()
        if credentials is None:
            raise fail(
                "auth",
                f"{spec.label}: no AWS credentials (set aws_access_key_id and the secret, or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
            )
    aws_request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(credentials, "bedrock", spec.region).add_auth(aws_request)
    return dict(aws_request.headers.items())


class BedrockAdapter:
    async def stream(
        self, client: httpx.AsyncClient, spec: EndpointSpec, request: ChatRequest
    ) -> AsyncGenerator[Event, None]:
        try:
            from botocore.eventstream import EventStreamBuffer, ParserError
        except ImportError:
            raise fail(
                "unsupported", "the bedrock adapter needs botocore: pip install 'parley[bedrock]'"
            ) from None
        url = f"{spec.base_url}/model/{quote(spec.model, safe='')}/converse-stream"
        body = json.dumps(build_body(request)).encode()
        headers = signed_headers(spec, url, body)
        async with client.stream("POST", url, content=body, headers=headers) as response:
            await raise_for_status(response, spec)
            parser = EventStreamBuffer()
            reason: str | None = None
            usage: Usage | None = None
            tools: dict[int, tuple[str, str]] = {}  # content block -> (tool use id, name)
            async for data in response.aiter_bytes():
                parser.add_data(data)
                try:
                    frames = list(parser)
                except ParserError as exc:
                    raise fail(
                        "upstream", f"{spec.label} sent a corrupt event-stream frame: {exc}"
                    ) from None
                for frame in frames:
                    headers_in = frame.headers
                    try:
                        payload = json.loads(frame.payload or b"{}")
                    except ValueError:
                        payload = {}
                    if headers_in.get(":message-type") == "exception":
                        kind = str(headers_in.get(":exception-type", "exception"))
                        message = payload.get("message") or payload.get("Message") or kind
                        throttled = kind == "throttlingException"
                        raise fail(
                            "rate_limited" if throttled else "upstream",
                            f"{spec.label} failed in the middle of the reply ({kind}): {message}",
                            retryable=True,
                        )
                    event = headers_in.get(":event-type")
                    if event == "contentBlockStart":
                        use = (payload.get("start") or {}).get("toolUse")
                        if use:
                            block = int(payload.get("contentBlockIndex", 0))
                            tools[block] = (str(use.get("toolUseId", "")), str(use.get("name", "")))
                    elif event == "contentBlockDelta":
                        delta = payload.get("delta") or {}
                        text = delta.get("text")
                        if text:
                            yield TextDelta(text)
                        use = delta.get("toolUse")
                        if use:
                            block = int(payload.get("contentBlockIndex", 0))
                            call_id, name = tools.get(block, ("", ""))
                            yield ToolCallDelta(call_id, name, str(use.get("input", "")), block)
                    elif event == "messageStop":
                        reason = payload.get("stopReason") or "end_turn"
                    elif event == "metadata":
                        raw = payload.get("usage") or {}
                        usage = Usage(
                            prompt_tokens=int(raw.get("inputTokens", 0)),
                            completion_tokens=int(raw.get("outputTokens", 0)),
                        )
            if reason is None:
                raise fail(
                    "upstream",
                    f"{spec.label} ended the stream without finishing the reply",
                    retryable=True,
                )
            if reason in ("guardrail_intervened", "content_filtered"):
                raise fail("upstream", f"{spec.label}'s content filter stopped the reply")
            if usage is not None:
                yield usage
            yield Finish(finish_reason(reason))  # type: ignore[arg-type]
