"""Retrieval quality on the shipped evaluation set stays above a floor.

The floor sits a little under the figures bench/retrieval measures (see docs/knowledge.md), so
a change that makes retrieval clearly worse fails here.
"""

from __future__ import annotations

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
