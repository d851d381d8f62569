"""Every write to a bot's knowledge. Views call these; they validate, write, and queue syncs.

Validation failures raise `KnowledgeError` with a message for the manager. A sync is queued
after the transaction commits, so the worker always finds the row.
"""

from __future__ import annotations

import os
import threading

from django import db
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from chatbot.bots.models import Bot
from chatbot.lib import outbound

from . import conf
from .extract import ExtractionError, sniff_type
from .models import Source, SourceKind, SourceStatus, SyncInterval


def _check_room(bot: Bot, adding: int) -> None:
    """The plan's knowledge size (billing), before anything is stored."""
    from chatbot.billing.actions import QuotaError, check_knowledge_room

    try:
        check_knowledge_room(bot.tenant, adding)
    except QuotaError as exc:
        raise KnowledgeError(str(exc)) from None


class KnowledgeError(ValueError):
    """The request cannot be done as asked; the message says what to change."""


def _run_in_thread(source_id: int) -> None:
    from .tasks import sync_source

    try:
        sync_source.apply(args=[source_id])
    finally:
        db.connections.close_all()


def dispatch_sync(source_id: int) -> None:
    """Send the sync to a Celery worker, or run it in this process when there is none.

    Without a broker (the embedded defaults) tasks run in-process; a website crawl can take
    minutes, so it runs in a background thread and the page that asked returns at once.
    Tests keep it synchronous (KNOWLEDGE_SYNC_IN_THREAD is off while testing).
    """
    from .tasks import sync_source

    in_thread = getattr(settings, "KNOWLEDGE_SYNC_IN_THREAD", not settings.TESTING)
    if sync_source.app.conf.task_always_eager and in_thread:
        threading.Thread(
            target=_run_in_thread, args=(source_id,), name=f"knowledge-sync-{source_id}"
        ).start()
    else:
        sync_source.delay(source_id)


def _queue_sync(source: Source) -> None:
    source_id = source.pk
    transaction.on_commit(lambda: dispatch_sync(source_id))


def _clean_title(title: str, fallback: str) -> str:
    title = " ".join(title.split())[:300]
    return title or fallback[:300]


def _check_text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise KnowledgeError(f"The {what} is empty.")
    if len(text) > conf.max_text_chars():
        raise KnowledgeError(
            f"The {what} is {len(text):,} characters long; the limit is "
            f"{conf.max_text_chars():,}. Split it, or upload it as a file."
        )
    return text


def _check_interval(sync_interval: int) -> int:
    if sync_interval not in SyncInterval.values:
        raise KnowledgeError("Choose a re-sync schedule from the list.")
    return sync_interval


def add_text(bot: Bot, *, title: str, text: str) -> Source:
    text = _check_text(text, "text")
    _check_room(bot, len(text))
    with transaction.atomic():
        source = Source.objects.create(
            bot=bot,
            kind=SourceKind.TEXT,
            title=_clean_title(title, text.split("\n", 1)[0][:80]),
            body=text,
        )
        _queue_sync(source)
    return source


def add_qa(bot: Bot, *, question: str, answer: str) -> Source:
    question = " ".join(question.split())
    if not question:
        raise KnowledgeError("The question is empty.")
    if len(question) > 300:
        raise KnowledgeError("Keep the question under 300 characters.")
    answer = _check_text(answer, "answer")
    _check_room(bot, len(question) + len(answer))
    with transaction.atomic():
        source = Source.objects.create(bot=bot, kind=SourceKind.QA, title=question, body=answer)
        _queue_sync(source)
    return source


def add_file(bot: Bot, *, upload: UploadedFile, title: str = "") -> Source:
    limit = conf.max_upload_bytes()
    if upload.size is not None and upload.size > limit:
        raise KnowledgeError(f"The file is larger than {limit // (1024 * 1024)} MB.")
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise KnowledgeError(f"The file is larger than {limit // (1024 * 1024)} MB.")
    # The name the browser sent is shown to managers, never used as a path.
    _check_room(bot, 0)
    name = os.path.basename((upload.name or "").replace("\\", "/"))[:255] or "upload"
    try:
        file_type = sniff_type(data, name, upload.content_type or "")
    except ExtractionError as exc:
        raise KnowledgeError(str(exc)) from None
    with transaction.atomic():
        source = Source(
            bot=bot,
            kind=SourceKind.FILE,
            title=_clean_title(title, name),
            file_name=name,
            file_type=file_type,
        )
        source.file.save(name, ContentFile(data), save=False)
        source.save()
        _queue_sync(source)
    return source


def add_site(
    bot: Bot,
    *,
    url: str,
    kind: str = SourceKind.URL,
    title: str = "",
    max_depth: int = 2,
    max_pages: int = 50,
    sync_interval: int = SyncInterval.WEEKLY,
) -> Source:
    """A website crawled from `url`, or (kind "sitemap") the pages a sitemap lists."""
    if kind not in (SourceKind.URL, SourceKind.SITEMAP):
        raise KnowledgeError("Choose a website or a sitemap.")
    url = url.strip()
    try:
        outbound.check_url(url)
    except outbound.BlockedURL as exc:
        raise KnowledgeError(f"This address cannot be used: {exc}.") from None
    if not 0 <= max_depth <= conf.max_depth_ceiling():
        raise KnowledgeError(f"The depth must be between 0 and {conf.max_depth_ceiling()}.")
    if not 1 <= max_pages <= conf.max_pages_ceiling():
        raise KnowledgeError(f"The page limit must be between 1 and {conf.max_pages_ceiling()}.")
    _check_room(bot, 0)
    with transaction.atomic():
        source = Source.objects.create(
            bot=bot,
            kind=kind,
            title=_clean_title(title, url),
            url=url,
            max_depth=max_depth,
            max_pages=max_pages,
            sync_interval=_check_interval(sync_interval),
        )
        _queue_sync(source)
    return source


def update_source(
    source: Source,
    *,
    title: str | None = None,
    body: str | None = None,
    sync_interval: int | None = None,
    language: str | None = None,
) -> Source:
    """Edit what a manager may edit; a changed text, answer or language is synced again."""
    resync = False
    if language is not None and language != source.language:
        source.language = language
        resync = True
    if title is not None:
        source.title = _clean_title(title, source.title)
        resync = source.kind in (SourceKind.TEXT, SourceKind.QA)
    if body is not None and source.kind in (SourceKind.TEXT, SourceKind.QA):
        source.body = _check_text(body, "answer" if source.kind == SourceKind.QA else "text")
        resync = True
    if sync_interval is not None and source.fetches_urls:
        source.sync_interval = _check_interval(sync_interval)
    with transaction.atomic():
        source.save()
        if resync:
            _queue_sync(source)
    return source


def request_sync(source: Source) -> None:
    """Sync now (the dashboard's "Sync now" button)."""
    with transaction.atomic():
        Source.objects.filter(pk=source.pk).exclude(status=SourceStatus.SYNCING).update(
            status=SourceStatus.PENDING, error=""
        )
        _queue_sync(source)


def delete_source(source: Source) -> None:
    """Delete the source, its documents and chunks (its stored file goes too: signals.py)."""
    source.delete()


def record_unanswered(message_id: int, question: str) -> None:
    """Remember that the reply `message_id` had no relevant knowledge for `question`."""
    from chatbot.conversations.models import Message

    from .models import UnansweredQuestion

    message = Message.objects.select_related("conversation__bot").get(pk=message_id)
    bot = message.conversation.bot
    UnansweredQuestion.objects.get_or_create(
        message=message,
        defaults={"tenant_id": bot.tenant_id, "bot": bot, "question": question[:2000]},
    )
