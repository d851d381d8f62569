"""The retrieval evaluation set: documents about Lumen Bikes (a fictional bicycle shop) and
questions, each with the passage of those documents that answers it.

Used by tests/knowledge/test_evaluation.py (a floor on quality) and bench/retrieval (prints
the figures). A question counts as a hit at k when one of the first k retrieved passages
contains its answer passage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, tasks
from chatbot.knowledge.models import Chunk, Source, SourceStatus
from chatbot.knowledge.retrieval import retrieve

EVAL_DIR = Path(__file__).parent / "eval"


@dataclass(frozen=True, slots=True)
class Result:
    questions: int
    hit_at_1: float
    hit_at_5: float
    mrr: float
    misses: list[str]


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load_questions() -> list[dict[str, str]]:
    questions: list[dict[str, str]] = json.loads((EVAL_DIR / "questions.json").read_text())
    return questions


def ingest_documents(bot: Bot) -> list[Source]:
    """Upload every evaluation document as a file source and sync it now."""
    sources = []
    for path in sorted((EVAL_DIR / "documents").iterdir()):
        upload = SimpleUploadedFile(path.name, path.read_bytes())
        source = actions.add_file(bot, upload=upload)
        tasks.sync_source.apply(args=[source.pk])
        source.refresh_from_db()
        if source.status != SourceStatus.READY:
            raise RuntimeError(f"{path.name} did not ingest: {source.error}")
        sources.append(source)
    return sources


def evaluate(bot: Bot) -> Result:
    questions = load_questions()
    corpus = [
        _normal(text) for text in Chunk.objects.filter(bot=bot).values_list("text", flat=True)
    ]
    hits_1 = hits_5 = 0
    reciprocal = 0.0
    misses = []
    for item in questions:
        answer = _normal(item["answer"])
        if not any(answer in chunk for chunk in corpus):
            raise RuntimeError(f"the answer to {item['question']!r} is in no chunk: fix the set")
        passages = retrieve(bot, item["question"], k=5)
        rank = next((i for i, p in enumerate(passages, start=1) if answer in _normal(p.text)), None)
        if rank == 1:
            hits_1 += 1
        if rank is not None:
            hits_5 += 1
            reciprocal += 1 / rank
        else:
            misses.append(item["question"])
    count = len(questions)
    return Result(
        questions=count,
        hit_at_1=hits_1 / count,
        hit_at_5=hits_5 / count,
        mrr=reciprocal / count,
        misses=misses,
    )
