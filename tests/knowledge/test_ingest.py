"""Ingestion through the real actions and Celery task: each source kind, idempotent re-syncs,
errors visible on the source."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chatbot.bots.models import Bot
from chatbot.knowledge import actions, ingest, tasks
from chatbot.knowledge.models import Chunk, Document, Source, SourceStatus
from chatbot.knowledge.retrieval import retrieve

from .documents import make_docx, make_pdf

pytestmark = pytest.mark.django_db


def _upload(name: str, data: bytes, content_type: str = "application/octet-stream") -> Any:
    return SimpleUploadedFile(name, data, content_type=content_type)


def test_pasted_text_becomes_searchable(acme_bot: Bot, run_on_commit: Callable[..., Any]) -> None:
    with run_on_commit():
        source = actions.add_text(
            acme_bot, title="Delivery", text="We deliver to Iceland within 12 days."
        )
    source.refresh_from_db()
    assert source.status == SourceStatus.READY, source.error
    assert source.last_synced is not None
    assert source.progress["created"] == 1
    [passage] = retrieve(acme_bot, "Do you deliver to Iceland?")
    assert passage.title == "Delivery"
    assert "12 days" in passage.text


def test_a_question_and_answer_pair_is_found_by_its_question(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        actions.add_qa(acme_bot, question="Can I pay with PayPal?", answer="Yes, and by card.")
        actions.add_text(acme_bot, title="Other", text="Our cafe serves tea.")
    passages = retrieve(acme_bot, "paypal payment")
    assert passages[0].title == "Can I pay with PayPal?"
    assert "Yes, and by card." in passages[0].text


@pytest.mark.parametrize(
    ("name", "data", "expected_type", "needle"),
    [
        ("notes.txt", b"The llama farm opens at dawn.", "txt", "dawn"),
        ("guide.md", b"# Llama guide\n\nFeed the llamas **hay** daily.", "md", "hay"),
        (
            "page.html",
            b"<html><title>Llama page</title><body><p>Llamas hum softly.</p></body></html>",
            "html",
            "hum",
        ),
        (
            "terms.pdf",
            make_pdf([["Llamas may not ride the bus."]], title="Bus rules"),
            "pdf",
            "bus",
        ),
        ("visit.docx", make_docx(["Llama walks last an hour."], heading="Walks"), "docx", "hour"),
    ],
)
def test_each_file_type_is_ingested(
    acme_bot: Bot,
    run_on_commit: Callable[..., Any],
    name: str,
    data: bytes,
    expected_type: str,
    needle: str,
) -> None:
    with run_on_commit():
        source = actions.add_file(acme_bot, upload=_upload(name, data))
    source.refresh_from_db()
    assert source.file_type == expected_type
    assert source.status == SourceStatus.READY, source.error
    # Stored under a generated name, never the uploader's.
    assert name not in source.file.name
    assert source.file_name == name
    [passage] = retrieve(acme_bot, needle)
    assert needle in passage.text.lower()
    # Cited by its name, without a link.
    assert (passage.title, passage.url) == (name, "")


def test_an_unreadable_upload_is_refused_with_a_reason(acme_bot: Bot) -> None:
    with pytest.raises(actions.KnowledgeError, match="not text, PDF or Word"):
        actions.add_file(acme_bot, upload=_upload("photo.txt", b"\x89PNG\r\n\x1a\n\0\0\0"))
    with pytest.raises(actions.KnowledgeError, match="empty"):
        actions.add_file(acme_bot, upload=_upload("empty.txt", b""))
    assert not Source.objects.exists()


def test_an_upload_over_the_size_limit_is_refused(acme_bot: Bot, settings: Any) -> None:
    settings.KNOWLEDGE_MAX_UPLOAD_BYTES = 1000
    with pytest.raises(actions.KnowledgeError, match="larger than"):
        actions.add_file(acme_bot, upload=_upload("big.txt", b"x" * 1001))


def test_a_file_that_fails_to_extract_shows_the_error_on_the_source(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    # A PDF header with nothing readable behind it passes the type check, then fails to parse.
    with run_on_commit():
        source = actions.add_file(acme_bot, upload=_upload("broken.pdf", b"%PDF-1.7\ngarbage"))
    source.refresh_from_db()
    assert source.status == SourceStatus.FAILED
    assert "PDF" in source.error
    assert not Chunk.objects.filter(source=source).exists()


def test_resyncing_an_unchanged_source_rewrites_nothing(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Hours", text="Open 9 to 5.\n\n" * 3)
    chunk_ids = list(Chunk.objects.filter(source=source).values_list("id", flat=True))
    first_hash = Source.objects.get(pk=source.pk).content_hash

    assert tasks.sync_source.apply(args=[source.pk]).get() == SourceStatus.READY
    source.refresh_from_db()
    assert source.progress["unchanged"] == 1
    assert source.progress["created"] == source.progress["updated"] == 0
    assert list(Chunk.objects.filter(source=source).values_list("id", flat=True)) == chunk_ids
    assert source.content_hash == first_hash


def test_editing_a_text_replaces_its_chunks(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        source = actions.add_text(acme_bot, title="Hours", text="Open from 9 to 5.")
    with run_on_commit():
        actions.update_source(source, body="Open from 8 to 8, every day.")
    texts = list(Chunk.objects.filter(source=source).values_list("text", flat=True))
    assert texts == ["Open from 8 to 8, every day."]
    assert "8 to 8" in retrieve(acme_bot, "open every day")[0].text
    assert Document.objects.filter(source=source).count() == 1


def test_deleting_a_source_removes_its_chunks_and_file(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        source = actions.add_file(acme_bot, upload=_upload("a.txt", b"Alpacas are not llamas."))
    storage, name = source.file.storage, source.file.name
    assert storage.exists(name)
    with run_on_commit():
        actions.delete_source(source)
    assert not Chunk.objects.exists()
    assert not storage.exists(name)
    assert retrieve(acme_bot, "alpacas") == []


def test_deleting_a_bot_deletes_its_uploaded_files(
    acme_bot: Bot, run_on_commit: Callable[..., Any]
) -> None:
    with run_on_commit():
        source = actions.add_file(acme_bot, upload=_upload("a.txt", b"Alpacas hum."))
    storage, name = source.file.storage, source.file.name
    with run_on_commit():
        acme_bot.delete()
    assert not Source.objects.exists()
    assert not storage.exists(name)


def test_a_second_sync_while_one_runs_is_skipped(acme_bot: Bot) -> None:
    source = Source.objects.create(bot=acme_bot, kind="text", title="t", body="text")
    from django.core.cache import cache

    cache.add(f"knowledge:sync:{source.pk}", "1")
    assert ingest.sync_source(source) is False
    assert tasks.sync_source.apply(args=[source.pk]).get() == "already-running"


def test_a_running_sync_keeps_its_lock_past_the_lease(
    acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(ingest, "LOCK_SECONDS", 1)
    monkeypatch.setattr(ingest, "LOCK_RENEW_SECONDS", 0.2)
    source = Source.objects.create(bot=acme_bot, kind="text", title="t", body="text")
    seen_during: list[bool] = []

    def long_sync(running: Source) -> None:
        time.sleep(1.6)  # longer than the lease: only renewals keep it
        seen_during.append(ingest.sync_source(running))

    monkeypatch.setattr(ingest, "_sync", long_sync)
    assert ingest.sync_source(source) is True
    assert seen_during == [False]  # a second sync was refused all along
    monkeypatch.undo()
    assert ingest.sync_source(source) is True  # and the lock went with the first


def test_the_lock_of_a_sync_that_died_lapses_within_the_lease(
    acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.setattr(ingest, "LOCK_SECONDS", 1)
    source = Source.objects.create(bot=acme_bot, kind="text", title="t", body="text")
    # A sync whose worker is killed: it took the lock, then stopped renewing it and never
    # released it.
    lease = ingest._Lease(ingest._lock_key(source))
    assert lease.acquire()
    lease._stop.set()
    lease._renewer.join()
    assert ingest.sync_source(source) is False
    time.sleep(1.2)
    assert ingest.sync_source(source) is True
    source.refresh_from_db()
    assert source.status == SourceStatus.READY


def test_a_redelivered_sync_that_finds_its_source_locked_comes_back_later(
    acme_bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import Retry
    from django.core.cache import cache

    source = Source.objects.create(bot=acme_bot, kind="text", title="t", body="text")
    cache.add(f"knowledge:sync:{source.pk}", "the dead run's lock")
    retries: list[dict[str, Any]] = []

    def record_retry(**options: Any) -> Retry:
        retries.append(options)
        return Retry()

    monkeypatch.setattr(tasks.sync_source, "retry", record_retry)
    tasks.sync_source.push_request(delivery_info={"redelivered": True}, retries=0)
    try:
        with pytest.raises(Retry):
            tasks.sync_source.run(source.pk)
    finally:
        tasks.sync_source.pop_request()
    assert retries == [{"countdown": ingest.LOCK_SECONDS / 2, "max_retries": tasks.LOCKED_RETRIES}]
    # A fresh duplicate (a second "Sync now") is skipped, not retried.
    assert tasks.sync_source.apply(args=[source.pk]).get() == "already-running"
    assert len(retries) == 1


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_a_sync_runs_in_a_background_thread(
    acme_bot: Bot, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    settings.KNOWLEDGE_SYNC_IN_THREAD = True
    release = threading.Event()
    real_run = actions._run_in_thread

    def held_run(source_id: int) -> None:
        release.wait()
        real_run(source_id)

    monkeypatch.setattr(actions, "_run_in_thread", held_run)
    source = actions.add_text(acme_bot, title="Hours", text="Open every day from seven.")
    # The request that added it returned before the sync ran.
    assert Source.objects.get(pk=source.pk).status == SourceStatus.PENDING
    [worker] = [t for t in threading.enumerate() if t.name == f"knowledge-sync-{source.pk}"]
    release.set()
    worker.join()
    source.refresh_from_db()
    assert source.status == SourceStatus.READY
    assert [p.title for p in retrieve(acme_bot, "when do you open")] == ["Hours"]
