"""The retention purge and the team email, run by a real Celery worker against Redis."""

from __future__ import annotations

import sys
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.conversations import tasks
from chatbot.conversations.models import Attachment, Conversation, InboxSettings, Message
from chatbot.tenants.models import Tenant
from tests.inbox.helpers import chat
from tests.inbox.processes import child_env, process

pytestmark = [pytest.mark.redis, pytest.mark.postgres]


def test_a_real_worker_purges_expired_conversations_and_their_files(
    live_db: None, acme: Tenant, bravo: Tenant, bot: Bot, bravo_bot: Bot
) -> None:
    InboxSettings.objects.create(tenant=acme, retention_days=30)
    old = [chat(bot, f"old {i}") for i in range(3)]
    kept = chat(bot, "recent")
    bravo_old = chat(bravo_bot, "bravo keeps everything")
    first_message = Message.objects.filter(conversation=old[0]).first()
    stored = default_storage.save("widget-attachments/worker-test/a.png", _bytes(b"png"))
    Attachment.objects.create(
        bot=bot,
        visitor=old[0].visitor,
        message=first_message,
        content_type="image/png",
        size=3,
        width=1,
        height=1,
        sha256="0" * 64,
        stored_name=stored,
    )
    Conversation.objects.filter(pk__in=[c.pk for c in [*old, bravo_old]]).update(
        updated_at=timezone.now() - timedelta(days=45)
    )

    # A queue of our own: other workers on the same Redis never take this test's task.
    queue = f"inbox-test-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "celery", "-A", "chatbot", "worker", "--pool", "solo",
               "--concurrency", "1", "-Q", queue, "--without-gossip", "--without-mingle",
               "--loglevel", "INFO"]  # fmt: skip
    with process(command, child_env()):
        result: Any = tasks.purge_expired_conversations.apply_async(queue=queue)
        assert result.get(timeout=90) == {str(acme.pk): 3}
        # Run again: nothing left to do (the task is idempotent).
        again: Any = tasks.purge_expired_conversations.apply_async(queue=queue)
        assert again.get(timeout=60) == {}

    remaining = set(Conversation.objects.values_list("pk", flat=True))
    assert remaining == {kept.pk, bravo_old.pk}
    assert not Attachment.objects.filter(stored_name=stored).exists()
    assert not default_storage.exists(stored)


def _bytes(data: bytes) -> Any:
    from django.core.files.base import ContentFile

    return ContentFile(data)
