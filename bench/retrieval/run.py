"""Retrieval quality on bench/retrieval's evaluation set: hit@1, hit@5, MRR, latency, misses.

    .venv/bin/python bench/retrieval/run.py            # SQLite (FTS5), in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/retrieval/run.py   # PostgreSQL
    .venv/bin/python bench/retrieval/run.py --split tune --misses        # while tuning

It builds a throw-away database (never the configured one); tenant "Lumen" gets a bot holding
both businesses' documents (the answers and the distractors), synced through the real
ingestion task; tenant "Copycat" gets the same documents twice over, so that a ranking that
used statistics shared across tenants, or leaked another tenant's chunks, would show.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
if not os.environ.get("DATABASE_URL"):
    os.environ["PARLEY_VAR_DIR"] = tempfile.mkdtemp(prefix="parley-bench-")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", choices=["tune", "test", "all"], default="test")
    parser.add_argument("--misses", action="store_true", help="list every miss at 1")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    from chatbot.celery import app

    app.conf.task_always_eager = True
    settings.DATABASES["default"].setdefault("TEST", {})
    if connection.vendor == "postgresql":
        settings.DATABASES["default"]["TEST"]["NAME"] = (
            f"{settings.DATABASES['default']['NAME']}_bench_retrieval"
        )
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        return run(connection.vendor, None if args.split == "all" else args.split, args.misses)
    finally:
        connection.creation.destroy_test_db(
            connection.settings_dict["NAME"], verbosity=0, keepdb=False
        )


def run(vendor: str, split: str | None, show_misses: bool) -> int:
    from django.conf import settings

    from bench.retrieval.evaluation import documents, evaluate, ingest, load, split_of
    from chatbot.bots.models import Bot
    from chatbot.knowledge import builtin_embedder
    from chatbot.knowledge.embedding import embed_texts
    from chatbot.knowledge.models import Chunk
    from chatbot.knowledge.retrieval import conversation_query, search
    from chatbot.tenants.models import Tenant

    # The built-in embedder when installed (make embedder): chunks get vectors at ingestion.
    hybrid = builtin_embedder.available()
    settings.KNOWLEDGE_EMBEDDER = "builtin" if hybrid else "off"

    questions, _unanswerable = load()
    chosen = [q for q in questions if split is None or split_of(q) == split]

    lumen = Tenant.objects.create(name="Lumen", slug="lumen")
    bot = Bot.objects.create(tenant=lumen, name="Lumen helper")
    started = time.perf_counter()
    paths = ingest(bot, documents())
    ingest_seconds = time.perf_counter() - started
    copycat = Tenant.objects.create(name="Copycat", slug="copycat")
    other = Bot.objects.create(tenant=copycat, name="Copycat helper")
    settings.KNOWLEDGE_EMBEDDER = "off"  # its vectors would only cost time
    for _ in range(2):
        ingest(other, documents())
    settings.KNOWLEDGE_EMBEDDER = "builtin" if hybrid else "off"

    timings: list[float] = []

    def searcher(turns: list[str], *, vectors: bool = False) -> list[tuple[str, str]]:
        started = time.perf_counter()
        query = conversation_query(turns)
        query_vector = None
        if vectors:
            embedded = embed_texts([query.text], query=True)
            assert embedded, "the built-in embedder gave no vector"
            query_vector = embedded[0]
        model = builtin_embedder.MODEL_ID if vectors else None
        hits = search(bot, query, k=5, query_vector=query_vector, vector_model=model)
        timings.append((time.perf_counter() - started) * 1000)
        foreign = [hit for hit in hits if hit.chunk.source_id not in paths]
        if foreign:
            raise AssertionError(f"another tenant's chunk was retrieved: {foreign}")
        return [(paths[hit.chunk.source_id], hit.chunk.text) for hit in hits]

    print(f"database: {vendor}; split: {split or 'all'}")
    print(
        f"corpus: {len(paths)} documents, {Chunk.objects.filter(bot=bot).count()} chunks "
        f"in the bot (another tenant holds {Chunk.objects.filter(bot=other).count()}); "
        f"ingested in {ingest_seconds:.2f} s"
    )
    modes: dict[str, Any] = {"full-text": searcher}
    if hybrid:
        modes["hybrid (full-text + built-in embedder)"] = lambda turns: searcher(
            turns, vectors=True
        )
    for mode, search_fn in modes.items():
        timings.clear()
        report = evaluate(search_fn, chosen)
        print(f"\n{mode}:")
        print("  language   questions  hit@1  hit@5  MRR")
        for language in ("en", "fr", None):
            s = report.scores(language=language)
            print(
                f"  {language or 'all':9}  {s.questions:9}  {s.hit_at_1:.2f}   "
                f"{s.hit_at_5:.2f}   {s.mrr:.3f}"
            )
        print(
            f"  latency: median {statistics.median(timings):.2f} ms, "
            f"p95 {sorted(timings)[int(len(timings) * 0.95)]:.2f} ms"
        )
        causes: dict[str, int] = {}
        for miss in report.misses():
            key = miss.cause.split(" (")[0].split(";")[0]
            causes[key] = causes.get(key, 0) + 1
        for cause, count in sorted(causes.items(), key=lambda kv: -kv[1]):
            print(f"  misses@1: {count:3} {cause}")
        if show_misses:
            for miss in report.misses():
                item: dict[str, Any] = miss.item
                print(f"    [{item['id']}] {item['question']!r} -> {miss.cause}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
