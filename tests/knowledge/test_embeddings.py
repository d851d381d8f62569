"""The vector path: chunks embedded at ingestion through the LLM service's `embed`, vectors
kept as float32 bytes and ranked with numpy, fused with full-text by reciprocal rank."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, tasks
from chatbot.knowledge.models import Chunk, Source
from chatbot.knowledge.retrieval import fulltext_ranking, retrieve, search_with_embeddings
from chatbot.llm import registry
from chatbot.llm.models import ModelEndpoint
from chatbot.llm.models import Source as EndpointSource

from .embedding_server import DIMENSIONS, EmbeddingServer, embedding_server

pytestmark = pytest.mark.django_db

SHIPPING = "Orders of parts over 75 euros ship free within the Netherlands."
HOURS = "We open Tuesday to Saturday from 9 to 6, and Sunday mornings."
DONATIONS = "Each year we give forty refurbished bikes to the youth centre."


@pytest.fixture
def embedder() -> Iterator[EmbeddingServer]:
    registry.reset()
    with embedding_server() as server:
        ModelEndpoint.objects.create(
            name="embedder",
            kind="openai",
            base_url=server.url + "/v1",
            model="test-embed",
            embeddings=True,
            source=EndpointSource.ADMIN,
        )
        yield server
    registry.reset()


def _add_texts(bot: Bot, run_on_commit: Callable[..., Any]) -> list[Source]:
    with run_on_commit():
        return [
            actions.add_text(bot, title="Shipping", text=SHIPPING),
            actions.add_text(bot, title="Hours", text=HOURS),
            actions.add_text(bot, title="Donations", text=DONATIONS),
        ]


def test_chunks_get_normalised_float32_vectors(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    _add_texts(acme_bot, run_on_commit)
    blobs = list(Chunk.objects.filter(bot=acme_bot).values_list("embedding", flat=True))
    assert len(blobs) == 3 and all(blobs)
    for blob in blobs:
        vector = np.frombuffer(bytes(blob), dtype="<f4")
        assert vector.shape == (DIMENSIONS,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    # The title goes with the text, as it does into full-text search.
    assert any(text.startswith("Shipping\n") for text in embedder.texts)


def test_vectors_find_what_words_alone_miss(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    _add_texts(acme_bot, run_on_commit)
    shipping = Chunk.objects.get(bot=acme_bot, title="Shipping")
    # "postage" appears nowhere: full-text search has nothing to go on...
    assert fulltext_ranking(acme_bot, "How much is postage?") == []
    # ...and the hybrid ranking puts the shipping passage first.
    hits = search_with_embeddings(acme_bot, "How much is postage?", k=3)
    assert hits[0].chunk.pk == shipping.pk
    assert hits[0].vector_rank == 1
    assert retrieve(acme_bot, "Do you support a charity?")[0].title == "Donations"


def test_vector_ranking_never_crosses_tenants(
    acme_bot: Bot, bravo_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    _add_texts(acme_bot, run_on_commit)
    _add_texts(bravo_bot, run_on_commit)
    for bot in (acme_bot, bravo_bot):
        own = set(Chunk.objects.filter(bot=bot).values_list("id", flat=True))
        hits = search_with_embeddings(bot, "postage charity opening hours", k=10)
        assert {hit.chunk.pk for hit in hits} == own


def test_an_unchanged_resync_makes_no_embedding_calls(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    sources = _add_texts(acme_bot, run_on_commit)
    calls = embedder.requests
    for source in sources:
        tasks.sync_source.apply(args=[source.pk])
    assert embedder.requests == calls


def test_editing_one_paragraph_reembeds_only_that_chunk(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    paragraphs = [
        f"Paragraph {n}: " + " ".join(f"word{n}x{i}" for i in range(150)) for n in range(4)
    ]
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Long", text="\n\n".join(paragraphs))
    chunks = Chunk.objects.filter(source=source).count()
    assert chunks >= 3
    embedded_before = len(embedder.texts)
    paragraphs[-1] = "Paragraph 3 was rewritten entirely."
    with run_on_commit():
        actions.update_source(source, body="\n\n".join(paragraphs))
    assert 1 <= len(embedder.texts) - embedded_before < chunks


def test_a_failing_embedding_endpoint_leaves_full_text_working(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    embedder.fail_with = 500
    sources = _add_texts(acme_bot, run_on_commit)
    for source in sources:
        source.refresh_from_db()
        assert source.status == "ready"
        assert source.progress["embedded"] == 0
    assert not Chunk.objects.filter(bot=acme_bot, embedding__isnull=False).exists()
    assert retrieve(acme_bot, "When do you open on Sunday?")[0].title == "Hours"

    # Once the endpoint is back, the next sync fills the vectors in.
    embedder.fail_with = None
    tasks.sync_source.apply(args=[sources[0].pk])
    assert Chunk.objects.filter(source=sources[0], embedding__isnull=False).count() == 1


def test_retrieval_survives_an_embedding_endpoint_that_fails_at_question_time(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any]
) -> None:
    _add_texts(acme_bot, run_on_commit)
    embedder.fail_with = 503
    assert retrieve(acme_bot, "When do you open on Sunday?")[0].title == "Hours"


def test_vectors_of_another_model_are_not_compared_and_the_next_sync_replaces_them(
    acme_bot: Bot, embedder: EmbeddingServer, run_on_commit: Callable[..., Any], settings: Any
) -> None:
    from chatbot.knowledge import builtin_embedder

    sources = _add_texts(acme_bot, run_on_commit)
    chunks = Chunk.objects.filter(bot=acme_bot)
    assert set(chunks.values_list("embedding_model", flat=True)) == {"openai:test-embed"}
    # Vectors recorded before the model was stored count as the endpoint's...
    chunks.update(embedding_model=None)
    [best, *_] = search_with_embeddings(acme_bot, "How much is postage?", k=3)
    assert best.chunk.title == "Shipping" and best.vector_rank == 1

    # ...never as the built-in model's: the operator switched, and the endpoint's vectors
    # mean nothing next to the built-in model's question (whatever their size).
    settings.KNOWLEDGE_EMBEDDER = "builtin"
    hits = search_with_embeddings(acme_bot, "How much is postage?", k=3)
    assert all(hit.vector_rank is None for hit in hits)
    # The next sync of each source embeds its chunks again, with the model now in use.
    for source in sources:
        tasks.sync_source.apply(args=[source.pk])
    assert set(chunks.values_list("embedding_model", flat=True)) == {builtin_embedder.MODEL_ID}
    [best, *_] = search_with_embeddings(acme_bot, "How much is postage?", k=3)
    assert best.chunk.title == "Shipping" and best.vector_rank == 1
    assert best.as_passage().relevant
