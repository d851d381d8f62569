"""Sync one source: read its documents, re-chunk only what changed, embed what lacks vectors.

Idempotent by construction: each document is keyed (page URL, "file", "text") and carries the
hash of its extracted text. A re-sync that finds the same hash does nothing more for that
document: no re-chunking, no embedding calls. A worker killed mid-sync leaves every document
either old or new (each is replaced in one transaction), and the re-run finishes the job.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chatbot.lib import heavy

from . import conf
from .analysis import detect_language, language_name, search_fields
from .chunking import Piece, chunk_document
from .crawl import MAX_URL_LENGTH, Blocked, Fetcher, FetchError, Page, crawl, sitemap_pages
from .embedding import embed_texts, model_in_use
from .extract import ExtractionError, extract
from .models import Chunk, Document, Source, SourceKind, SourceStatus
from .retrieval import bot_language, to_vector_bytes

log = logging.getLogger(__name__)

MAX_PROBLEMS_SHOWN = 25
EMBED_BATCH = 32


class SyncFailed(Exception):
    """Nothing could be ingested; the message is shown on the source."""


@dataclass(frozen=True, slots=True)
class Incoming:
    key: str
    title: str
    url: str
    text: str


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()


def _documents_of(source: Source, fetcher: Fetcher | None) -> Iterator[Incoming | Page]:
    if source.kind == SourceKind.TEXT:
        yield Incoming(key="text", title=source.title, url="", text=source.body)
    elif source.kind == SourceKind.QA:
        # The question is the title (weighted in search); the text repeats it with the answer.
        text = f"{source.title}\n\n{source.body}"
        yield Incoming(key="qa", title=source.title, url="", text=text)
    elif source.kind == SourceKind.FILE:
        if not source.file:
            raise SyncFailed("The uploaded file is missing; upload it again.")
        with source.file.open("rb") as handle:
            data = handle.read(conf.max_upload_bytes() + 1)
        if len(data) > conf.max_upload_bytes():
            raise SyncFailed("The file is larger than the upload limit.")
        try:
            with heavy.slot():  # bounded with the other heavy work of this process
                extracted = extract(data, source.file_type, fallback_title=source.file_name)
        except ExtractionError as exc:
            raise SyncFailed(str(exc)) from None
        yield Incoming(key="file", title=extracted.title, url="", text=extracted.text)
    elif source.kind == SourceKind.URL:
        assert fetcher is not None
        yield from crawl(
            source.url,
            max_depth=min(source.max_depth, conf.max_depth_ceiling()),
            max_pages=min(source.max_pages, conf.max_pages_ceiling()),
            fetcher=fetcher,
        )
    elif source.kind == SourceKind.SITEMAP:
        assert fetcher is not None
        yield from sitemap_pages(
            source.url, max_pages=min(source.max_pages, conf.max_pages_ceiling()), fetcher=fetcher
        )
    else:
        raise SyncFailed(f"Unknown source kind {source.kind!r}.")


def document_language(source: Source, text: str, default: str) -> str:
    """The source's chosen language, or the one `text` is written in (`default` if unsure)."""
    if source.language:
        return language_name(source.language)
    return detect_language(text, default=default)


# Part of each document's hash: a new way of cutting documents re-chunks them on their next
# sync (passages whose text and headings come out the same still keep their vectors).
CHUNKING_VERSION = "sections-1"


def chunk_hash(piece: Piece) -> str:
    """What identifies a passage across syncs: its text and the headings above it.

    A passage without headings hashes its text alone, as passages did before headings were
    kept, so their rows and vectors carry over.
    """
    return sha256(f"{piece.heading}\n\n{piece.text}" if piece.heading else piece.text)


def store_document(source: Source, incoming: Incoming, default_language: str) -> tuple[str, int]:
    """Write one document and its chunks unless its text is unchanged.

    A changed document keeps the rows of the passages whose text and heading path did not
    change (and so their vectors: no embedding call for them); only the others are replaced.
    Returns ("unchanged" | "updated" | "created" | "empty", number of chunks).
    """
    text = incoming.text.strip()
    language = document_language(source, text, default_language)
    # The language is part of the hash: a bot whose language changed gets its index rebuilt.
    digest = sha256(f"{CHUNKING_VERSION}\n{language}\n{incoming.title}\n{text}")
    existing = Document.objects.filter(source=source, key=incoming.key).first()
    if existing is not None and existing.content_hash == digest:
        return "unchanged", existing.chunks.count()
    title = incoming.title[:300]
    pieces = chunk_document(text, title=title) if text else []
    with transaction.atomic():
        previous: dict[str, list[Chunk]] = {}
        if existing is not None:
            for old in existing.chunks.defer("embedding").order_by("position", "id"):
                previous.setdefault(old.content_hash, []).append(old)
            document = existing
            document.title = title
            document.url = incoming.url
            document.content_hash = digest
            document.chars = len(text)
            document.save()
        else:
            document = Document.objects.create(
                source=source,
                key=incoming.key,
                title=title,
                url=incoming.url,
                content_hash=digest,
                chars=len(text),
            )
        created: list[Chunk] = []
        changed: list[Chunk] = []
        for position, piece in enumerate(pieces):
            piece_hash = chunk_hash(piece)
            fields: dict[str, Any] = {
                "title": title,
                "heading": piece.heading,
                "position": position,
                "language": language,
                **search_fields(
                    title=title, heading=piece.heading, text=piece.text, language=language
                ),
            }
            same = previous.get(piece_hash)
            if same:
                chunk = same.pop(0)
                if any(getattr(chunk, name) != value for name, value in fields.items()):
                    for name, value in fields.items():
                        setattr(chunk, name, value)
                    changed.append(chunk)
                continue
            created.append(
                Chunk(
                    source=source,
                    document=document,
                    bot_id=source.bot_id,
                    tenant_id=source.bot.tenant_id,
                    text=piece.text,
                    content_hash=piece_hash,
                    **fields,
                )
            )
        gone = [old.pk for olds in previous.values() for old in olds]
        if gone:
            Chunk.objects.filter(pk__in=gone).delete()
        if changed:
            Chunk.objects.bulk_update(changed, list(fields))
        Chunk.objects.bulk_create(created)
    if not pieces:
        return "empty", 0
    return ("updated" if existing is not None else "created"), len(pieces)


def embedding_input(chunk: Chunk) -> str:
    """What is embedded for a chunk: where it sits (title, headings), then its text."""
    return "\n".join(part for part in (chunk.title, chunk.heading, chunk.text) if part)


# A paragraph shorter than this (a heading, a label) is embedded with the one after it.
MIN_PART_WORDS = 8


def embedding_parts(chunk: Chunk) -> list[str]:
    """What is embedded for each paragraph of a chunk, when it has more than one.

    A small model's vector of a whole passage is the average of its words; a question about
    one fact of it (the deposit, in a passage on rentals) matches that fact's paragraph better.
    """
    parts: list[str] = []
    pending = ""
    for paragraph in re.split(r"\n\s*\n", chunk.text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        paragraph = f"{pending}\n{paragraph}" if pending else paragraph
        if len(paragraph.split()) < MIN_PART_WORDS:
            pending = paragraph
            continue
        parts.append(paragraph)
        pending = ""
    if pending and parts:
        parts[-1] = f"{parts[-1]}\n{pending}"
    if len(parts) < 2:
        return []  # one paragraph: the passage's own vector says it all
    where = "\n".join(part for part in (chunk.title, chunk.heading) if part)
    return [f"{where}\n{part}" if where else part for part in parts]


def embed_missing(source: Source) -> int:
    """Give vectors to the source's chunks that lack one, or whose vectors another model made
    (the operator switched models); 0 when nothing embeds."""
    model = model_in_use()
    if model is None:
        return 0
    done = 0
    while True:
        batch = list(
            Chunk.objects.filter(source=source)
            .filter(
                Q(embedding__isnull=True)
                | Q(embedding_model__isnull=True)
                | ~Q(embedding_model=model)
            )
            .only("id", "title", "heading", "text")
            .order_by("id")[:EMBED_BATCH]
        )
        if not batch:
            return done
        # One call per batch: each chunk's own text, then its paragraphs.
        parts = [embedding_parts(chunk) for chunk in batch]
        texts = [embedding_input(chunk) for chunk in batch]
        texts += [text for chunk_parts in parts for text in chunk_parts]
        vectors = embed_texts(texts)
        if not vectors or len(vectors) != len(texts):
            return done
        rest = iter(vectors[len(batch) :])
        for chunk, vector, chunk_parts in zip(batch, vectors[: len(batch)], parts, strict=True):
            chunk.embedding = to_vector_bytes(vector)
            chunk.embedding_parts = (
                b"".join(to_vector_bytes(next(rest)) for _ in chunk_parts) or None
            )
            chunk.embedding_model = model
        Chunk.objects.bulk_update(batch, ["embedding", "embedding_parts", "embedding_model"])
        done += len(batch)


class _Progress:
    def __init__(self, source: Source) -> None:
        self.source = source
        self.data: dict[str, Any] = {
            "done": 0,
            "created": 0,
            "updated": 0,
            "unchanged": 0,
            "failed": 0,
            "chunks": 0,
            "problems": [],
        }
        self._saved_at = 0.0

    def count(self, outcome: str, chunks: int = 0) -> None:
        self.data["done"] += 1
        if outcome in self.data:
            self.data[outcome] += 1
        self.data["chunks"] += chunks
        self.save()

    def problem(self, message: str) -> None:
        self.data["failed"] += 1
        self.data["done"] += 1
        if len(self.data["problems"]) < MAX_PROBLEMS_SHOWN:
            self.data["problems"].append(message[:500])
        self.save()

    def save(self, force: bool = False) -> None:
        # At most about once a second: the dashboard polls it, the database need not suffer.
        now = time.monotonic()
        if force or now - self._saved_at >= 1.0:
            self._saved_at = now
            Source.objects.filter(pk=self.source.pk).update(progress=self.data)


def _lock_key(source: Source) -> str:
    return f"knowledge:sync:{source.pk}"


# One sync per source at a time. The lock is a lease a thread renews while the sync runs: a
# sync that dies with its worker (SIGKILL, OOM) stops renewing, and the source is free again
# within LOCK_SECONDS, so the task Celery delivers again (acks_late) can run it. A lock held
# for the whole sync budget would refuse that re-run for a quarter of an hour.
LOCK_SECONDS = 30
LOCK_RENEW_SECONDS = 10


class _Lease:
    def __init__(self, key: str) -> None:
        self.key = key
        self.token = uuid.uuid4().hex
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"lease {key}", daemon=True)

    def acquire(self) -> bool:
        if not cache.add(self.key, self.token, timeout=LOCK_SECONDS):
            return False
        self._renewer.start()
        return True

    def _renew(self) -> None:
        while not self._stop.wait(LOCK_RENEW_SECONDS):
            try:
                # Gone (Redis restarted without its data): take it again if nobody else has.
                if not cache.touch(self.key, LOCK_SECONDS):
                    cache.add(self.key, self.token, timeout=LOCK_SECONDS)
            except Exception:  # the cache may be briefly away; the next round tries again
                log.warning("knowledge: could not renew %s", self.key, exc_info=True)

    def release(self) -> None:
        self._stop.set()
        self._renewer.join()
        if cache.get(self.key) == self.token:
            cache.delete(self.key)


def sync_source(source: Source) -> bool:
    """Sync the source now. Returns False when another sync of it is already running."""
    lease = _Lease(_lock_key(source))
    if not lease.acquire():
        return False
    try:
        _sync(source)
    finally:
        lease.release()
    return True


def _sync(source: Source) -> None:
    started = timezone.now()
    Source.objects.filter(pk=source.pk).update(
        status=SourceStatus.SYNCING, error="", progress={}, sync_started_at=started
    )
    progress = _Progress(source)
    language = bot_language(source.bot)
    seen: set[str] = set()
    complete = True
    fetcher = (
        Fetcher(deadline=time.monotonic() + conf.sync_seconds()) if source.fetches_urls else None
    )
    try:
        for item in _documents_of(source, fetcher):
            if isinstance(item, Page):
                # A page that failed keeps its previous content (if any) until it reads again.
                seen.add(item.url)
                if item.error:
                    progress.problem(item.error)
                    continue
                if len(item.url) > MAX_URL_LENGTH:
                    progress.problem(f"{item.url[:200]}...: the address is too long to keep")
                    continue
                item = Incoming(key=item.url, title=item.title, url=item.url, text=item.text)
            seen.add(item.key)
            if progress.data["chunks"] >= conf.max_chunks_per_source():
                progress.problem(f"{item.url or item.title}: the source reached its size limit")
                continue
            outcome, chunks = store_document(source, item, language)
            progress.count(outcome, chunks)
        if fetcher is not None and fetcher.out_of_time():
            complete = False
            progress.problem("The time allowed for one sync ran out; the rest waits for the next.")
    except Blocked as exc:
        _fail(source, progress, f"{exc}. Only public web addresses can be fetched.")
        return
    except (SyncFailed, FetchError) as exc:
        _fail(source, progress, str(exc))
        return
    except SoftTimeLimitExceeded:
        _fail(source, progress, "The sync took longer than allowed; try again with fewer pages.")
        return
    except Exception:
        log.exception("knowledge: sync of source %s failed", source.pk)
        _fail(source, progress, "The sync failed unexpectedly; try again, or contact support.")
        return
    finally:
        if fetcher is not None:
            fetcher.close()

    if complete:
        # Pages that disappeared from the site (or fell outside the limits) go too.
        Document.objects.filter(source=source).exclude(key__in=seen).delete()
    written = progress.data["created"] + progress.data["updated"] + progress.data["unchanged"]
    embedded = embed_missing(source)
    progress.data["embedded"] = embedded
    progress.save(force=True)
    hashes = sorted(Document.objects.filter(source=source).values_list("key", "content_hash"))
    if written == 0 and not Document.objects.filter(source=source).exists():
        problems = progress.data["problems"]
        reason = problems[0] if problems else "No readable text was found."
        _fail(source, progress, f"Nothing could be ingested. {reason}")
        return
    Source.objects.filter(pk=source.pk).update(
        status=SourceStatus.READY,
        error="",
        last_synced=timezone.now(),
        content_hash=sha256(repr(hashes)),
        progress=progress.data,
    )
    _emit(source, "source.synced", "")


def _fail(source: Source, progress: _Progress, message: str) -> None:
    Source.objects.filter(pk=source.pk).update(
        status=SourceStatus.FAILED, error=message[:2000], progress=progress.data
    )
    _emit(source, "source.failed", message[:2000])


def _emit(source: Source, event_type: str, error: str) -> None:
    """source.synced / source.failed for webhooks (chatbot.lib.events)."""
    from chatbot.lib import events, ids

    data = {
        "source": {
            "id": ids.encode("src", source.pk),
            "bot": ids.encode("bot", source.bot_id),
            "kind": source.kind,
            "title": source.title,
            "status": "ready" if event_type == "source.synced" else "failed",
            "error": error,
        }
    }
    events.emit(source.bot_id, event_type, lambda: data, order_key=ids.encode("src", source.pk))
