"""The retrieval evaluation: two businesses' documents in one bot, paraphrased questions.

`corpus/lumen/` is the business the bot answers for (a bike shop, 20 documents in English and
20 in French); `corpus/alpenglow/` is a second business (a ski shop, 14 documents) loaded into
the same bot as distractors: same vocabulary (rental, deposit, delivery, servicing, opening
hours), other facts. `questions.json` holds 200 questions (100 per language), written without
the documents' wording, each with the document and the sentence that answer it; 20 of them are
follow-ups that only make sense with the visitor's previous message. Questions with an even id
are the tuning half, odd ids the held-out half that the figures report. `unanswerable` lists
questions that no document answers (for the "I don't know" cut-off).

A question is a hit at k when one of the first k passages comes from its document and contains
its answer sentence. Used by bench/retrieval/run.py (the figures) and
tests/knowledge/test_evaluation.py (a floor).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
QUESTIONS = HERE / "questions.json"
SPLITS = ("tune", "test")


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def load() -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    data = json.loads(QUESTIONS.read_text(encoding="utf-8"))
    return data["questions"], data["unanswerable"]


def split_of(item: dict[str, Any]) -> str:
    return "tune" if item["id"] % 2 == 0 else "test"


def documents(businesses: Iterable[str] = ("lumen", "alpenglow")) -> list[Path]:
    return [path for name in businesses for path in sorted((CORPUS / name).rglob("*.md"))]


def ingest(bot: Any, paths: Iterable[Path]) -> dict[int, str]:
    """Upload each document as a file source of `bot`, sync it now; source id -> corpus path."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from chatbot.knowledge import actions, tasks
    from chatbot.knowledge.models import SourceStatus

    by_source: dict[int, str] = {}
    for path in paths:
        source = actions.add_file(bot, upload=SimpleUploadedFile(path.name, path.read_bytes()))
        tasks.sync_source.apply(args=[source.pk])
        source.refresh_from_db()
        if source.status != SourceStatus.READY:
            raise RuntimeError(f"{path} did not ingest: {source.error}")
        by_source[source.pk] = path.relative_to(CORPUS).as_posix()
    return by_source


@dataclass(slots=True)
class Outcome:
    item: dict[str, Any]
    rank: int | None  # of the first passage that answers, within the first 5
    top: str  # the corpus path of the first passage
    cause: str = ""  # for a miss at 1: why


@dataclass(slots=True)
class Scores:
    questions: int = 0
    hit_at_1: float = 0.0
    hit_at_5: float = 0.0
    mrr: float = 0.0


@dataclass(slots=True)
class Report:
    outcomes: list[Outcome] = field(default_factory=list)

    def scores(self, *, split: str | None = None, language: str | None = None) -> Scores:
        chosen = [
            o
            for o in self.outcomes
            if (split is None or split_of(o.item) == split)
            and (language is None or o.item["language"] == language)
        ]
        if not chosen:
            return Scores()
        count = len(chosen)
        return Scores(
            questions=count,
            hit_at_1=sum(o.rank == 1 for o in chosen) / count,
            hit_at_5=sum(o.rank is not None for o in chosen) / count,
            mrr=sum(1 / o.rank for o in chosen if o.rank) / count,
        )

    def misses(self, split: str | None = None) -> list[Outcome]:
        return [
            o for o in self.outcomes if o.rank != 1 and (split is None or split_of(o.item) == split)
        ]


# search(turns) -> [(corpus path, passage text), ...] best first
Searcher = Callable[[list[str]], list[tuple[str, str]]]


def _cause(item: dict[str, Any], passages: list[tuple[str, str]], rank: int | None) -> str:
    if not passages:
        return "nothing found"
    top_path = passages[0][0]
    if top_path.startswith("alpenglow/"):
        where = "a distractor (the other business) ranked first"
    elif top_path == item["document"]:
        where = "the right document, another passage, ranked first"
    elif top_path.split("/")[1] != item["language"]:
        where = "a document in the other language ranked first"
    else:
        where = f"another document ({top_path}) ranked first"
    return where + ("" if rank else "; the answer is not in the first 5")


def evaluate(search: Searcher, questions: list[dict[str, Any]]) -> Report:
    report = Report()
    for item in questions:
        turns = [*item.get("history", []), item["question"]]
        passages = search(turns)[:5]
        answer = normal(item["answer"])
        rank = next(
            (
                i
                for i, (path, text) in enumerate(passages, start=1)
                if path == item["document"] and answer in normal(text)
            ),
            None,
        )
        outcome = Outcome(item=item, rank=rank, top=passages[0][0] if passages else "")
        if rank != 1:
            outcome.cause = _cause(item, passages, rank)
        report.outcomes.append(outcome)
    return report
