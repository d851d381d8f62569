"""Knowledge with the real llama.cpp server (the generated tiny model): the passages reach the
model's prompt, and the "test your bot" page shows the model's answer with its sources."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client, override_settings
from django.urls import reverse

from chatbot.bots.models import Bot
from chatbot.knowledge import actions
from chatbot.knowledge.retrieval import retrieve
from chatbot.llm import registry, routing
from chatbot.llm.service import stream_reply
from chatbot.llm.types import ChatMessage, Event, Passage, Usage
from chatbot.tenants.models import User
from tests.fixtures.llama import LlamaServer
from tests.llama.tiny_model import REPLY

pytestmark = [pytest.mark.llama, pytest.mark.django_db]

WARRANTY = "Every Lumen frame is guaranteed for life for its first owner; batteries for two years."


@pytest.fixture
def tiny_llama(llama_server: LlamaServer) -> Iterator[None]:
    endpoint = {
        "name": "tiny",
        "kind": "openai",
        "url": llama_server.url + "/v1",
        "model": llama_server.model,
        "auth": "bearer",
        "api_key": llama_server.key,
        "context_window": llama_server.context,
        "chars_per_token": 1.0,  # the tiny model spends a token per character
    }
    routing.reset_state()
    registry.reset()
    with override_settings(LLM_ENDPOINTS_JSON=json.dumps([endpoint]), LLM_ENDPOINTS_FILE=""):
        yield
    routing.reset_state()
    registry.reset()


def _prompt_tokens(bot: Bot, question: str, passages: list[Passage]) -> int:
    async def run() -> list[Event]:
        history = [ChatMessage.text("user", question)]
        return [event async for event in stream_reply(bot, history, knowledge=passages)]

    events = async_to_sync(run)()
    return next(event.prompt_tokens for event in events if isinstance(event, Usage))


def test_retrieved_passages_reach_the_models_prompt(
    acme_bot: Bot, tiny_llama: None, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Warranty", text=WARRANTY)
    question = "How long is the frame warranty?"
    passages = retrieve(acme_bot, question)
    assert [p.title for p in passages] == ["Warranty"]
    without = _prompt_tokens(acme_bot, question, [])
    with_knowledge = _prompt_tokens(acme_bot, question, passages)
    # One token per character: the passage, its title and the instruction are in the prompt.
    assert with_knowledge - without > len(WARRANTY)


def test_the_test_page_shows_the_answer_and_its_sources(
    alice: User,
    acme_bot: Bot,
    tiny_llama: None,
    client_for: Callable[[User], Client],
    run_on_commit: Callable[..., Any],
) -> None:
    with run_on_commit():
        actions.add_text(acme_bot, title="Warranty", text=WARRANTY)
    response = client_for(alice).post(
        reverse("knowledge:test"), {"bot": acme_bot.pk, "question": "frame warranty?"}
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert REPLY in page
    assert "Sources:" in page and "Warranty" in page
    assert "guaranteed for life" in page
    assert 'role="alert"' not in page


@pytest.fixture
def llama_embedder() -> Iterator[str]:
    """A second llama-server, started with --embeddings (mean pooling), as the embedder."""
    import os
    import secrets

    from chatbot.llm.models import ModelEndpoint
    from chatbot.llm.models import Source as EndpointSource
    from tests.fixtures.llama import start_llama_server, stop

    key = "sk-emb-" + secrets.token_hex(8)
    binary = os.environ["PARLEY_LLAMA_SERVER"]
    process, url, log = start_llama_server(
        binary, key=key, extra=("--embeddings", "--pooling", "mean"), parallel=1
    )
    routing.reset_state()
    registry.reset()
    try:
        endpoint = ModelEndpoint(
            tenant=None,
            name="tiny-embedder",
            kind="openai",
            base_url=f"{url}/v1",
            model="parley-tiny-llama",
            auth="bearer",
            embeddings=True,
            source=EndpointSource.ADMIN,
        )
        endpoint.set_secret(key)
        endpoint.save()
        yield url
    finally:
        stop(process)
        log.unlink(missing_ok=True)
        routing.reset_state()
        registry.reset()


def test_the_real_engine_embeds_chunks_and_questions(
    acme_bot: Bot,
    bravo_bot: Bot,
    llama_server: LlamaServer,
    llama_embedder: str,
    run_on_commit: Callable[..., Any],
) -> None:
    """The tiny model's vectors mean nothing, but they travel the real wire both ways."""
    import numpy as np

    from chatbot.knowledge.models import Chunk
    from chatbot.knowledge.retrieval import search_with_embeddings

    with run_on_commit():
        actions.add_text(acme_bot, title="Warranty", text=WARRANTY)
        actions.add_text(acme_bot, title="Hours", text="Open from nine to six.")
        actions.add_text(bravo_bot, title="Warranty", text=WARRANTY)
    for blob in Chunk.objects.values_list("embedding", flat=True):
        vector = np.frombuffer(bytes(blob or b""), dtype="<f4")
        assert vector.shape[0] > 0
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-4
    hits = search_with_embeddings(acme_bot, "frame warranty", k=5)
    # Both rankings took part, and only Acme's chunks were candidates.
    assert hits[0].chunk.title == "Warranty" and hits[0].fulltext_rank == 1
    assert all(hit.vector_rank is not None for hit in hits)
    assert {hit.chunk.bot_id for hit in hits} == {acme_bot.pk}
