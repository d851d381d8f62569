"""Retrieval quality on the evaluation set: prints hit@1, hit@5, MRR and query latency.

    .venv/bin/python bench/retrieval/run.py            # SQLite (FTS5), in a temporary folder
    DATABASE_URL=postgres://... .venv/bin/python bench/retrieval/run.py   # PostgreSQL

It builds a throw-away database (never the configured one), uploads the documents of
tests/knowledge/eval as a tenant's files, syncs them through the real ingestion task, and asks
every question through `retrieve`. Ranking is full-text only unless the operator's endpoints
(LLM_ENDPOINTS) include one that offers embeddings; then it is hybrid.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")
os.environ.setdefault("LOG_LEVEL", "WARNING")
if not os.environ.get("DATABASE_URL"):
    os.environ["PARLEY_VAR_DIR"] = tempfile.mkdtemp(prefix="parley-bench-")


def main() -> int:
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
        return run(connection.vendor)
    finally:
        connection.creation.destroy_test_db(
            connection.settings_dict["NAME"], verbosity=0, keepdb=False
        )


def run(vendor: str) -> int:
    from chatbot.bots.models import Bot
    from chatbot.knowledge.models import Chunk
    from chatbot.knowledge.retrieval import has_embeddings, retrieve
    from chatbot.tenants.models import Tenant
    from tests.knowledge.evaluation import evaluate, ingest_documents, load_questions

    tenant = Tenant.objects.create(name="Lumen Bikes", slug="lumen-bikes")
    bot = Bot.objects.create(tenant=tenant, name="Lumen helper")
    started = time.perf_counter()
    sources = ingest_documents(bot)
    ingest_seconds = time.perf_counter() - started
    result = evaluate(bot)

    timings = []
    for item in load_questions():
        started = time.perf_counter()
        retrieve(bot, item["question"], k=5)
        timings.append((time.perf_counter() - started) * 1000)

    mode = "hybrid (full-text + embeddings)" if has_embeddings(bot) else "full-text only"
    print(f"database: {vendor}; ranking: {mode}")
    print(
        f"corpus: {len(sources)} documents, {Chunk.objects.filter(bot=bot).count()} chunks; "
        f"ingested in {ingest_seconds:.2f} s"
    )
    print(f"questions: {result.questions}")
    print(f"hit@1: {result.hit_at_1:.2f}")
    print(f"hit@5: {result.hit_at_5:.2f}")
    print(f"MRR@5: {result.mrr:.3f}")
    print(
        f"retrieve latency: median {statistics.median(timings):.2f} ms, max {max(timings):.2f} ms"
    )
    for question in result.misses:
        print(f"miss@5: {question}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
