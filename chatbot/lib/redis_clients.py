"""Direct Redis clients for the reply hot path (rate limits, streaming text, fan-out).

Django's cache API runs its async methods through `sync_to_async`, so every call from the
event loop hops to a thread and back; these clients speak to Redis from the loop itself.
`None` in the embedded mode (no REDIS_URL): callers then use this process's memory, which is
the only process.

An asyncio client belongs to the loop that made it (its connections do), so there is one per
running loop: one in production, a fresh one per test.
"""

from __future__ import annotations

import asyncio
import threading

import redis
import redis.asyncio
from django.conf import settings

KEY_PREFIX = "parley:"

_async: tuple[asyncio.AbstractEventLoop, redis.asyncio.Redis] | None = None
_sync: redis.Redis | None = None
_sync_lock = threading.Lock()

# Short timeouts: a Redis that does not answer must fail a request, not hang it. Blocking
# reads (fan-out) use their own client with a longer read timeout.
READ_TIMEOUT = 5.0
CONNECT_TIMEOUT = 2.0


def async_client() -> redis.asyncio.Redis | None:
    """The running loop's asyncio client, or None without REDIS_URL."""
    global _async
    if not settings.REDIS_URL:
        return None
    loop = asyncio.get_running_loop()
    if _async is None or _async[0] is not loop:
        _async = (
            loop,
            redis.asyncio.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=READ_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
            ),
        )
    return _async[1]


def blocking_client(read_timeout: float) -> redis.asyncio.Redis:
    """A client of its own for a blocking read (BLPOP) on the running loop."""
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=read_timeout, socket_connect_timeout=CONNECT_TIMEOUT
    )


def sync_client() -> redis.Redis | None:
    """A thread-safe client for synchronous code (worker threads, Celery), or None."""
    global _sync
    if not settings.REDIS_URL:
        return None
    with _sync_lock:
        if _sync is None:
            _sync = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=READ_TIMEOUT,
                socket_connect_timeout=CONNECT_TIMEOUT,
            )
        return _sync


def key(*parts: object) -> str:
    return KEY_PREFIX + ":".join(str(part) for part in parts)
