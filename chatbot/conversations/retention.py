"""Keep only what a tenant wants kept: purge conversations older than its retention window.

Runs from Celery beat (`tasks.purge_expired_conversations`), in batches so a tenant with a
million old rows never holds one long transaction or loads them all into memory. Files are
deleted after the rows' transaction commits: a rollback must not leave rows pointing at
missing files, and a file left behind by a crash is harmless (its row is gone).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from .models import Attachment, Conversation, InboxSettings

log = logging.getLogger(__name__)

BATCH_SIZE = 200


def delete_stored_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not delete attachment file %s", name)


def delete_conversations(conversation_ids: list[int]) -> int:
    """Delete these conversations, their messages and attachments (rows and files)."""
    with transaction.atomic():
        names = list(
            Attachment.objects.filter(message__conversation_id__in=conversation_ids).values_list(
                "stored_name", flat=True
            )
        )
        deleted = Conversation.objects.filter(pk__in=conversation_ids).delete()[1]
        transaction.on_commit(lambda: delete_stored_files(names))
    return deleted.get("conversations.Conversation", 0)


def purge_tenant(tenant_id: int, keep_days: int, *, now: datetime | None = None) -> int:
    """Delete the tenant's conversations last active before the window; returns how many."""
    if keep_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    total = 0
    while True:
        batch = list(
            Conversation.objects.filter(bot__tenant_id=tenant_id, updated_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:BATCH_SIZE]
        )
        if not batch:
            break
        total += delete_conversations(batch)
    # Uploads never sent in a message follow the same window.
    orphans = Attachment.objects.filter(
        bot__tenant_id=tenant_id, message__isnull=True, created_at__lt=cutoff
    )
    names = list(orphans.values_list("stored_name", flat=True))
    if names:
        orphans.delete()
        delete_stored_files(names)
    return total


def purge_expired(*, now: datetime | None = None) -> dict[int, int]:
    """Purge every tenant that has a retention window; returns {tenant id: conversations}."""
    purged: dict[int, int] = {}
    policies = InboxSettings.objects.filter(retention_days__gt=0).values_list(
        "tenant_id", "retention_days"
    )
    for tenant_id, keep_days in policies:
        count = purge_tenant(tenant_id, keep_days, now=now)
        if count:
            log.info("retention: purged %s conversations of tenant %s", count, tenant_id)
            purged[tenant_id] = count
    return purged
