"""Fair sharing of model calls: a share per tenant, idle slots lent while no one else waits,
a reserve for other tenants, freed slots round-robin between tenants."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chatbot.llm import fairshare
from chatbot.llm.fairshare import FairShare, QueueFull

from .conftest import in_loop


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


@in_loop
async def test_a_tenant_over_its_cap_waits_while_another_tenant_starts_at_once() -> None:
    gate = FairShare(per_tenant=2, total=3, max_waiting=10)  # nothing to lend: 3 less 1 reserved
    for _ in range(2):
        await gate.acquire(1)
    third = asyncio.ensure_future(gate.acquire(1))
    await settle()
    assert not third.done()
    await asyncio.wait_for(gate.acquire(2), 0.5)  # tenant 2 is not behind tenant 1's queue
    gate.release(1)
    await asyncio.wait_for(third, 0.5)
    assert gate.active == {1: 2, 2: 1} and gate.running == 3


@in_loop
async def test_a_tenant_alone_borrows_idle_slots_but_never_the_reserve() -> None:
    gate = FairShare(per_tenant=2, total=10, max_waiting=100)
    for _ in range(8):  # 2 of its own, 6 lent: 10 less a reserve of one share
        await asyncio.wait_for(gate.acquire(1), 0.5)
    ninth = asyncio.ensure_future(gate.acquire(1))
    await settle()
    assert not ninth.done() and gate.running == 8
    # The reserve: another tenant's first calls start at once, however long the flood.
    await asyncio.wait_for(gate.acquire(2), 0.5)
    await asyncio.wait_for(gate.acquire(2), 0.5)
    assert gate.running == 10
    # While tenant 2 waits, a freed slot goes to it (under its share), not to the borrower.
    gate.release(2)
    await settle()
    assert not ninth.done() and gate.active == {1: 8, 2: 1}
    late = asyncio.ensure_future(gate.acquire(2))
    await asyncio.wait_for(late, 0.5)
    # Slots freed by tenant 1 go back to it only while they are not the reserve.
    gate.release(1)
    await settle()
    assert not ninth.done() and gate.running == 9
    gate.release(2)
    gate.release(2)
    await asyncio.wait_for(ninth, 0.5)
    assert gate.active == {1: 8} and gate.running == 8 and not gate.waiting


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
    gate = FairShare(per_tenant=1, total=2, max_waiting=1)  # nothing to lend: 2 less a reserve of 1
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


@in_loop
async def test_each_endpoint_has_its_own_gate_sized_by_its_streams(settings: Any) -> None:
    settings.MODEL_CALLS_PER_PROCESS = 16
    small, large = fairshare.share("op:1:a", 8), fairshare.share("op:2:a", 512)
    assert (small.total, small.reserve) == (8, 2) and (large.total, large.reserve) == (16, 4)
    assert fairshare.share("op:1:a", 8) is small
