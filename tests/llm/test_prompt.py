"""Prompt assembly: the budget, knowledge, trimming, images."""

from __future__ import annotations

import pytest

from chatbot.llm.adapters import LLMError
from chatbot.llm.prompt import build_request, message_tokens
from chatbot.llm.types import ChatMessage, ImagePart, Passage, TextPart

from .conftest import make_spec

SPEC = make_spec("http://127.0.0.1:1", context_window=1000, chars_per_token=1.0)


def turns(count: int, size: int = 50) -> list[ChatMessage]:
    history = []
    for n in range(count):
        history.append(ChatMessage.text("user", f"q{n} " + "x" * size))
        history.append(ChatMessage.text("assistant", f"a{n} " + "y" * size))
    return history


def test_the_newest_messages_are_kept_within_the_budget() -> None:
    history = [*turns(20), ChatMessage.text("user", "latest")]
    request = build_request(SPEC, system="Be brief.", history=history, max_tokens=200)
    kept = list(request.messages)
    assert kept[-1].plain_text == "latest"
    assert kept == history[-len(kept) :]  # a suffix: nothing from the middle is dropped
    assert kept[0].role == "user"  # the conversation opens with the visitor
    used = sum(message_tokens(m, SPEC) for m in kept) + len("Be brief.")
    assert used <= 1000 - 200
    # The budget is used: at most one more turn (plus a dropped leading reply) was left out.
    assert used > 1000 - 200 - 3 * message_tokens(history[0], SPEC)


def test_without_max_tokens_a_quarter_of_the_window_is_kept_for_the_reply() -> None:
    request = build_request(SPEC, system="", history=[*turns(20), ChatMessage.text("user", "?")])
    assert sum(message_tokens(m, SPEC) for m in request.messages) <= 750


def test_knowledge_is_numbered_and_bounded() -> None:
    passages = [
        Passage(id=str(n), title=f"Doc {n}", url=f"https://acme.test/{n}", text="z" * 120)
        for n in range(1, 10)
    ]
    request = build_request(
        SPEC, system="Persona.", history=[ChatMessage.text("user", "?")], knowledge=passages,
        max_tokens=100,
    )  # fmt: skip
    assert request.system.startswith("Persona.\n\nAnswer from the numbered sources")
    assert "[1] Doc 1 (https://acme.test/1)" in request.system
    # At most half of what is left goes to knowledge: not all nine passages fit.
    cited = [n for n in range(1, 10) if f"[{n}] Doc {n}" in request.system]
    assert cited == list(range(1, len(cited) + 1)) and 1 <= len(cited) < 9
    assert len(request.system) <= 1000 // 2 + len("Persona.") + 20


def test_a_message_too_long_for_the_model_is_refused_clearly() -> None:
    with pytest.raises(LLMError) as caught:
        build_request(SPEC, system="", history=[ChatMessage.text("user", "w" * 5000)])
    assert caught.value.error.code == "context"
    assert "too long" in caught.value.error.message and "shorten it" in caught.value.error.message


def test_a_system_prompt_filling_the_window_is_refused_clearly() -> None:
    with pytest.raises(LLMError) as caught:
        build_request(SPEC, system="s" * 990, history=[ChatMessage.text("user", "hi")])
    assert caught.value.error.code == "context" and "system prompt" in caught.value.error.message


def test_images_only_go_to_endpoints_that_take_them() -> None:
    picture = ChatMessage("user", (TextPart("what is it?"), ImagePart(b"png")))
    with pytest.raises(LLMError) as caught:
        build_request(SPEC, system="", history=[picture])
    assert caught.value.error.code == "unsupported"
    seeing = make_spec("http://127.0.0.1:1", context_window=1000, images=True)
    request = build_request(seeing, system="", history=[picture])
    assert request.messages[0].has_images
