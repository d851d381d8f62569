"""Against real Redis: a sync travels through the broker to a real Celery worker."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from chatbot.bots.models import Bot
from chatbot.celery import app
from chatbot.knowledge import tasks
from chatbot.knowledge.models import Source, SourceKind, SourceStatus
from chatbot.knowledge.retrieval import retrieve
from chatbot.tenants.models import Tenant

pytestmark = pytest.mark.redis


def test_a_worker_syncs_a_source_sent_through_the_broker(live_db: None) -> None:
    tenant = Tenant.objects.create(name="Acme", slug="acme-worker")
    bot = Bot.objects.create(tenant=tenant, name="Acme helper")
    source = Source.objects.create(
        bot=bot, kind=SourceKind.TEXT, title="Hours", body="Open every day from seven."
    )
    app.conf.task_always_eager = False  # this test wants the real broker round trip
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        result = tasks.sync_source.delay(source.pk)
        assert result.get(timeout=60) == SourceStatus.READY
    source.refresh_from_db()
    assert source.status == SourceStatus.READY
    assert [p.title for p in retrieve(bot, "when do you open")] == ["Hours"]
