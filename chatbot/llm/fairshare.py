"""Fair sharing of model calls between tenants, in this process.

Each endpoint's streams in this process (its `max_concurrency`, at most
`MODEL_CALLS_PER_PROCESS`) are shared between tenants, each tenant's share being
`MODEL_CALLS_PER_TENANT`. A tenant over its share may borrow idle streams while no other
tenant waits, up to the capacity less a small reserve (one share at most, a quarter of the
capacity at most), so a busy business alone on an instance uses the model server it has, and
another tenant's first calls still start at once. A call that may not start waits in its
tenant's queue, here rather than in the endpoint's own queue; a freed stream goes first to a
waiting tenant under its share, round-robin, and only then to a borrower (each tenant's own
calls stay first come, first served). One tenant flooding its bot therefore never holds the
reserve, and never queues ahead of another tenant.

Per process, not across processes through Redis, on purpose: the reply hot path stays free of
any round trip (a cross-process semaphore costs one Redis call to take a slot and one to give it
back, per reply, and leases to reclaim when a process dies mid-reply). The endpoints' own
limits (`max_concurrency`) are per process too, so with N processes behind a load balancer a
tenant holds at most N x MODEL_CALLS_PER_TENANT streams, in proportion to the capacity the
operator runs. The cost per call is a few dictionary operations.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator

from django.conf import settings


class QueueFull(Exception):
    """The tenant already has as many calls waiting as a queue may hold."""


class FairShare:
    def __init__(self, per_tenant: int, total: int, max_waiting: int) -> None:
        self.per_tenant = per_tenant
        self.total = total
        # Slots a borrower never takes: room for another tenant's first calls.
        self.reserve = min(per_tenant, max(1, total // 4)) if total > 1 else 0
        self.max_waiting = max_waiting
        self.active: dict[int, int] = {}
        self.running = 0
        # tenant → its waiters; the order of the keys is the round-robin order.
        self.waiting: OrderedDict[int, deque[asyncio.Future[None]]] = OrderedDict()

    def _grant(self, tenant: int) -> None:
        self.active[tenant] = self.active.get(tenant, 0) + 1
        self.running += 1

    def _may_run(self, tenant: int) -> bool:
        if self.running >= self.total:
            return False
        if self.active.get(tenant, 0) < self.per_tenant:
            return True
        return not self.waiting and self._may_borrow()

    def _may_borrow(self) -> bool:
        return self.running < self.total - self.reserve

    async def acquire(self, tenant: int) -> None:
        if tenant not in self.waiting and self._may_run(tenant):
            self._grant(tenant)
            return
        queue = self.waiting.setdefault(tenant, deque())
        if len(queue) >= self.max_waiting:
            if not queue:
                del self.waiting[tenant]
            raise QueueFull
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(tenant)  # granted just as the waiter went away: give it on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(future)
                if not queue and self.waiting.get(tenant) is queue:
                    del self.waiting[tenant]
            raise

    def release(self, tenant: int) -> None:
        left = self.active.get(tenant, 0) - 1
        if left > 0:
            self.active[tenant] = left
        else:
            self.active.pop(tenant, None)
        self.running -= 1
        self._dispatch()

    def _next_tenant(self) -> int | None:
        """The first waiting tenant in round-robin order that is under its share; failing
        that, the first waiting one, if a slot may be lent beyond the reserve."""
        for tenant in self.waiting:
            if self.active.get(tenant, 0) < self.per_tenant:
                return tenant
        if self._may_borrow():
            return next(iter(self.waiting))
        return None

    def _dispatch(self) -> None:
        while self.waiting and self.running < self.total:
            tenant = self._next_tenant()
            if tenant is None:
                return  # every waiting tenant is over its share and only the reserve is left
            queue = self.waiting[tenant]
            future = queue.popleft()
            if queue:
                self.waiting.move_to_end(tenant)  # the next slot goes to another tenant first
            else:
                del self.waiting[tenant]
            if not future.done():
                self._grant(tenant)
                future.set_result(None)

    @contextlib.asynccontextmanager
    async def slot(self, tenant: int) -> AsyncIterator[None]:
        await self.acquire(tenant)
        try:
            yield
        finally:
            self.release(tenant)


_shares: dict[asyncio.AbstractEventLoop, dict[str, FairShare]] = {}


def share(key: str, capacity: int) -> FairShare:
    """The gate of one endpoint (`key`, with `capacity` streams) in this event loop (one per
    loop: futures belong to the loop that made them)."""
    loop = asyncio.get_running_loop()
    gates = _shares.get(loop)
    if gates is None:
        if len(_shares) > 8:  # loops of finished test runs or threads
            for old in [other for other in _shares if other.is_closed()]:
                del _shares[old]
        gates = _shares[loop] = {}
    gate = gates.get(key)
    if gate is None:
        if len(gates) > 64:  # endpoints edited (a new key) or removed: drop the idle gates
            for stale in [k for k, g in gates.items() if not g.running and not g.waiting]:
                del gates[stale]
        gate = gates[key] = FairShare(
            settings.MODEL_CALLS_PER_TENANT,
            min(capacity, settings.MODEL_CALLS_PER_PROCESS),
            settings.MODEL_QUEUE_PER_TENANT,
        )
    return gate
