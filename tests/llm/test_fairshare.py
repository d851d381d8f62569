"""Fair sharing of model calls: a cap per tenant, freed slots round-robin between tenants."""

from __future__ import annotations

import asyncio

import pytest

from chatbot.llm.fairshare import FairShare, QueueFull

from .conftest import in_loop


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@in_loop
async def test_a_tenant_over_its_cap_waits_while_another_tenant_starts_at_once() -> None:
    gate = FairShare(per_tenant=2, total=10, max_waiting=10)
    await gate.acquire(1)
    await gate.acquire(1)
    third = asyncio.ensure_future(gate.acquire(1))
    await settle()
    assert not third.done()
    await asyncio.wait_for(gate.acquire(2), 0.5)  # tenant 2 is not behind tenant 1's queue
    gate.release(1)
    await asyncio.wait_for(third, 0.5)
    assert gate.active == {1: 2, 2: 1} and gate.running == 3


@in_loop
async def test_freed_slots_go_round_robin_between_waiting_tenants() -> None:
    gate = FairShare(per_tenant=1, total=1, max_waiting=10)
    await gate.acquire(0)  # the only slot is taken
    order: list[str] = []

    async def call(tenant: int, name: str) -> None:
        await gate.acquire(tenant)
        order.append(name)
        await asyncio.sleep(0)
        gate.release(tenant)

    # Tenant 1 floods first; tenants 2 and 3 arrive later.
    waiters = [("a1", 1), ("a2", 1), ("a3", 1), ("b1", 2), ("b2", 2), ("c1", 3)]
    tasks = [asyncio.ensure_future(call(tenant, name)) for name, tenant in waiters]
    await settle()
    gate.release(0)
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert order == ["a1", "b1", "c1", "a2", "b2", "a3"]
    assert gate.running == 0 and gate.active == {} and not gate.waiting


@in_loop
async def test_a_cancelled_waiter_leaves_no_slot_or_queue_behind() -> None:
    gate = FairShare(per_tenant=1, total=4, max_waiting=1)
    await gate.acquire(1)
    waiter = asyncio.ensure_future(gate.acquire(1))
    await settle()
    with pytest.raises(QueueFull):  # one may wait; the next is refused at once
        await gate.acquire(1)
    waiter.cancel()
    await settle()
    assert not gate.waiting
    gate.release(1)
    assert gate.running == 0 and gate.active == {}
    async with gate.slot(1):
        assert gate.running == 1
    assert gate.running == 0
