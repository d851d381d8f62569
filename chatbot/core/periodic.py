"""Periodic tasks without a broker: Celery beat's own scheduler, inside `manage.py serve`.

With REDIS_URL, `celery -A chatbot beat` sends CELERY_BEAT_SCHEDULE's tasks (retention
purges, the stale-reply sweep, knowledge re-syncs) to the workers. Without it (the embedded
defaults) tasks run eagerly in the calling process and no beat runs, so none of them would
ever happen. `start()` runs the same schedule with Celery's PersistentScheduler in a daemon
thread of the serving process (celery.beat.EmbeddedService); its timetable is kept in
VAR_DIR, so a restart neither repeats nor forgets a run. A due task runs eagerly.

Where it runs matters for one thing: a task that announces an event (the sweep settles a
reply and tells whoever watches the conversation) calls the channel layer through
async_to_sync. The in-memory layer's queues belong to the server's event loop and are not
thread-safe: an event put from another loop's thread waits until the server's loop happens
to wake. So when this process serves (the ASGI lifespan registered its loop) a due task runs
in a worker thread launched from that loop, where async_to_sync finds the server's loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from celery.beat import EmbeddedService, PersistentScheduler, ScheduleEntry
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None


def state_file() -> Path:
    """Where the timetable is kept (Celery's shelve file) between restarts."""
    return Path(settings.VAR_DIR) / "periodic-schedule"


class InProcessScheduler(PersistentScheduler):
    """Celery's persistent scheduler, running each due task here, eagerly."""

    def __init__(self, *args: Any, entries: dict[str, dict[str, Any]] | None = None, **kw: Any):
        self._entries = entries
        # The timetable's store (shelve: on Python 3.13 an SQLite file by default) may only be
        # used from the thread that opened it, this one.
        self._owner = threading.get_ident()
        super().__init__(*args, **kw)
        # Keep the timetable on disk after every run, not every three minutes: a restart
        # soon after a run then does not run it again.
        self.sync_every_tasks = 1

    def merge_inplace(self, b: MutableMapping[str, Any]) -> None:
        # Celery merges app.conf.beat_schedule (settings.CELERY_BEAT_SCHEDULE); a caller
        # may name its own entries instead (the tests run a short one).
        super().merge_inplace(b if self._entries is None else self._entries)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        log.info("periodic task %s runs (%s)", entry.name, entry.task)
        loop = _server_loop
        try:
            if loop is not None and loop.is_running():
                run = sync_to_async(self._run, thread_sensitive=False)
                asyncio.run_coroutine_threadsafe(run(entry), loop).result()
            else:
                self._run(entry)
        except Exception:
            # Logged, not raised: one failing run must not stop the schedule.
            log.exception("periodic task %s failed", entry.name)
        if self.should_sync():
            self._do_sync()  # back in the scheduler's thread

    def _do_sync(self) -> None:
        # Celery syncs at the end of apply_async, which runs in a worker thread when a
        # server's loop is registered: apply_entry syncs once back in the owner thread.
        if threading.get_ident() == self._owner:
            super()._do_sync()

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> Any:
        # Celery sends a task it does not know by name, for a worker that might; without a
        # broker nothing would ever take it, so say so instead.
        raise LookupError(f"no task named {name!r} is registered in this process")

    def _run(self, entry: ScheduleEntry) -> None:
        # This thread keeps no request cycle, so nothing else closes its connection.
        close_old_connections()
        try:
            self.apply_async(entry, advance=False)
        finally:
            close_old_connections()


class PeriodicTasks:
    """A running in-process beat: `stop()` ends it and saves the timetable."""

    def __init__(self, thread: Any) -> None:
        self._thread = thread

    @property
    def alive(self) -> bool:
        return bool(self._thread.is_alive())

    def stop(self, timeout: float = 10.0) -> None:
        # Not service.stop(wait=True): a long purge must not hold the shutdown forever. The
        # timetable is written after each run anyway.
        self._thread.service.stop()
        self._thread.join(timeout)


def start(
    entries: dict[str, dict[str, Any]] | None = None, schedule_path: Path | None = None
) -> PeriodicTasks:
    """Start running the periodic tasks in this process (a daemon thread)."""
    from chatbot.celery import app

    # Import every app's tasks module now (Celery's autodiscovery waits for a worker to
    # start): a due entry must find its task here, there is no worker that would know it.
    app.autodiscover_tasks(force=True)
    path = schedule_path or state_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    thread = EmbeddedService(
        app,
        thread=True,
        schedule_filename=str(path),
        scheduler_cls=functools.partial(InProcessScheduler, entries=entries),
    )
    thread.name = "parley-periodic"
    thread.start()
    return PeriodicTasks(thread)


async def _close_model_pools() -> None:
    """The model endpoints' connection pools of this loop, closed at shutdown."""
    try:
        from chatbot.llm.routing import close_pools
    except ImportError:
        return
    try:
        await close_pools()
    except Exception:  # shutting down: a pool that fails to close must not stop the rest
        log.exception("closing the model endpoints' connections failed")


async def lifespan(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    """ASGI lifespan: tells the in-process scheduler which event loop serves this process."""
    global _server_loop
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _server_loop = asyncio.get_running_loop()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            _server_loop = None
            await _close_model_pools()
            await send({"type": "lifespan.shutdown.complete"})
            return
