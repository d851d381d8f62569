"""What a bot knows: sources (pasted text, Q&A pairs, files, websites), their documents, and
the chunks that retrieval ranks.

A source yields one or more documents (a file is one document; a website is one document per
page); each document is cut into overlapping chunks. Chunks carry their tenant and bot so
that retrieval filters on them inside the ranking query itself, never afterwards.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models

from chatbot.bots.models import Bot
from chatbot.tenants.models import Tenant
from chatbot.tenants.scoping import TenantScopedManager


class SourceKind(models.TextChoices):
    TEXT = "text", "Text"
    QA = "qa", "Question and answer"
    FILE = "file", "File"
    URL = "url", "Website"
    SITEMAP = "sitemap", "Sitemap"


class SourceStatus(models.TextChoices):
    PENDING = "pending", "Waiting to sync"
    SYNCING = "syncing", "Syncing"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class SyncInterval(models.IntegerChoices):
    # Hours between scheduled re-syncs; 0 means "only when asked".
    MANUAL = 0, "Only when I ask"
    DAILY = 24, "Every day"
    WEEKLY = 24 * 7, "Every week"


def source_upload_path(instance: Source, filename: str) -> str:
    # The stored name is generated: the uploader's file name never reaches the file system.
    import secrets

    return f"knowledge/{instance.bot.tenant_id}/{secrets.token_hex(16)}"


class Source(models.Model):
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="knowledge_sources")
    kind = models.CharField(max_length=10, choices=SourceKind.choices)
    title = models.CharField(max_length=300)
    # The start URL of a website or the sitemap's URL; empty for other kinds.
    url = models.URLField(max_length=2000, blank=True)
    # Pasted text, or the answer of a Q&A pair (the question is the title).
    body = models.TextField(blank=True)
    file = models.FileField(upload_to=source_upload_path, blank=True)
    file_name = models.CharField(max_length=255, blank=True)  # as uploaded, for display only
    file_type = models.CharField(max_length=10, blank=True)  # txt | md | html | pdf | docx
    max_depth = models.PositiveSmallIntegerField(default=2)
    max_pages = models.PositiveIntegerField(default=50)
    sync_interval = models.PositiveIntegerField(
        choices=SyncInterval.choices, default=SyncInterval.MANUAL
    )

    status = models.CharField(
        max_length=10, choices=SourceStatus.choices, default=SourceStatus.PENDING
    )
    error = models.TextField(blank=True)
    # {"done": pages processed, "total": pages known, "skipped": unchanged, "failed": n,
    #  "chunks": n, "problems": [{"url": ..., "error": ...}, ...]}
    progress = models.JSONField(default=dict, blank=True)
    last_synced = models.DateTimeField(null=True, blank=True)
    sync_started_at = models.DateTimeField(null=True, blank=True)
    content_hash = models.CharField(max_length=64, blank=True)
    # The language of its documents for full-text search ("english", "french"...); empty means
    # detected per document, with the bot's language when the text is too short to tell.
    language = models.CharField(max_length=20, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager("bot__tenant")

    class Meta:
        indexes = [models.Index(fields=["bot", "kind"])]

    def __str__(self) -> str:
        return self.title

    @property
    def fetches_urls(self) -> bool:
        return self.kind in (SourceKind.URL, SourceKind.SITEMAP)

    def sync_due(self, now: datetime, stale_after: timedelta) -> bool:
        """Whether the schedule asks for a sync now.

        A sync that has been "syncing" longer than `stale_after` died with its worker; it is due.
        """
        if not self.sync_interval:
            return False
        if self.status == SourceStatus.SYNCING:
            return self.sync_started_at is None or self.sync_started_at + stale_after <= now
        if self.last_synced is None:
            return True
        return self.last_synced + timedelta(hours=self.sync_interval) <= now


class Document(models.Model):
    """One unit a source yields: a page of a website, a file, a pasted text, a Q&A pair.

    `key` identifies it across syncs (the page URL, or "file"/"text"); `content_hash` of its
    extracted text lets a re-sync skip it when nothing changed.
    """

    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="documents")
    key = models.CharField(max_length=2000)
    title = models.CharField(max_length=300)
    url = models.URLField(max_length=2000, blank=True)
    content_hash = models.CharField(max_length=64)
    chars = models.PositiveIntegerField(default=0)
    fetched_at = models.DateTimeField(auto_now=True)

    objects = TenantScopedManager("source__bot__tenant")

    class Meta:
        indexes = [models.Index(fields=["source", "key"])]

    def __str__(self) -> str:
        return self.title


class Chunk(models.Model):
    source = models.ForeignKey(Source, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="chunks")
    # Denormalised so that the tenant and bot filter sits in the ranking query's WHERE clause.
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="+")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    # The document's title, copied so that full-text search weighs it with the text.
    title = models.CharField(max_length=300, blank=True)
    # The headings above the passage ("Returns > Refunds"), cited and searched with the title.
    heading = models.CharField(max_length=500, blank=True)
    text = models.TextField()
    position = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    # The Snowball language of this chunk ("english", "french"... or "simple").
    language = models.CharField(max_length=20, default="english")
    # Its terms for full-text search (`analysis.analyze`, space-separated): the title and
    # headings, and the text. Both databases index these; `search_length` is the number of
    # text terms, summed per bot for BM25's average passage length.
    search_title = models.TextField(blank=True, default="")
    search_text = models.TextField(blank=True, default="")
    search_length = models.PositiveIntegerField(default=0)
    # float32 little-endian, L2-normalised; null until an embedding endpoint answered.
    embedding = models.BinaryField(null=True, blank=True)
    # One vector per paragraph of a passage of several (same format, concatenated), given with
    # `embedding`: a question about one fact is closer to its paragraph than to the whole
    # passage's average. The vector ranking takes the best of them.
    embedding_parts = models.BinaryField(null=True, blank=True)
    # The model that made both (`embedding.model_in_use`): a question's vector is compared only
    # with vectors of its own model. Two models may make vectors of the same size (the built-in
    # e5 and all-MiniLM-L6-v2 before it both make 384 floats) that mean nothing to each other.
    # Null for vectors made before it was recorded. (Nullable without a default: SQLite adds
    # such a column in place; one with a default rebuilds the table, and its FTS5 triggers.)
    embedding_model = models.CharField(max_length=250, null=True, blank=True)  # noqa: DJ001

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "bot"])]
        ordering = ["document_id", "position"]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.position}"


class UnansweredQuestion(models.Model):
    """A visitor question for which retrieval found nothing relevant: the bot said it did not
    know. Listed on the knowledge page so the manager can add what was missing."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="unanswered_questions")
    # The reply that said "I don't know"; deleted with its conversation.
    message = models.OneToOneField(
        "conversations.Message", on_delete=models.CASCADE, related_name="+"
    )
    question = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantScopedManager()

    class Meta:
        indexes = [models.Index(fields=["tenant", "bot", "-created_at"])]

    def __str__(self) -> str:
        return self.question[:80]
