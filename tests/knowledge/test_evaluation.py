"""Retrieval quality on the shipped evaluation set stays above a floor.

The floor sits a little under the figures bench/retrieval measures (see docs/knowledge.md), so
a change that makes retrieval clearly worse fails here.
"""

from __future__ import annotations

from typing import Any

import pytest

from chatbot.bots.models import Bot

from .evaluation import evaluate, ingest_documents

pytestmark = pytest.mark.django_db


def test_full_text_retrieval_answers_the_evaluation_questions(acme_bot: Bot) -> None:
    ingest_documents(acme_bot)
    result = evaluate(acme_bot)
    assert result.questions == 50
    # Measured: SQLite 0.70 / 0.90, PostgreSQL 0.76 / 0.92 (hit@1 / hit@5).
    assert result.hit_at_1 >= 0.65, result.misses
    assert result.hit_at_5 >= 0.85, result.misses


def test_full_text_on_the_two_business_set_with_distractors(acme_bot: Bot) -> None:
    """bench/retrieval's set (200 questions, en and fr, a second business in the same bot)."""
    from bench.retrieval.evaluation import documents, evaluate, ingest, load
    from chatbot.knowledge.retrieval import conversation_query, search

    paths = ingest(acme_bot, documents())
    questions, _ = load()

    def searcher(turns: list[str]) -> list[tuple[str, str]]:
        hits = search(acme_bot, conversation_query(turns), k=5)
        return [(paths[hit.chunk.source_id], hit.chunk.text) for hit in hits]

    report = evaluate(searcher, questions)
    everything = report.scores()
    assert everything.questions == 200
    # Measured (full-text): held-out half 0.60 / 0.94, tuning half 0.57 / 0.85 (hit@1 / hit@5).
    for language in ("en", "fr"):
        scores = report.scores(language=language)
        assert scores.hit_at_1 >= 0.5, (language, scores)
        assert scores.hit_at_5 >= 0.75, (language, scores)


def test_hybrid_with_the_builtin_embedder_on_the_two_business_set(
    acme_bot: Bot, settings: Any
) -> None:
    """The same set ranked by full-text and the built-in multilingual model (about a minute)."""
    from bench.retrieval.evaluation import documents, evaluate, ingest, load
    from chatbot.knowledge.models import Chunk
    from chatbot.knowledge.retrieval import search_with_embeddings

    settings.KNOWLEDGE_EMBEDDER = "builtin"
    paths = ingest(acme_bot, documents())
    assert not Chunk.objects.filter(bot=acme_bot, embedding__isnull=True).exists()
    questions, _ = load()

    def searcher(turns: list[str]) -> list[tuple[str, str]]:
        hits = search_with_embeddings(acme_bot, turns, k=5)
        return [(paths[hit.chunk.source_id], hit.chunk.text) for hit in hits]

    report = evaluate(searcher, questions)
    # Measured (all 200): en 0.81 / 0.97, fr 0.79 / 0.94 (hit@1 / hit@5); held-out half 0.83 /
    # 0.97. French must stay close to English: the reason for a multilingual model.
    by_language = {language: report.scores(language=language) for language in ("en", "fr")}
    for language, scores in by_language.items():
        assert scores.hit_at_1 >= 0.75, (language, scores)
        assert scores.hit_at_5 >= 0.9, (language, scores)
    assert abs(by_language["en"].hit_at_1 - by_language["fr"].hit_at_1) <= 0.08, by_language
