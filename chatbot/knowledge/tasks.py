"""Celery tasks: sync a source, and re-sync the ones whose schedule is due."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import Task, shared_task
from django.utils import timezone

from . import conf, ingest
from .models import Source

log = logging.getLogger(__name__)


# Tries of a sync that finds its source locked after its worker died (see below).
LOCKED_RETRIES = 4


@shared_task(
    bind=True,
    acks_late=True,
    # A killed worker's task is delivered again; the sync is idempotent (content hashes).
    reject_on_worker_lost=True,
    soft_time_limit=conf.sync_seconds() + 60,
    time_limit=conf.sync_seconds() + 120,
)
def sync_source(self: Task, source_id: int) -> str:
    source = Source.objects.select_related("bot").filter(pk=source_id).first()
    if source is None:
        return "gone"  # deleted since the task was queued
    if not ingest.sync_source(source):
        # Delivered again because its worker died mid-sync: the dead run's lock lapses
        # within LOCK_SECONDS, so come back after it rather than drop the sync. (A second
        # "Sync now" while one runs is simply skipped.)
        redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
        if (redelivered or self.request.retries) and self.request.retries < LOCKED_RETRIES:
            raise self.retry(countdown=ingest.LOCK_SECONDS / 2, max_retries=LOCKED_RETRIES)
        return "already-running"
    return Source.objects.values_list("status", flat=True).get(pk=source_id)


@shared_task
def resync_due_sources() -> int:
    """Queue a sync for every source whose interval has passed (run by Celery beat)."""
    now = timezone.now()
    stale_after = timedelta(seconds=conf.sync_seconds() + 300)
    due = [
        source.pk
        for source in Source.objects.exclude(sync_interval=0).only(
            "id", "sync_interval", "status", "last_synced", "sync_started_at"
        )
        if source.sync_due(now, stale_after)
    ]
    from .actions import dispatch_sync

    for source_id in due:
        dispatch_sync(source_id)
    if due:
        log.info("knowledge: queued %d scheduled re-syncs", len(due))
    return len(due)
