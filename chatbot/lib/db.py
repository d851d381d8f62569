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

On SQLite, tenants take turns at the thread. A call tagged with a tenant (`queue_as`: the
widget session sets it, the reply tasks it starts keep it) waits in `FairGate`, per tenant,
while the thread has a call; a freed thread goes to the waiting tenants in round-robin order.
One tenant's flood of calls therefore queues behind itself, and another tenant's call waits
for at most the one call already on the thread, not for the flood. Untagged calls (the
dashboard, the API, tasks) and nested ones go straight to the thread, as before. On
PostgreSQL the pool's threads take calls side by side and the tag is not used: the same gate
there (a place per thread) measured no better and possibly worse (bench/tenant_flood).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine
from functools import cache, wraps
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync
from django.conf import settings
from django.db import connections

_tenant: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "parley_db_tenant", default=None
)


def queue_as(tenant_id: int | None) -> None:
    """Tag the current task's database calls, from now on, as `tenant_id`'s."""
    _tenant.set(tenant_id)


def tenant_context() -> contextvars.Context:
    """A fresh context that carries only the current tenant tag, for a task that must not
    inherit the rest of its creator's context (a reply started by a request)."""
    context = contextvars.Context()
    context.run(_tenant.set, _tenant.get())
    return context


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


class FairGate:
    """At most `capacity` tagged calls handed to the database threads at once; the others
    wait here in their tenant's queue (first come, first served within a tenant), and each
    freed place goes to the next waiting tenant in round-robin order. A tenant that starts
    waiting goes before the one served last, so its call waits for at most the `capacity`
    calls already handed over."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.running = 0
        # tenant → its waiters; the order of the keys is the round-robin order.
        self.waiting: OrderedDict[int, deque[asyncio.Future[None]]] = OrderedDict()
        self.served_last: int | None = None

    async def acquire(self, tenant: int) -> None:
        if self.running < self.capacity and not self.waiting:
            self.running += 1
            self.served_last = tenant
            return
        queue = self.waiting.get(tenant)
        if queue is None:
            queue = self.waiting[tenant] = deque()
            last = self.served_last
            if last is not None and last != tenant and last in self.waiting:
                self.waiting.move_to_end(last)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as the waiter went away: give it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(future)
                if not queue and self.waiting.get(tenant) is queue:
                    del self.waiting[tenant]
            raise

    def release(self) -> None:
        self.running -= 1
        while self.waiting and self.running < self.capacity:
            tenant, queue = next(iter(self.waiting.items()))
            future = queue.popleft()
            if queue:
                self.waiting.move_to_end(tenant)  # the next place goes to another tenant
            else:
                del self.waiting[tenant]
            if not future.done():
                self.running += 1
                self.served_last = tenant
                future.set_result(None)


@cache
def _pooled() -> bool:
    return bool(settings.DB_IS_POSTGRES)


_gates: dict[asyncio.AbstractEventLoop, FairGate] = {}


def _gate() -> FairGate:
    """This event loop's gate (futures belong to the loop that made them) in front of the one
    SQLite thread, with one place: a call handed over never waits behind another tenant's in
    the thread's own queue (first come, first served). The cost: a freed thread waits for the
    loop to hand it the next call (one loop iteration)."""
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        for old in [other for other in _gates if other.is_closed()]:
            del _gates[old]  # loops of finished test runs or threads
        gate = _gates[loop] = FairGate(1)
    return gate


def db_async[**P, R](fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function run in a database thread."""

    @wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        nested = getattr(AsyncToSync.executors, "current", None) is not None
        runner = _DatabaseCall(fn, thread_sensitive=nested or not _pooled())
        tenant = _tenant.get()
        if nested or tenant is None or _pooled():
            return await runner(*args, **kwargs)
        gate = _gate()
        await gate.acquire(tenant)
        try:
            return await runner(*args, **kwargs)
        finally:
            gate.release()

    return call


def _forget_inherited_pools() -> None:
    """A forked child (Celery's prefork pool) must not use the parent's pool: its threads do
    not exist in the child and its sockets are the parent's. The child builds its own."""
    postgresql = sys.modules.get("django.db.backends.postgresql.base")
    if postgresql is not None:
        postgresql.DatabaseWrapper._connection_pools.clear()


os.register_at_fork(after_in_child=_forget_inherited_pools)
