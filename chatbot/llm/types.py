"""The one streaming protocol every model adapter speaks.

`stream(request)` yields events: one `Routed` (which endpoint answers), `TextDelta`s, then at
most one `Usage`, then exactly one
`Finish`. A failure is reported as a `Finish(reason="error", error=StreamError(...))` whose
message a person can act on. A model that calls tools streams `ToolCallDelta`s (argument
fragments keyed by the call's index) and finishes with "tool"; the caller runs the calls and
sends their results back as `tool` messages (chatbot/tools/loop.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool", "error"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    data: bytes  # already validated and re-encoded
    media_type: str = "image/png"
    type: Literal["image"] = "image"


Part = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete call the model asked for (arguments as the JSON text it wrote)."""

    id: str
    name: str
    arguments_json: str


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Role
    parts: tuple[Part, ...]
    # An assistant turn that asked for calls carries them; a "tool" turn answers one of them.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    tool_name: str = ""

    @classmethod
    def text(cls, role: Role, text: str) -> ChatMessage:
        return cls(role=role, parts=(TextPart(text),))

    @property
    def plain_text(self) -> str:
        return "".join(part.text for part in self.parts if isinstance(part, TextPart))

    @property
    def has_images(self) -> bool:
        return any(isinstance(part, ImagePart) for part in self.parts)


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function the model may call (a tenant's action, chatbot/tools)."""

    name: str
    description: str
    parameters: dict[str, object]  # JSON Schema of the arguments


@dataclass(frozen=True, slots=True)
class ChatRequest:
    messages: tuple[ChatMessage, ...]
    system: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    # Engine-specific extras passed through verbatim (e.g. logit_bias for benchmarks).
    extra: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Routed:
    """Emitted once, before the first text, naming the endpoint that is answering."""

    endpoint: str
    model: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a tool call: `index` tells parallel calls apart; the id and name come with
    the first piece (engines that send whole calls send one piece per call)."""

    call_id: str
    name: str
    arguments_json: str
    index: int = 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts for one reply, plus what the router measured (filled in by the router;
    adapters leave the timing fields at their defaults)."""

    prompt_tokens: int
    completion_tokens: int
    ttft_ms: int | None = None  # request sent -> first text, as the caller saw it
    duration_ms: int | None = None  # request sent -> last event
    endpoint: str = ""
    model: str = ""


ErrorCode = Literal[
    "connect",  # DNS failure, connection refused, TLS
    "timeout",  # connect, first-token or idle timeout
    "auth",  # 401/403
    "not_found",  # unknown model or wrong path
    "context",  # the prompt does not fit the context window
    "bad_request",  # the endpoint refused the request
    "unsupported",  # e.g. images sent to an endpoint that takes none
    "rate_limited",
    "upstream",  # 5xx or a mid-stream error
    "overloaded",  # concurrency queue full or circuit open
    "offline",  # no endpoint configured or reachable
    "cancelled",
]

# Errors that say the endpoint itself is down or refusing (not the request, not the visitor):
# the widget says "assistant unavailable", the owners are alerted.
DOWN_CODES: frozenset[str] = frozenset(
    {"connect", "timeout", "upstream", "overloaded", "offline", "auth"}
)


@dataclass(frozen=True, slots=True)
class StreamError:
    code: ErrorCode
    message: str  # presentable to the operator; the widget maps codes to visitor wording
    retryable: bool = False
    status: int | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason
    error: StreamError | None = None


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of retrieved knowledge, cited in the prompt as a numbered source."""

    id: str
    title: str
    url: str
    text: str
    # The headings above the passage in its document ("Returns > Refunds"), if any.
    heading: str = ""
    # Whether retrieval judged it to answer the question (not merely to share a word).
    relevant: bool = True


Event = Routed | TextDelta | ToolCallDelta | Usage | Finish
