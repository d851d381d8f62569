"""Running ORM code from async code without queueing it all behind one thread.

channels' `database_sync_to_async` is thread-sensitive: every call in the process runs on one
shared thread, which measured 92% busy at 100 visitors on PostgreSQL. On PostgreSQL the calls
here run on the default thread pool instead, each thread taking a connection from Django's
connection pool (settings: OPTIONS["pool"]) and giving it back after the call. On SQLite they
stay on the one thread: SQLite has one writer anyway, and that thread keeps its connection
(CONN_MAX_AGE=None) instead of opening one per call.

A call made from inside `async_to_sync` (a synchronous caller such as Django's test client
running an async view) runs in that caller's thread, as asgiref does for thread-sensitive
code, so it shares the caller's connection and transaction.

Calls made one after another by the same coroutine still run one after another; only
different sockets and replies run side by side.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Coroutine
from functools import cache, wraps
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync
from django.conf import settings
from django.db import connections


def _release_stale_connections() -> None:
    """Django's `close_old_connections`, except inside a transaction: broken or obsolete
    connections are closed (with the pool: given back to it)."""
    for connection in connections.all(initialized_only=True):
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class _DatabaseCall(SyncToAsync):
    def thread_handler(self, loop: Any, *args: Any, **kwargs: Any) -> Any:
        _release_stale_connections()
        try:
            return super().thread_handler(loop, *args, **kwargs)
        finally:
            _release_stale_connections()


@cache
def _pooled() -> bool:
    return bool(settings.DB_IS_POSTGRES)


def db_async[**P, R](fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function run in a database thread."""

    @wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        nested = getattr(AsyncToSync.executors, "current", None) is not None
        runner = _DatabaseCall(fn, thread_sensitive=nested or not _pooled())
        return await runner(*args, **kwargs)

    return call


def _forget_inherited_pools() -> None:
    """A forked child (Celery's prefork pool) must not use the parent's pool: its threads do
    not exist in the child and its sockets are the parent's. The child builds its own."""
    postgresql = sys.modules.get("django.db.backends.postgresql.base")
    if postgresql is not None:
        postgresql.DatabaseWrapper._connection_pools.clear()


os.register_at_fork(after_in_child=_forget_inherited_pools)
