from __future__ import annotations

import functools
import itertools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import pytest

from chatbot.llm import detect, registry, routing
from chatbot.llm.spec import EndpointSpec
from chatbot.llm.types import ChatMessage, ChatRequest, Event, Finish, TextDelta, Usage
from tests.asyncrun import run

_counter = itertools.count()


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh event loop in its own thread (see tests/asyncrun.py:
    pytest-asyncio tests break once the session's Playwright browser is up). Fixtures are
    resolved from the wrapped signature as usual."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        run(test(*args, **kwargs))

    return wrapper


def make_spec(url: str, kind: str = "openai", **overrides: Any) -> EndpointSpec:
    values: dict[str, Any] = {
        "name": f"ep{next(_counter)}",
        "kind": kind,
        "base_url": url + ("/v1" if kind == "openai" else ""),
        "model": "llama3.2",
        "connect_timeout": 2.0,
        "first_token_timeout": 5.0,
        "idle_timeout": 5.0,
        "queue_timeout": 2.0,
        "max_concurrency": 4,
        "context_window": 4096,
    }
    values.update(overrides)
    values.setdefault("key", f"test:{values['name']}")
    return EndpointSpec(**values)


def hello_request(**kw: Any) -> ChatRequest:
    return ChatRequest(messages=(ChatMessage.text("user", "Hi there"),), **kw)


async def collect(events: AsyncIterator[Event]) -> list[Event]:
    return [event async for event in events]


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finish_of(events: list[Event]) -> Finish:
    assert isinstance(events[-1], Finish), events
    return events[-1]


def usage_of(events: list[Event]) -> Usage:
    found = [e for e in events if isinstance(e, Usage)]
    assert len(found) == 1, events
    return found[0]


@pytest.fixture(autouse=True)
def _fresh_llm_state() -> Iterator[None]:
    routing.reset_state()
    registry.reset()
    detect.reset()
    yield
    routing.reset_state()
    registry.reset()
    detect.reset()
