"""Find the passages of a bot's knowledge that answer a question.

Full-text ranking always: the database's index finds the chunks that share a term with the
question (SQLite FTS5, PostgreSQL tsvector, both over the terms `analysis` computed at
ingestion), and BM25 ranks them with the statistics of this bot alone (its number of chunks,
their average length, how many of them hold each term), so another tenant's texts never move
this bot's ranking. When the bot's chunks carry embeddings and the question is embedded, a
vector ranking too, and the two are fused by reciprocal rank. The tenant and the bot are
conditions of every ranking query: a chunk of another tenant is never a candidate, so it can
never be "filtered out too late".

The question is the conversation's last visitor message, with the previous ones added at a
lower weight (`conversation_query`): "and for e-bikes?" keeps its subject.

Call `retrieve` from sync code and `aretrieve` from async code (the reply task).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.db.models import Q

from chatbot.bots.models import Bot
from chatbot.llm.types import Passage

from . import builtin_embedder
from .analysis import analyze, language_name, query_language
from .embedding import aembed_texts, embed_texts, min_similarity, model_in_use
from .models import Chunk, SourceKind

log = logging.getLogger(__name__)

# Candidates taken from each ranking before fusion.
CANDIDATES = 30
# At most this many chunks sharing a term with the question are scored by BM25 (the engine's
# own rank picks them when there are more; then rare terms' counts are estimates).
FULLTEXT_POOL = 1000
# Reciprocal-rank fusion constant (Cormack et al. use 60): the lower, the more the head of
# each list counts. With the multilingual built-in model the vector ranking is the better
# one (tuning half, vectors alone: hit@1 0.76, full-text 0.60), so it weighs 3 and k is 10:
# the full-text ranking then decides between passages the vectors put close, and lifts a
# passage that names the question's rare words. Tuned on bench/retrieval's tuning half.
RRF_K = 10
# The vector ranking's weight in the fusion (the full-text one has 1).
VECTOR_WEIGHT = 3.0
MAX_QUERY_TERMS = 48
MAX_QUERY_CHARS = 2000

# BM25 (Robertson et al.): k1 saturates repeated words, b normalises by passage length. A
# title or heading term counts TITLE_WEIGHT times. Tuned on bench/retrieval's tuning half.
BM25_K1 = 1.2
BM25_B = 0.5
TITLE_WEIGHT = 1.0
# The visitor messages before the last one: how many, and how much their words weigh.
FOLLOWUP_TURNS = 2
FOLLOWUP_WEIGHT = 0.5
# A passage in another language than the question's (when that is clear) scores this share.
OTHER_LANGUAGE_FACTOR = 0.5

# The question is analysed in each of these languages as well as the bot's, so that a bot
# whose documents are in several languages finds each in its own.
QUERY_LANGUAGES = ("english", "french", "spanish", "german")


def bot_language(bot: Bot) -> str:
    """The bot's language as a Snowball name: the default for documents too short to tell."""
    locale = getattr(bot, "default_locale", "") or settings.LANGUAGE_CODE
    return language_name(locale)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What to search for: texts with the weight of their words (the last message is 1)."""

    parts: tuple[tuple[str, float], ...]

    @classmethod
    def of(cls, text: str) -> SearchQuery:
        return cls(((text.strip()[:MAX_QUERY_CHARS], 1.0),))

    @property
    def text(self) -> str:
        """One string for an embedding model: the earlier messages first, as they were said."""
        return "\n".join(text for text, _ in self.parts if text)

    @property
    def language(self) -> str | None:
        return query_language(self.parts[-1][0]) if self.parts else None

    def is_empty(self) -> bool:
        return not any(text.strip() for text, _ in self.parts)

    def terms(self, language: str) -> dict[str, float]:
        """Each term of the query in `language`, with its weight (the highest wins)."""
        weights: dict[str, float] = {}
        for text, weight in self.parts:
            for term in analyze(text, language):
                if weights.get(term, 0.0) < weight:
                    weights[term] = weight
        return dict(list(weights.items())[:MAX_QUERY_TERMS])


def conversation_query(turns: Sequence[str]) -> SearchQuery:
    """The query for the visitor's latest message, `turns` being their messages, oldest first.

    A follow-up ("and for e-bikes?") names only what changed; the subject is in an earlier
    message. Those come in at FOLLOWUP_WEIGHT, so they help when the last message lacks words
    and cannot outvote it when it has its own.
    """
    texts = [turn.strip()[:MAX_QUERY_CHARS] for turn in turns if turn and turn.strip()]
    if not texts:
        return SearchQuery(())
    earlier = texts[:-1][-FOLLOWUP_TURNS:]
    return SearchQuery((*((text, FOLLOWUP_WEIGHT) for text in earlier), (texts[-1], 1.0)))


@dataclass(slots=True)
class Hit:
    """A retrieved chunk with how it was found (shown on the "test your bot" page)."""

    chunk: Chunk
    score: float
    fulltext_rank: int | None = None
    vector_rank: int | None = None
    # Share of the question's weight (idf-weighted terms) found in the chunk, 0..1.
    coverage: float = 0.0
    # Cosine similarity of the chunk's vector to the question's, when both exist.
    similarity: float | None = None
    # From which similarity the vector says "answers": each embedding model has its scale.
    min_similarity: float = 1.0

    def as_passage(self) -> Passage:
        document, source = self.chunk.document, self.chunk.source
        # A file is cited by the name the manager gave it (the file name by default), not by
        # whatever its metadata says; a web page by its own title and address.
        title = source.title if source.kind == SourceKind.FILE else document.title or source.title
        return Passage(
            id=str(self.chunk.pk),
            title=title,
            url=document.url,
            text=self.chunk.text,
            heading=self.chunk.heading,
            relevant=is_relevant(self),
        )


# A chunk answers when it holds at least this share of the question's weight, or its vector
# is at least as close as its model's cut-off (`embedding.min_similarity`). Tuned on
# bench/retrieval: the unanswerable questions against the answerable ones of the tuning half.
MIN_COVERAGE = 0.2


def is_relevant(hit: Hit) -> bool:
    if hit.coverage >= MIN_COVERAGE:
        return True
    return hit.similarity is not None and hit.similarity >= hit.min_similarity


@dataclass(slots=True)
class _Scored:
    chunk_id: int
    score: float
    coverage: float


@dataclass(slots=True)
class _Candidates:
    rows: list[tuple[int, str, str, str]] = field(default_factory=list)
    chunks: int = 0
    total_length: int = 0


def _candidates_sqlite(bot: Bot, terms: list[str], limit: int) -> _Candidates:
    # Each term is made of letters and digits only, and quoted: no FTS5 syntax can get in.
    match = " OR ".join(f'"{term}"' for term in terms)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.id, c.language, c.search_title, c.search_text, s.n, s.total
            FROM knowledge_chunk_fts
            JOIN knowledge_chunk AS c ON c.id = knowledge_chunk_fts.rowid
            CROSS JOIN (
                SELECT count(*) AS n, coalesce(sum(search_length), 0) AS total
                FROM knowledge_chunk WHERE tenant_id = %s AND bot_id = %s
            ) AS s
            WHERE knowledge_chunk_fts MATCH %s AND c.tenant_id = %s AND c.bot_id = %s
            ORDER BY bm25(knowledge_chunk_fts, 2.0, 1.0), c.id
            LIMIT %s
            """,
            [bot.tenant_id, bot.pk, match, bot.tenant_id, bot.pk, limit],
        )
        return _collect(cursor.fetchall())


def _candidates_postgres(bot: Bot, terms: list[str], limit: int) -> _Candidates:
    tsquery = " | ".join(f"'{term}'" for term in terms)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.id, c.language, c.search_title, c.search_text, s.n, s.total
            FROM knowledge_chunk AS c
            CROSS JOIN to_tsquery('simple'::regconfig, %s) AS q
            CROSS JOIN (
                SELECT count(*) AS n, coalesce(sum(search_length), 0) AS total
                FROM knowledge_chunk WHERE tenant_id = %s AND bot_id = %s
            ) AS s
            WHERE c.tenant_id = %s AND c.bot_id = %s AND c.search_vector @@ q
            ORDER BY ts_rank(c.search_vector, q, 1) DESC, c.id
            LIMIT %s
            """,
            [tsquery, bot.tenant_id, bot.pk, bot.tenant_id, bot.pk, limit],
        )
        return _collect(cursor.fetchall())


def _collect(rows: list[tuple[int, str, str, str, int, int]]) -> _Candidates:
    if not rows:
        return _Candidates()
    return _Candidates(
        rows=[(row[0], row[1], row[2], row[3]) for row in rows],
        chunks=int(rows[0][4]),
        total_length=int(rows[0][5]),
    )


def _bm25(query: SearchQuery, found: _Candidates) -> list[_Scored]:
    terms_by_language: dict[str, dict[str, float]] = {}
    documents: list[tuple[int, str, dict[str, float], Counter[str], Counter[str], int]] = []
    document_frequency: Counter[str] = Counter()
    for chunk_id, language, title, text in found.rows:
        if language not in terms_by_language:
            terms_by_language[language] = query.terms(language)
        wanted = terms_by_language[language]
        title_terms = Counter(t for t in title.split() if t in wanted)
        body = text.split()
        text_terms = Counter(t for t in body if t in wanted)
        document_frequency.update(set(title_terms) | set(text_terms))
        documents.append((chunk_id, language, wanted, title_terms, text_terms, len(body)))
    count = max(found.chunks, len(found.rows))
    average = max(found.total_length / count, 1.0) if count else 1.0

    def idf(term: str) -> float:
        df = document_frequency.get(term, 0)
        return math.log(1.0 + (count - df + 0.5) / (df + 0.5))

    asked_in = query.language
    scored: list[_Scored] = []
    for chunk_id, language, wanted, title_terms, text_terms, length in documents:
        norm = BM25_K1 * (1 - BM25_B + BM25_B * length / average)
        score = matched = 0.0
        possible = 0.0
        for term, weight in wanted.items():
            weighted_idf = weight * idf(term)
            possible += weighted_idf
            tf = text_terms.get(term, 0) + TITLE_WEIGHT * title_terms.get(term, 0)
            if tf:
                matched += weighted_idf
                score += weighted_idf * tf * (BM25_K1 + 1) / (tf + norm)
        if not score:
            continue  # a candidate only through another language's reading of the question
        coverage = matched / possible if possible else 0.0
        if asked_in is not None and language != asked_in:
            score *= OTHER_LANGUAGE_FACTOR
        scored.append(_Scored(chunk_id, score, coverage))
    scored.sort(key=lambda s: (-s.score, s.chunk_id))
    return scored


def fulltext_ranking(
    bot: Bot, query: SearchQuery | str, limit: int = CANDIDATES
) -> list[tuple[int, float]]:
    """(chunk id, coverage) of this bot's best chunks by BM25, best first."""
    if isinstance(query, str):
        query = SearchQuery.of(query)
    languages = dict.fromkeys((bot_language(bot), *QUERY_LANGUAGES))
    terms = list(dict.fromkeys(t for language in languages for t in query.terms(language)))
    if not terms:
        return []
    find = _candidates_postgres if connection.vendor == "postgresql" else _candidates_sqlite
    scored = _bm25(query, find(bot, terms, FULLTEXT_POOL))
    return [(s.chunk_id, s.coverage) for s in scored[:limit]]


def has_embeddings(bot: Bot) -> bool:
    return Chunk.objects.filter(
        tenant_id=bot.tenant_id, bot_id=bot.pk, embedding__isnull=False
    ).exists()


def to_vector_bytes(vector: list[float]) -> bytes:
    """float32, L2-normalised, so that ranking is a dot product."""
    array = np.asarray(vector, dtype=np.float32)
    norm = float(np.linalg.norm(array))
    if norm > 0:
        array = array / norm
    return array.astype("<f4").tobytes()


def vector_ranking(
    bot: Bot, query_vector: list[float], limit: int = CANDIDATES, *, model: str | None = None
) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) of this bot's chunks closest to the question, best first.

    `model` made the question's vector: only chunks embedded by it are compared. Vectors
    recorded without their model (before it was stored) count as an endpoint's, never as the
    built-in model's: they may be the English MiniLM's, the same size as e5's.
    """
    query = np.frombuffer(to_vector_bytes(query_vector), dtype="<f4")
    chunks = Chunk.objects.filter(tenant_id=bot.tenant_id, bot_id=bot.pk, embedding__isnull=False)
    if model == builtin_embedder.MODEL_ID:
        chunks = chunks.filter(embedding_model=model)
    elif model is not None:
        chunks = chunks.filter(Q(embedding_model=model) | Q(embedding_model__isnull=True))
    rows = chunks.values_list("id", "embedding", "embedding_parts")
    ids: list[int] = []
    scores: list[float] = []
    for chunk_id, blob, parts_blob in rows:
        vector = np.frombuffer(bytes(blob or b""), dtype="<f4")
        # Vectors from another embedding model (a different size) cannot be compared.
        if vector.shape != query.shape:
            continue
        best = float(vector @ query)
        parts = np.frombuffer(bytes(parts_blob or b""), dtype="<f4")
        if parts.size and parts.size % query.size == 0:
            # The passage's closest paragraph, when it has several (`ingest.embedding_parts`).
            best = max(best, float((parts.reshape(-1, query.size) @ query).max()))
        ids.append(chunk_id)
        scores.append(best)
    if not ids:
        return []
    order = np.argsort(-np.asarray(scores), kind="stable")[:limit]
    return [(ids[i], scores[i]) for i in order]


def fuse(
    rankings: list[list[int]], k: int = RRF_K, weights: Sequence[float] = ()
) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: each list adds weight/(k + rank) to an id's score."""
    scores: dict[int, float] = {}
    for index, ranking in enumerate(rankings):
        weight = weights[index] if index < len(weights) else 1.0
        for rank, chunk_id in enumerate(ranking, start=1):
            scores[chunk_id] = scores.get(chunk_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def search(
    bot: Bot,
    query: SearchQuery | str,
    k: int = 5,
    *,
    query_vector: list[float] | None = None,
    vector_model: str | None = None,
) -> list[Hit]:
    """The best `k` chunks for `query`; `query_vector` adds the vector ranking when given,
    over the chunks embedded by `vector_model` (the model that made it; any when None)."""
    if isinstance(query, str):
        query = SearchQuery.of(query)
    if query.is_empty() or k <= 0:
        return []
    fulltext = fulltext_ranking(bot, query)
    vector = (
        vector_ranking(bot, query_vector, model=vector_model) if query_vector is not None else []
    )
    fused = fuse([[i for i, _ in fulltext], [i for i, _ in vector]], weights=(1.0, VECTOR_WEIGHT))
    fused = fused[:k]
    if not fused:
        return []
    ids = [chunk_id for chunk_id, _ in fused]
    # The tenant and bot conditions again: the rows are read by id, and ids are never trusted.
    chunks = Chunk.objects.filter(tenant_id=bot.tenant_id, bot_id=bot.pk, pk__in=ids)
    by_id = {chunk.pk: chunk for chunk in chunks.select_related("document", "source")}
    fulltext_found = {chunk_id: (rank, cov) for rank, (chunk_id, cov) in enumerate(fulltext, 1)}
    vector_found = {chunk_id: (rank, sim) for rank, (chunk_id, sim) in enumerate(vector, 1)}
    floor = min_similarity(vector_model)
    hits = []
    for chunk_id, score in fused:
        if chunk_id not in by_id:
            continue
        fulltext_rank, coverage = fulltext_found.get(chunk_id, (None, 0.0))
        vector_rank, similarity = vector_found.get(chunk_id, (None, None))
        hits.append(
            Hit(
                chunk=by_id[chunk_id],
                score=score,
                fulltext_rank=fulltext_rank,
                vector_rank=vector_rank,
                coverage=coverage,
                similarity=similarity,
                min_similarity=floor,
            )
        )
    return hits


def _as_query(query: SearchQuery | str | Sequence[str]) -> SearchQuery:
    if isinstance(query, SearchQuery):
        return query
    if isinstance(query, str):
        return SearchQuery.of(query)
    return conversation_query(query)


def search_with_embeddings(
    bot: Bot, query: SearchQuery | str | Sequence[str], k: int = 5
) -> list[Hit]:
    """`search`, embedding the question first when the bot's chunks have vectors (sync)."""
    search_query = _as_query(query)
    query_vector = None
    model = model_in_use() if not search_query.is_empty() and has_embeddings(bot) else None
    if model is not None:
        vectors = embed_texts([search_query.text], query=True)
        query_vector = vectors[0] if vectors else None
    return search(bot, search_query, k, query_vector=query_vector, vector_model=model)


def retrieve(bot: Bot, query: SearchQuery | str | Sequence[str], k: int = 5) -> list[Passage]:
    """The `k` passages of the bot's knowledge that best match `query`, for sync code.

    `query` is a question, or the visitor's messages oldest first (`conversation_query`).
    Cheap when the bot has no knowledge: two indexed queries that find nothing. Never raises:
    knowledge makes answers better but must not stop the bot from answering.
    """
    try:
        return [hit.as_passage() for hit in search_with_embeddings(bot, query, k)]
    except Exception:
        log.exception("knowledge: retrieval failed for bot %s", bot.pk)
        return []


async def aretrieve(
    bot: Bot, query: SearchQuery | str | Sequence[str], k: int = 5
) -> list[Passage]:
    """`retrieve` for async code: the same result, without blocking the loop."""
    try:
        search_query = _as_query(query)
        query_vector = None
        model = None
        if not search_query.is_empty() and await sync_to_async(has_embeddings)(bot):
            model = await sync_to_async(model_in_use)()
        if model is not None:
            vectors = await aembed_texts([search_query.text], query=True)
            query_vector = vectors[0] if vectors else None
        hits = await sync_to_async(search)(
            bot, search_query, k, query_vector=query_vector, vector_model=model
        )
        return [hit.as_passage() for hit in hits]
    except Exception:
        log.exception("knowledge: retrieval failed for bot %s", bot.pk)
        return []
