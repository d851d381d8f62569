"""Prompt assembly: system prompt, then retrieved knowledge, then history that fits.

The budget is the endpoint's context window minus room reserved for the reply. Without the
model's tokenizer, tokens are estimated from characters (`chars_per_token` per endpoint, set
low enough to over- rather than under-estimate). The newest messages are kept first; the
visitor's latest message is never dropped (if it alone does not fit, the reply is refused with
a clear error rather than sent to fail upstream).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .adapters.base import fail
from .spec import EndpointSpec
from .types import ChatMessage, ChatRequest, ImagePart, Passage, TextPart, ToolSpec

# A chat template wraps each message in markers (Llama 3: start/end header, end of turn) and
# spells out the role followed by a blank line.
MESSAGE_MARKERS = 4
IMAGE_TOKENS = 768  # what a typical Llama vision encoder spends on one image
KNOWLEDGE_SHARE = 0.5  # retrieved passages may use at most this share of what is left
OMITTED_IMAGE = "[an image was shared here]"


def estimate_tokens(text: str, spec: EndpointSpec) -> int:
    return math.ceil(len(text) / spec.chars_per_token)


def image_tokens(spec: EndpointSpec) -> int:
    return min(IMAGE_TOKENS, max(1, spec.context_window // 8))


def overhead(role: str, spec: EndpointSpec) -> int:
    return MESSAGE_MARKERS + estimate_tokens(role + "\n\n", spec)


def message_tokens(message: ChatMessage, spec: EndpointSpec) -> int:
    total = overhead(message.role, spec)
    for part in message.parts:
        if isinstance(part, TextPart):
            total += estimate_tokens(part.text, spec)
        else:
            total += image_tokens(spec)
    for call in message.tool_calls:
        total += estimate_tokens(call.name + call.arguments_json, spec) + MESSAGE_MARKERS
    return total


def tools_tokens(tools: Sequence[ToolSpec], spec: EndpointSpec) -> int:
    """What the tool definitions cost: chat templates print them as JSON in the prompt."""
    return sum(
        estimate_tokens(f"{tool.name}{tool.description}{tool.parameters}", spec) + MESSAGE_MARKERS
        for tool in tools
    )


def reply_reserve(spec: EndpointSpec, max_tokens: int | None) -> int:
    if max_tokens is not None:
        return max_tokens
    return min(1024, spec.context_window // 4)


# When retrieval found passages but none that answers: the bot says so instead of guessing.
NOTHING_RELEVANT = (
    "The business's knowledge base has nothing that answers the visitor's last message. If it "
    "asks for facts about the business (prices, policies, products, hours...), say in the "
    "visitor's language that you do not know, and offer to pass the question to a person on "
    "the team. Do not guess or invent facts. Greetings and small talk you may answer normally."
)


def knowledge_block(passages: Sequence[Passage]) -> str:
    """The numbered sources (the relevant passages), or NOTHING_RELEVANT when there are none.

    The numbers are what the reply cites: `conversations.replies` keeps as the reply's
    citations the sources whose number appears in it, like [2].
    """
    passages = [passage for passage in passages if passage.relevant]
    if not passages:
        return NOTHING_RELEVANT
    lines = [
        "Answer from the numbered sources below when they are relevant. After each fact you "
        "take from a source, cite its number in brackets, like [1]. If they do not contain the "
        "answer, say that you do not know and offer to pass the question to a person, rather "
        "than guessing."
    ]
    for number, passage in enumerate(passages, start=1):
        title = passage.title or "Untitled"
        if passage.heading:
            title = f"{title} > {passage.heading}"
        head = f"[{number}] {title}" + (f" ({passage.url})" if passage.url else "")
        lines.append(f"{head}\n{passage.text.strip()}")
    return "\n\n".join(lines)


def _strip_images(message: ChatMessage) -> ChatMessage:
    parts = tuple(
        TextPart(OMITTED_IMAGE) if isinstance(part, ImagePart) else part for part in message.parts
    )
    return ChatMessage(role=message.role, parts=parts)


def build_request(
    spec: EndpointSpec,
    *,
    system: str,
    history: Sequence[ChatMessage],
    knowledge: Sequence[Passage] = (),
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: tuple[str, ...] = (),
    extra: dict[str, object] | None = None,
    tools: tuple[ToolSpec, ...] = (),
) -> ChatRequest:
    """The request for `spec`, or LLMError("unsupported"/"context") when it cannot take it."""
    reserve = reply_reserve(spec, max_tokens)
    # The reply's own header ("assistant") is part of the prompt too.
    budget = spec.context_window - reserve - overhead("assistant", spec) - 1  # 1: BOS
    if system:
        budget -= overhead("system", spec) + estimate_tokens(system, spec)
    if tools:
        budget -= tools_tokens(tools, spec)
    if budget <= 0:
        raise fail(
            "context",
            f"the system prompt leaves no room in the context window of {spec.label} "
            f"({spec.context_window} tokens, {reserve} kept for the reply)",
        )

    # Images go only to endpoints that read them; the latest user turn decides.
    last_user = next((m for m in reversed(history) if m.role == "user"), None)
    if not spec.images:
        if last_user is not None and last_user.has_images:
            raise fail(
                "unsupported",
                f"{spec.label} cannot read images; send the question as text, or ask the "
                "operator to route this bot to a model that takes images",
            )
        history = [_strip_images(m) if m.has_images else m for m in history]

    kept_passages: list[Passage] = []
    system_text = system
    if knowledge:
        allowance = int(budget * KNOWLEDGE_SHARE)
        for passage in (p for p in knowledge if p.relevant):
            candidate = knowledge_block([*kept_passages, passage])
            if estimate_tokens(candidate, spec) > allowance:
                break
            kept_passages.append(passage)
        # Passages were found but none answers: the instruction to say so instead.
        if kept_passages or not any(p.relevant for p in knowledge):
            block = knowledge_block(kept_passages)
            system_text = f"{system}\n\n{block}" if system else block
            budget -= estimate_tokens(block, spec) + (
                estimate_tokens("\n\n", spec) if system else overhead("system", spec)
            )

    kept: list[ChatMessage] = []
    for message in reversed(history):
        cost = message_tokens(message, spec)
        if cost > budget:
            break
        kept.append(message)
        budget -= cost
    kept.reverse()
    if history and not kept:
        newest = history[-1]
        raise fail(
            "context",
            f"the message is too long for {spec.label}: about {message_tokens(newest, spec)} "
            f"tokens, and the model's window of {spec.context_window} tokens keeps {reserve} "
            "for the reply; shorten it",
        )
    # Chat templates expect the conversation to open with the user (a tool result cut off
    # from the call that asked for it cannot come first either).
    while len(kept) > 1 and kept[0].role in ("assistant", "tool"):
        kept.pop(0)
    return ChatRequest(
        messages=tuple(kept),
        system=system_text,
        temperature=temperature,
        max_tokens=max_tokens,
        stop=stop,
        tools=tools,
        extra=dict(extra or {}),
    )
