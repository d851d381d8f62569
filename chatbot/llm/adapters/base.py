"""What every adapter shares: the error type, HTTP error classification, transport errors.

An adapter turns a `ChatRequest` into one HTTP request and the response into protocol events
(`TextDelta`, `ToolCallDelta`, `Usage`, then one `Finish` with stop/length/tool). Problems are
raised as `LLMError(StreamError)`; the router decides whether to fail over and turns them into
the final `Finish(reason="error")`.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

import httpx

from ..spec import EndpointSpec
from ..types import ChatRequest, ErrorCode, Event, StreamError

# An error body larger than this is not read (a misbehaving server cannot make us buffer it).
MAX_ERROR_BODY = 64 * 1024
# One NDJSON/SSE line larger than this is refused as a protocol error.
MAX_LINE = 4 * 1024 * 1024


class LLMError(Exception):
    def __init__(self, error: StreamError, *, retry_same: bool = False) -> None:
        super().__init__(error.message)
        self.error = error
        # The request never reached the model (e.g. a pooled keep-alive connection the server
        # had just closed): trying the same endpoint once more is safe and usually works.
        self.retry_same = retry_same


def fail(
    code: ErrorCode, message: str, *, retryable: bool = False, status: int | None = None
) -> LLMError:
    return LLMError(StreamError(code=code, message=message, retryable=retryable, status=status))


class Adapter(Protocol):
    def stream(
        self, client: httpx.AsyncClient, spec: EndpointSpec, request: ChatRequest
    ) -> AsyncGenerator[Event, None]: ...


def error_text(body: bytes) -> str:
    """The human message inside the error bodies engines send, whatever their shape.

    Seen in the field: {"error": {"message": ...}} (OpenAI, llama-server, Groq),
    {"object": "error", "message": ...} (older vLLM), {"error": "...", "error_type": ...} (TGI,
    Ollama), [{"error": {...}}] (Vertex), {"message": ...} (Bedrock), {"detail": ...} (FastAPI).
    """
    text = body[:MAX_ERROR_BODY].decode("utf-8", "replace").strip()
    try:
        data: Any = json.loads(text)
    except ValueError:
        return text[:500]
    return _message_in(data) or text[:500]


def _message_in(data: Any) -> str:
    if isinstance(data, list) and data:
        return _message_in(data[0])
    if isinstance(data, str):
        return data
    if not isinstance(data, dict):
        return ""
    for key in ("error", "message", "Message", "detail", "error_message"):
        value = data.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict | list):
            found = _message_in(value)
            if found:
                return found
    return ""


_CONTEXT_HINTS = (
    "context",
    "too long",
    "maximum input",
    "max_tokens must be",
    "input length",
    "too many tokens",
    "prompt is too long",
)
_IMAGE_HINTS = ("image input is not supported", "multimodal", "mmproj", "vision", "image")


def classify_status(status: int, message: str, spec: EndpointSpec) -> LLMError:
    """An HTTP error answer as a clear, actionable error."""
    lowered = message.lower()
    where = f"{spec.label} ({spec.base_url})"
    detail = f": {message}" if message else ""
    if status in (401, 403):
        return fail(
            "auth",
            f"{where} refused the credentials (HTTP {status}); check the API key{detail}",
            status=status,
        )
    if status == 404:
        if "model" in lowered:
            return fail(
                "not_found",
                f"{where} does not know the model {spec.model!r} (HTTP 404){detail}",
                status=status,
            )
        return fail(
            "not_found",
            f"{where} has no such API path (HTTP 404); check the URL and the kind "
            f"({spec.kind}){detail}",
            status=status,
        )
    if status == 413 or (status in (400, 422) and any(h in lowered for h in _CONTEXT_HINTS)):
        return fail(
            "context",
            f"the conversation does not fit the context window of {spec.label}{detail}",
            status=status,
        )
    if status in (400, 422, 500) and any(h in lowered for h in _IMAGE_HINTS):
        return fail(
            "unsupported",
            f"{spec.label} cannot read images (HTTP {status}); mark the endpoint as text-only "
            f"or load a vision projector{detail}",
            status=status,
        )
    if status == 429:
        return fail(
            "rate_limited",
            f"{where} is rate limiting requests (HTTP 429){detail}",
            retryable=True,
            status=status,
        )
    if status in (400, 405, 409, 415, 422):
        return fail(
            "bad_request", f"{where} refused the request (HTTP {status}){detail}", status=status
        )
    if status in (408, 504):
        return fail(
            "timeout", f"{where} timed out (HTTP {status}){detail}", retryable=True, status=status
        )
    return fail(
        "upstream",
        f"{where} failed (HTTP {status}){detail}",
        retryable=status >= 500,
        status=status,
    )


async def raise_for_status(response: httpx.Response, spec: EndpointSpec) -> None:
    if response.status_code < 400:
        return
    body = b""
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= MAX_ERROR_BODY:
            break
    raise classify_status(response.status_code, error_text(body), spec)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def classify_transport(exc: BaseException, spec: EndpointSpec, phase: str = "") -> LLMError:
    """A network-level failure (DNS, refused, TLS, timeouts, a dropped stream) named plainly."""
    host = httpx.URL(spec.base_url).host if spec.base_url else "?"
    where = f"{spec.label} ({spec.base_url})"
    chain = _chain(exc)
    text = " ".join(str(e) for e in chain).lower()
    from chatbot.lib.outbound import BlockedURL

    if isinstance(exc, BlockedURL):
        # A tenant's endpoint resolving inside the platform's network: not retryable.
        return fail("connect", f"refused to connect to {where}: {exc}")
    if isinstance(exc, httpx.ConnectTimeout):
        return fail(
            "timeout",
            f"could not connect to {where} within {spec.connect_timeout:g}s",
            retryable=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return fail(
            "timeout", f"{where} stopped answering ({phase or 'read'} timeout)", retryable=True
        )
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        hint in text
        for hint in ("name or service not known", "nodename nor servname", "name resolution")
    ):
        return fail("connect", f"the host name {host!r} does not resolve (DNS)", retryable=True)
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "connection refused" in text:
        return fail(
            "connect",
            f"connection refused by {where}: is the server running and listening there?",
            retryable=True,
        )
    if any(isinstance(e, ssl.SSLError) for e in chain) or "certificate" in text or "ssl" in text:
        return fail("connect", f"TLS failed with {where}: {chain[-1]}", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return fail("connect", f"could not connect to {where}: {chain[-1]}", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in text:
        error = fail("connect", f"{where} closed the connection before answering", retryable=True)
        error.retry_same = True
        return error
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return fail(
            "upstream", f"{where} closed the connection in the middle of the reply", retryable=True
        )
    return fail("upstream", f"{where}: {type(exc).__name__}: {exc}", retryable=True)


async def iter_line_batches(response: httpx.Response) -> AsyncIterator[list[bytes]]:
    """The complete lines of a streamed body (NDJSON or SSE), a network chunk's worth at a
    time: one generator step per chunk rather than per line keeps the relay cheap. Lines may
    end in b"\r"; absurdly long ones are refused."""
    buffer = b""
    async for data in response.aiter_bytes():
        if b"\n" not in data:
            buffer += data
            if len(buffer) > MAX_LINE:
                raise fail("upstream", "the model server sent an oversized line")
            continue
        *lines, buffer = (buffer + data).split(b"\n")
        yield lines
    if buffer.strip():
        yield [buffer]


def finish_reason(raw: str | None) -> str:
    """Engines' finish reasons folded onto the protocol's stop / length / tool."""
    if raw in ("length", "max_tokens", "model_length", "model_context_window_exceeded"):
        return "length"
    if raw in ("tool_calls", "function_call", "tool_use"):
        return "tool"
    return "stop"
