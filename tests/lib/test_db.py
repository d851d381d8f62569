"""Tenants take turns at the database threads (chatbot/lib/db.py): one tenant's queued calls
do not delay another tenant's call by more than the calls already handed to the threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from asgiref.sync import async_to_sync

from chatbot.lib import db
from chatbot.lib.db import FairGate

FLOOD, QUIET = 1, 2


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_tenant_that_starts_waiting_goes_before_a_flood_of_30() -> None:
    gate = FairGate(capacity=1)
    order: list[str] = []

    async def call(tenant: int, name: str) -> None:
        await gate.acquire(tenant)
        order.append(name)
        gate.release()

    await gate.acquire(FLOOD)  # the flood's call on the thread
    flood = [asyncio.ensure_future(call(FLOOD, f"flood{n}")) for n in range(30)]
    await settle()
    quiet = asyncio.ensure_future(call(QUIET, "quiet"))
    await settle()
    gate.release()
    await asyncio.gather(quiet, *flood)
    assert order[0] == "quiet"
    assert order[1:] == [f"flood{n}" for n in range(30)]  # each tenant first come, first served


async def test_two_waiting_tenants_alternate() -> None:
    gate = FairGate(capacity=1)
    order: list[int] = []

    async def call(tenant: int) -> None:
        await gate.acquire(tenant)
        order.append(tenant)
        await asyncio.sleep(0)
        gate.release()

    await gate.acquire(FLOOD)
    waiters = [asyncio.ensure_future(call(t)) for t in [FLOOD] * 3 + [QUIET] * 3]
    await settle()
    gate.release()
    await asyncio.gather(*waiters)
    assert order == [QUIET, FLOOD, QUIET, FLOOD, QUIET, FLOOD]


async def test_a_cancelled_waiter_leaves_no_place_or_queue_behind() -> None:
    gate = FairGate(capacity=1)
    await gate.acquire(FLOOD)
    waiting = asyncio.ensure_future(gate.acquire(QUIET))
    await settle()
    waiting.cancel()
    await settle()
    assert not gate.waiting and gate.running == 1
    gate.release()
    assert gate.running == 0
    await asyncio.wait_for(gate.acquire(QUIET), 1)  # the place is free again


async def test_a_place_granted_as_its_waiter_is_cancelled_goes_to_the_next() -> None:
    gate = FairGate(capacity=1)
    await gate.acquire(FLOOD)
    first = asyncio.ensure_future(gate.acquire(QUIET))
    second = asyncio.ensure_future(gate.acquire(FLOOD))
    await settle()
    gate.release()  # granted to `first`, which is cancelled before it resumes
    first.cancel()
    await asyncio.wait_for(second, 1)
    assert gate.running == 1 and not gate.waiting


@pytest.mark.embedded  # one thread: the order calls run in is the order they were handed over
@pytest.mark.django_db
async def test_the_database_thread_runs_another_tenants_call_before_a_queued_flood() -> None:
    """Through the real thread: the flood holds it (blocked), queues 30 more, then another
    tenant's call comes; it runs right after the call already handed over."""
    capacity = db._gate().capacity
    release = threading.Event()
    order: list[str] = []

    def work(name: str) -> None:
        if name.startswith("held"):
            release.wait(5)
        order.append(name)

    async def call(tenant: int, name: str) -> None:
        db.queue_as(tenant)
        await db.db_async(work)(name)

    held = [asyncio.ensure_future(call(FLOOD, f"held{n}")) for n in range(capacity)]
    await settle()
    flood = [asyncio.ensure_future(call(FLOOD, f"flood{n}")) for n in range(30)]
    await settle()
    quiet = asyncio.ensure_future(call(QUIET, "quiet"))
    await settle()
    release.set()
    await asyncio.wait_for(asyncio.gather(*held, *flood, quiet), 10)
    assert sorted(order) == sorted(
        [f"held{n}" for n in range(capacity)] + ["quiet"] + [f"flood{n}" for n in range(30)]
    )  # every call ran, once
    assert order.index("quiet") == capacity


@pytest.mark.django_db
async def test_untagged_calls_do_not_queue_at_the_gate() -> None:
    db.queue_as(None)
    gate = db._gate()
    gate.running = gate.capacity  # every place taken
    try:
        assert await asyncio.wait_for(db.db_async(lambda: 42)(), 5) == 42
    finally:
        gate.running = 0


@pytest.mark.django_db
def test_a_tagged_call_from_a_sync_caller_runs_in_its_thread() -> None:
    """Nested (async_to_sync, as Django's test client runs async views): the caller's thread
    and connection, and no place at the gate (which belongs to another loop)."""

    async def tagged() -> int:
        db.queue_as(FLOOD)
        return await db.db_async(threading.get_ident)()

    assert async_to_sync(tagged)() == threading.get_ident()


async def test_a_task_started_with_the_tenant_context_keeps_only_the_tag() -> None:
    other: contextvars.ContextVar[str] = contextvars.ContextVar("other", default="unset")
    other.set("request's")
    db.queue_as(QUIET)

    async def seen() -> tuple[int | None, str]:
        return db._tenant.get(), other.get()

    task = asyncio.get_running_loop().create_task(seen(), context=db.tenant_context())
    assert await task == (QUIET, "unset")


@pytest.mark.postgres
@pytest.mark.django_db
async def test_tagged_calls_do_not_queue_at_the_gate_on_postgresql() -> None:
    db.queue_as(FLOOD)
    gate = db._gate()
    gate.running = gate.capacity  # every place taken: only SQLite's calls would wait
    try:
        assert await asyncio.wait_for(db.db_async(lambda: 42)(), 5) == 42
    finally:
        gate.running = 0
