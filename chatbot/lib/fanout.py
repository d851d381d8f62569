"""Events to the sockets watching a group: at once in this process, once per other process.

Groups are named by the server from database ids (`conv.<id>`, `tenant.<id>.inbox`). A socket
subscribes a queue; `publish` puts the event on every local queue of the group without a round
trip and, with Redis configured, hands it to Redis once. A Lua script there copies it to the
inbox list of every *other* process that has subscribers in the group, and each process drains
its own list in one task and delivers locally. So a delta costs one Redis command however many
sockets watch it, and nothing comes back to the process that sent it.

Why not channels' Redis layer: it gives every socket its own channel, sends the publisher its
own events back through Redis, and caps one process's pending messages at `capacity`, beyond
which it drops them silently (round 1 lost runs of deltas that way under load).

`publish_soon` is for synchronous code (`transaction.on_commit` callbacks in a database thread):
it schedules the publish on the hub's loop and returns at once, never waiting for the loop. A
process without a hub (a Celery worker, a management command) sends through Redis directly.

Between processes, delivery is at most once (a Redis restart drops what was in flight):
streams carry offsets and the client fetches what it missed (docs/widget-protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
from typing import Any, Protocol

from . import redis_clients

log = logging.getLogger(__name__)

Event = dict[str, Any]


class Subscriber(Protocol):
    """What follows a group: a socket's `asyncio.Queue`, or anything that takes events the
    same way, on the loop it subscribed from (never blocking)."""

    def put_nowait(self, item: Event, /) -> None: ...


PROCESS_ID = uuid.uuid4().hex[:16]


def _new_process_id() -> None:
    global PROCESS_ID
    PROCESS_ID = uuid.uuid4().hex[:16]  # a forked child is another process
    _hubs.clear()


os.register_at_fork(after_in_child=_new_process_id)
# A process's inbox list keeps at most this many undelivered events (a stuck process must
# not fill Redis); what is trimmed is recovered like any other gap.
INBOX_MAX = 20_000
# Membership sets and inbox lists expire unless refreshed, so a dead process leaves nothing.
MEMBERSHIP_TTL_SECONDS = 3600
REFRESH_EVERY_SECONDS = 600.0
ALIVE_TTL_SECONDS = 6
HEARTBEAT_EVERY_SECONDS = 2.0
POP_BATCH = 256

# KEYS[1] = the group's member set. ARGV = sender id, inbox key prefix, max length, ttl,
# then the payloads. Each member other than the sender gets every payload, in order.
_FAN_OUT = """
local members = redis.call('SMEMBERS', KEYS[1])
local sender, prefix = ARGV[1], ARGV[2]
local cap, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
local sent = 0
for _, member in ipairs(members) do
  if member ~= sender then
    local inbox = prefix .. member
    for i = 5, #ARGV do redis.call('RPUSH', inbox, ARGV[i]) end
    redis.call('LTRIM', inbox, -cap, -1)
    redis.call('EXPIRE', inbox, ttl)
    sent = sent + 1
  end
end
return sent
"""


def _members_key(group: str) -> str:
    return redis_clients.key("fan", "group", group)


def _inbox_prefix() -> str:
    return redis_clients.key("fan", "inbox", "")


def alive_key(process_id: str) -> str:
    return redis_clients.key("alive", process_id)


class Hub:
    """This process's subscriptions on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.groups: dict[str, set[Subscriber]] = {}
        self.joining: dict[str, asyncio.Task[None]] = {}
        self.redis = redis_clients.async_client()
        self.outbox: asyncio.Queue[tuple[str, Event]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []
        self.script: Any = None

    # --- Local delivery ----------------------------------------------------------------------

    def deliver(self, group: str, event: Event) -> None:
        # A copy: a subscriber may unsubscribe as it takes the event (widget.botcache).
        for queue in tuple(self.groups.get(group, ())):
            queue.put_nowait(event)

    def publish(self, group: str, event: Event) -> None:
        """Deliver here and queue for the other processes (call on the hub's loop)."""
        self.deliver(group, event)
        if self.redis is not None:
            self._start()
            self.outbox.put_nowait((group, event))

    # --- Subscriptions -----------------------------------------------------------------------

    async def subscribe(self, group: str, queue: Subscriber) -> None:
        members = self.groups.setdefault(group, set())
        members.add(queue)
        if self.redis is None:
            return
        # Joined in Redis before the caller reads the state it will follow, so nothing in
        # between is missed; a second subscriber waits for the first one's join.
        joining = self.joining.get(group)
        if joining is None:
            joining = self.joining[group] = self.loop.create_task(self._join(group))
        await asyncio.shield(joining)

    async def _join(self, group: str) -> None:
        assert self.redis is not None
        self._start()
        key = _members_key(group)
        with contextlib.suppress(Exception):  # Redis down: local events still flow
            await (
                self.redis.pipeline(transaction=False)
                .sadd(key, PROCESS_ID)
                .expire(key, MEMBERSHIP_TTL_SECONDS)
                .execute()
            )

    def unsubscribe(self, group: str, queue: Subscriber) -> None:
        members = self.groups.get(group)
        if members is None:
            return
        members.discard(queue)
        if not members:
            del self.groups[group]
            self.joining.pop(group, None)
            if self.redis is not None:
                self.loop.create_task(self._leave(group))

    async def _leave(self, group: str) -> None:
        if group in self.groups or self.redis is None:
            return  # someone subscribed again meanwhile
        with contextlib.suppress(Exception):
            await self.redis.srem(_members_key(group), PROCESS_ID)

    # --- Between processes -------------------------------------------------------------------

    def _start(self) -> None:
        if self.tasks:
            return
        self.tasks = [
            self.loop.create_task(self._send_loop(), name="fanout:send"),
            self.loop.create_task(self._receive_loop(), name="fanout:receive"),
            self.loop.create_task(self._keep_alive(), name="fanout:alive"),
        ]

    async def _send_loop(self) -> None:
        assert self.redis is not None
        script = self.redis.register_script(_FAN_OUT)
        prefix = _inbox_prefix()
        while True:
            batch = [await self.outbox.get()]
            while not self.outbox.empty():
                batch.append(self.outbox.get_nowait())
            # Consecutive events of one group go in one script call; order is kept.
            runs: list[tuple[str, list[str]]] = []
            for group, event in batch:
                payload = json.dumps({"g": group, "e": event}, separators=(",", ":"))
                if runs and runs[-1][0] == group:
                    runs[-1][1].append(payload)
                else:
                    runs.append((group, [payload]))
            try:
                pipe = self.redis.pipeline(transaction=False)
                for group, payloads in runs:
                    await script(
                        keys=[_members_key(group)],
                        args=[PROCESS_ID, prefix, INBOX_MAX, MEMBERSHIP_TTL_SECONDS, *payloads],
                        client=pipe,
                    )
                await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fan-out to other processes failed (%d events): %s", len(batch), exc)

    async def _receive_loop(self) -> None:
        client = redis_clients.blocking_client(read_timeout=15.0)
        inbox = _inbox_prefix() + PROCESS_ID
        rejoin = True
        while True:
            try:
                if rejoin:
                    await self._rejoin(client)
                    rejoin = False
                popped = await client.blpop([inbox], timeout=5)
                if popped is None:
                    continue
                payloads = [popped[1]]
                more = await client.lpop(inbox, POP_BATCH)
                if more:
                    payloads.extend(more)
                for raw in payloads:
                    message = json.loads(raw)
                    self.deliver(message["g"], message["e"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Redis restarted or is unreachable: memberships were lost with it.
                log.warning("fan-out: reading from Redis failed (%s); retrying", exc)
                rejoin = True
                await asyncio.sleep(0.5)

    async def _rejoin(self, client: Any) -> None:
        """(Re)declare every group this process follows (after a Redis restart, and before
        the membership sets expire)."""
        if not self.groups:
            return
        pipe = client.pipeline(transaction=False)
        for group in list(self.groups):
            key = _members_key(group)
            pipe.sadd(key, PROCESS_ID).expire(key, MEMBERSHIP_TTL_SECONDS)
        await pipe.execute()

    async def _keep_alive(self) -> None:
        """Say this process is alive (replies it owns are not interrupted) and keep the
        memberships from expiring."""
        assert self.redis is not None
        since_rejoin = 0.0
        while True:
            try:
                await self.redis.set(alive_key(PROCESS_ID), 1, ex=ALIVE_TTL_SECONDS)
                since_rejoin += HEARTBEAT_EVERY_SECONDS
                if since_rejoin >= REFRESH_EVERY_SECONDS:
                    since_rejoin = 0.0
                    await self._rejoin(self.redis)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("fan-out: heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)


# One hub per running event loop: production has one loop per process; tests run a live
# server's loop beside others, and a subscriber must not be forgotten when another loop
# publishes.
_hubs: dict[asyncio.AbstractEventLoop, Hub] = {}
_hub_lock = threading.Lock()


def hub() -> Hub:
    """The running loop's hub."""
    loop = asyncio.get_running_loop()
    with _hub_lock:
        for stale in [other for other in _hubs if other.is_closed()]:
            del _hubs[stale]
        current = _hubs.get(loop)
        if current is None:
            current = _hubs[loop] = Hub(loop)
        return current


def _live_hubs() -> list[Hub]:
    with _hub_lock:
        return [h for h in _hubs.values() if h.loop.is_running() and not h.loop.is_closed()]


def start() -> None:
    """Start this process's fan-out tasks now (heartbeat included); call on the loop."""
    current = hub()
    if current.redis is not None:
        current._start()


async def subscribe(group: str, queue: Subscriber) -> None:
    await hub().subscribe(group, queue)


def unsubscribe(group: str, queue: Subscriber) -> None:
    hub().unsubscribe(group, queue)


def publish(group: str, event: Event) -> None:
    """Publish from code running on the event loop."""
    current = hub()
    current.publish(group, event)
    for other in _live_hubs():
        if other is not current:
            other.loop.call_soon_threadsafe(other.deliver, group, event)


def publish_soon(group: str, event: Event) -> None:
    """Publish from any thread without waiting: on the hubs' loops when there are any."""
    hubs = _live_hubs()
    if not hubs:
        _publish_without_hub(group, event)
        return
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    for n, target in enumerate(hubs):
        # The first hub also sends to the other processes; the rest deliver locally.
        send = target.publish if n == 0 else target.deliver
        if running is target.loop:
            send(group, event)
        else:
            target.loop.call_soon_threadsafe(send, group, event)


def _publish_without_hub(group: str, event: Event, sender: str | None = None) -> None:
    client = redis_clients.sync_client()
    if client is None:
        return  # embedded mode, and nobody in this process listens
    payload = json.dumps({"g": group, "e": event}, separators=(",", ":"))
    try:
        client.register_script(_FAN_OUT)(
            keys=[_members_key(group)],
            args=[
                sender or PROCESS_ID,
                _inbox_prefix(),
                INBOX_MAX,
                MEMBERSHIP_TTL_SECONDS,
                payload,
            ],
        )
    except Exception as exc:  # a Redis blip must not break the writer
        log.warning("fan-out of an event to %s failed: %s", group, exc)


def process_alive(process_id: str) -> bool:
    """Whether the process that owns a reply still runs (always True without Redis: then
    the only process is this one)."""
    if process_id == PROCESS_ID:
        return True
    client = redis_clients.sync_client()
    if client is None:
        return True
    try:
        return bool(client.exists(alive_key(process_id)))
    except Exception:
        return True  # cannot tell: do not interrupt a reply that may be running
