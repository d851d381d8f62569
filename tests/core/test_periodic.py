"""Periodic tasks without a broker: `manage.py serve` keeps CELERY_BEAT_SCHEDULE in-process.

Embedded mode runs Celery tasks eagerly and no `celery beat`; without this, retention purges,
the stale-reply sweep and knowledge re-syncs would never run under `make run`.
"""

from __future__ import annotations

import asyncio
import logging
import shelve
import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone

from chatbot.bots.models import Bot
from chatbot.celery import app as celery_app
from chatbot.conversations import actions
from chatbot.conversations.models import Message, MessageStatus
from chatbot.core import periodic
from chatbot.tenants.models import Tenant
from tests.fixtures.serve import served

# They need eager tasks (no REDIS_URL): with a broker, `celery beat` is the scheduler.
pytestmark = pytest.mark.embedded

SWEEP = "chatbot.conversations.tasks.sweep_stale_replies"

loops_seen: list[asyncio.AbstractEventLoop] = []


async def _note_the_loop() -> None:
    loops_seen.append(asyncio.get_running_loop())


@celery_app.task(name="tests.core.note_the_loop_async_to_sync_reaches")
def note_the_loop_async_to_sync_reaches() -> None:
    """What a broadcasting task does: async_to_sync, as conversations.broadcast does."""
    async_to_sync(_note_the_loop)()


def wait_until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the periodic task did not run")
        time.sleep(0.05)


def stale_streaming_reply(tenant: Tenant) -> Message:
    bot = Bot.objects.create(tenant=tenant, name="Acme help", allowed_origins=["https://a.test"])
    visitor = actions.open_visitor(bot)
    first = actions.receive_visitor_message(visitor, None, client_id="c1", text="Hi")
    reply = actions.create_reply_message(first.conversation.pk)
    assert reply is not None
    actions.save_partial_reply(reply.pk, "Half an ans")
    Message.objects.filter(pk=reply.pk).update(updated_at=timezone.now() - timedelta(minutes=11))
    return reply


@pytest.mark.django_db(transaction=True)
def test_the_stale_reply_sweep_runs_on_its_schedule(acme: Tenant, tmp_path: Path) -> None:
    reply = stale_streaming_reply(acme)
    timetable = tmp_path / "schedule"

    running = periodic.start({"sweep": {"task": SWEEP, "schedule": 0.2}}, timetable)
    try:
        wait_until(lambda: Message.objects.get(pk=reply.pk).status != MessageStatus.STREAMING)
    finally:
        running.stop()

    reply.refresh_from_db()
    assert (reply.status, reply.text, reply.error_code) == (
        MessageStatus.INCOMPLETE,
        "Half an ans",
        "interrupted",
    )
    assert not running.alive
    assert list(tmp_path.glob("schedule*")), "the timetable is kept on disk"


def test_under_a_server_a_task_runs_where_async_to_sync_reaches_its_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A task's broadcast must land on the serving loop: the in-memory channel layer's
    queues are not thread-safe, and an event put from another loop waits for a wake-up."""
    loops_seen.clear()
    entries = {"note": {"task": note_the_loop_async_to_sync_reaches.name, "schedule": 0.2}}

    async def serve_a_while() -> asyncio.AbstractEventLoop:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        replies: list[dict[str, Any]] = []

        async def send(message: dict[str, Any]) -> None:
            replies.append(message)

        await inbox.put({"type": "lifespan.startup"})
        lifespan = asyncio.create_task(periodic.lifespan({"type": "lifespan"}, inbox.get, send))
        running = periodic.start(entries, tmp_path / "schedule")
        try:
            deadline = time.monotonic() + 60
            while not loops_seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await inbox.put({"type": "lifespan.shutdown"})
            await lifespan
            await asyncio.to_thread(running.stop)
        assert [r["type"] for r in replies] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        return asyncio.get_running_loop()

    server_loop = asyncio.run(serve_a_while())

    assert loops_seen, "the periodic task did not run"
    assert loops_seen[0] is server_loop
    # And the run was recorded: the timetable's store is written from its own thread (on
    # Python 3.13 shelve is SQLite, which refuses a connection from another thread).
    failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not failures, failures
    with shelve.open(str(tmp_path / "schedule")) as store:
        assert store["entries"]["note"].total_run_count >= 1


def test_serve_runs_the_schedule_in_process_and_says_so(tmp_path: Path) -> None:
    with served(tmp_path, PERIODIC_TASKS_IN_PROCESS="true") as server:
        line = server.wait_for_line(lambda line: "periodic tasks run in-process" in line)
        assert "sweep-stale-replies" in line and "purge-expired-conversations" in line
        assert str(tmp_path / "periodic-schedule") in line
        status = server.stop()
    # uvicorn ends by the signal it got, after a clean shutdown (the lifespan included).
    assert status == -signal.SIGTERM, server.output
    assert "Application shutdown complete." in server.output
    assert list(tmp_path.glob("periodic-schedule*")), "the timetable is kept in VAR_DIR"


def test_under_tests_serve_runs_no_schedule_unless_asked(tmp_path: Path) -> None:
    with served(tmp_path) as server:
        server.wait_for_line(lambda line: "parley: serving on" in line)
    assert "periodic tasks" not in server.output
    assert not list(tmp_path.glob("periodic-schedule*"))
