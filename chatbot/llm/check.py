"""An end-to-end check of one endpoint: stream a short reply and time it.

Used by `manage.py llm check` and the Models page's "Check" button.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from .prompt import build_request
from .routing import discard, stream_route
from .spec import EndpointSpec
from .types import ChatMessage, Finish, StreamError, TextDelta, Usage

PROMPT = "Say hello in five words."

HINTS = {
    "connect": "Is the server running, and is the URL (host and port) right?",
    "timeout": "The server is reachable but slow or stuck; check its load, or raise the "
    "first_token_timeout / connect_timeout of the endpoint.",
    "auth": "Check the API key and the auth kind (bearer, or header with the right header name).",
    "not_found": "For Ollama: `ollama pull MODEL`. For OpenAI-compatible servers: list the model "
    "ids with GET URL/models, and check that the URL ends where /chat/completions goes.",
    "context": "Lower max tokens or raise the endpoint's context window on the server.",
    "unsupported": "Declare the endpoint without images, or give the server a vision projector.",
    "rate_limited": "The provider is throttling this key; try later or raise its limits.",
    "upstream": "The server failed on its side; look at its logs.",
    "overloaded": "All streams are in use; raise max_concurrency or add a fallback endpoint.",
}


@dataclass(frozen=True)
class CheckResult:
    error: StreamError | None
    reply: str = ""
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    total_ms: float = 0.0
    usage: Usage | None = None
    finish: str = ""

    @property
    def hint(self) -> str:
        return HINTS.get(self.error.code, "") if self.error else ""

    def summary(self) -> str:
        if self.error is not None:
            return self.error.message
        ttft = f"{self.ttft_ms:.0f} ms" if self.ttft_ms is not None else "n/a"
        rate = f"{self.tokens_per_s:.1f} tokens/s" if self.tokens_per_s else "n/a tokens/s"
        if self.usage and (self.usage.prompt_tokens or self.usage.completion_tokens):
            usage = (
                f"prompt {self.usage.prompt_tokens} + completion "
                f"{self.usage.completion_tokens} tokens"
            )
        else:
            usage = "usage not reported by the server"
        return (
            f"first token {ttft}, {rate}, total {self.total_ms:.0f} ms, {usage}, "
            f"finish {self.finish}"
        )


async def check_endpoint(
    spec: EndpointSpec, *, max_tokens: int = 32, first_token_timeout: float | None = None
) -> CheckResult:
    # A fresh key: the check must not be skipped by (nor trip) this process's breaker.
    spec = dataclasses.replace(
        spec,
        key=f"check:{time.monotonic_ns()}",
        first_token_timeout=first_token_timeout or spec.first_token_timeout,
    )
    history = [ChatMessage.text("user", PROMPT)]
    started = time.monotonic()
    text: list[str] = []
    usage: Usage | None = None
    finish: Finish | None = None
    first_at: float | None = None
    try:
        async for event in stream_route(
            [spec], lambda s: build_request(s, system="", history=history, max_tokens=max_tokens)
        ):
            if isinstance(event, TextDelta):
                first_at = first_at or time.monotonic()
                text.append(event.text)
            elif isinstance(event, Usage):
                usage = event
            elif isinstance(event, Finish):
                finish = event
    finally:
        await discard(spec)
    ended = time.monotonic()
    assert finish is not None
    if finish.error is not None:
        return CheckResult(error=finish.error, total_ms=(ended - started) * 1000)
    tokens = usage.completion_tokens if usage and usage.completion_tokens else len(text)
    generation = ended - (first_at or started)
    return CheckResult(
        error=None,
        reply="".join(text).strip().replace("\n", " "),
        ttft_ms=(first_at - started) * 1000 if first_at else None,
        tokens_per_s=tokens / generation if generation > 0 and tokens > 1 else None,
        total_ms=(ended - started) * 1000,
        usage=usage,
        finish=finish.reason,
    )
