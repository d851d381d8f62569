"""Where the text of a reply that is still streaming lives, readable by every process.

The reply task writes the whole text so far before it publishes each delta (Redis with
REDIS_URL, else this process's cache), together with the id of the process that runs it. A
socket that reconnects, on any process, reads it to resume the stream; a client that saw a
gap fetches the missing part from it; and when the owning process is gone (its heartbeat
expired: `fanout.process_alive`) the reply is known to be interrupted at once, not after the
ten-minute sweep. The message row gets the text every few seconds and at the end.

While Redis is unreachable (a restart) the store is skipped, not fatal: the reply goes on
streaming to this process's sockets and ends in its row; readers fall back to the row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from django.core.cache import cache
from redis.exceptions import RedisError

from chatbot.lib import fanout, redis_clients

log = logging.getLogger(__name__)

TTL_SECONDS = 600


@dataclass(frozen=True, slots=True)
class Partial:
    owner: str
    text: str


def _key(conversation_id: int, seq: int) -> str:
    return redis_clients.key("partial", int(conversation_id), int(seq))


def _encode(text: str) -> str:
    return f"{fanout.PROCESS_ID}\n{text}"


def _decode(raw: bytes | str | None) -> Partial | None:
    if raw is None:
        return None
    value = raw.decode() if isinstance(raw, bytes) else raw
    owner, _, text = value.partition("\n")
    return Partial(owner, text)


async def save(conversation_id: int, seq: int, text: str) -> None:
    client = redis_clients.async_client()
    if client is None:
        # The local-memory cache: no I/O, so it is called from the loop directly.
        cache.set(_key(conversation_id, seq), _encode(text), TTL_SECONDS)
    else:
        try:
            await client.set(_key(conversation_id, seq), _encode(text), ex=TTL_SECONDS)
        except RedisError as exc:
            log.warning("stream store: cannot save reply %s/%s: %s", conversation_id, seq, exc)


async def aread(conversation_id: int, seq: int) -> Partial | None:
    client = redis_clients.async_client()
    if client is None:
        return _decode(cache.get(_key(conversation_id, seq)))
    try:
        return _decode(await client.get(_key(conversation_id, seq)))
    except RedisError as exc:
        log.warning("stream store: cannot read reply %s/%s: %s", conversation_id, seq, exc)
        return None


def read(conversation_id: int, seq: int) -> Partial | None:
    """The same, from synchronous code."""
    client = redis_clients.sync_client()
    if client is None:
        return _decode(cache.get(_key(conversation_id, seq)))
    try:
        return _decode(client.get(_key(conversation_id, seq)))
    except RedisError as exc:
        log.warning("stream store: cannot read reply %s/%s: %s", conversation_id, seq, exc)
        return None


class PipelineStep(Protocol):
    """Work that rides in `forget`'s round trip (the reply's usage: billing.meter)."""

    def queue(self, pipe: Any) -> None: ...

    def apply_locally(self) -> None: ...


async def forget(conversation_id: int, seq: int, also: Sequence[PipelineStep] = ()) -> None:
    """Drop the streaming text; `also` is queued in the same round trip."""
    client = redis_clients.async_client()
    if client is None:
        cache.delete(_key(conversation_id, seq))
        for step in also:
            step.apply_locally()
        return
    pipe = client.pipeline(transaction=False)
    pipe.delete(_key(conversation_id, seq))
    for step in also:
        step.queue(pipe)
    try:
        await pipe.execute()
    except RedisError as exc:  # the text expires by itself; the roll-up still counts usage
        log.warning("stream store: cannot forget reply %s/%s: %s", conversation_id, seq, exc)
