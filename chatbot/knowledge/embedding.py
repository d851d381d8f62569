"""Embeddings for chunks and questions, through the LLM service's `embed`.

Embeddings are optional: when no endpoint offers them, or the endpoint fails, knowledge falls
back to full-text search alone. A failure is logged, never raised to the caller.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync

log = logging.getLogger(__name__)

BATCH = 32


async def aembed_texts(texts: list[str]) -> list[list[float]] | None:
    """Vectors for `texts`, or None when embeddings are unavailable right now."""
    from chatbot.llm.service import EmbeddingError, embed

    if not texts:
        return []
    vectors: list[list[float]] = []
    for start in range(0, len(texts), BATCH):
        try:
            batch = await embed(texts[start : start + BATCH])
        except EmbeddingError as exc:
            log.warning("knowledge: embeddings unavailable: %s", exc)
            return None
        if batch is None:
            return None
        vectors.extend(batch)
    return vectors


def embed_texts(texts: list[str]) -> list[list[float]] | None:
    """Sync twin of `aembed_texts`, for Celery tasks and sync views."""
    return async_to_sync(aembed_texts)(texts)
