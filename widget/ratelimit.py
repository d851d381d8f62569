"""Fixed-window rate limits, shared by every process through Redis when it is configured.

Limits live in settings.WIDGET_RATE_LIMITS (name → (count, window seconds)) over
settings.WIDGET_RATE_LIMIT_DEFAULTS; the protocol doc lists them. With REDIS_URL the counters
are Redis keys, counted with one pipelined round trip from the event loop (`ahit`,
`ahit_all`) or from a thread (`hit`); without it they live in the local-memory cache (this
process is the only one), which needs no I/O and is called directly. While Redis is
unreachable the limits let requests through (logged): a Redis restart must not take the chat
down with it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError

from chatbot.core import metrics
from chatbot.lib import redis_clients

log = logging.getLogger(__name__)

# The defaults live in settings (WIDGET_RATE_LIMIT_DEFAULTS), the one list of scopes.
DEFAULT_LIMITS = settings.WIDGET_RATE_LIMIT_DEFAULTS


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"Too many requests ({scope}); retry in {retry_after} s.")
        self.scope = scope
        self.retry_after = retry_after
        metrics.rate_limit_refused(scope)


def _limit(name: str) -> tuple[int, int]:
    configured = getattr(settings, "WIDGET_RATE_LIMITS", None) or {}
    return configured.get(name, DEFAULT_LIMITS[name])


class _Window:
    """One limit's current window for one key."""

    def __init__(self, name: str, key: object) -> None:
        self.name = name
        self.count, self.seconds = _limit(name)
        self.now = time.time()
        self.start = int(self.now // self.seconds * self.seconds)
        self.key = redis_clients.key("rl", name, key, self.start)
        self.ttl = self.seconds + 5

    def refusal(self, used: int) -> RateLimited | None:
        if used <= self.count:
            return None
        return RateLimited(self.name, max(1, int(self.start + self.seconds - self.now + 0.999)))


def _count_locally(window: _Window) -> int:
    cache.add(window.key, 0, timeout=window.ttl)
    try:
        return int(cache.incr(window.key))
    except ValueError:  # expired between add and incr
        cache.add(window.key, 1, timeout=window.ttl)
        return 1


def _worst(windows: list[_Window], used: list[int]) -> RateLimited | None:
    """The longest wait among the limits exceeded."""
    worst: RateLimited | None = None
    for window, count in zip(windows, used, strict=True):
        refusal = window.refusal(count)
        if refusal is not None and (worst is None or refusal.retry_after > worst.retry_after):
            worst = refusal
    return worst


async def ahit_all(*checks: tuple[str, object]) -> None:
    """Count one event against every limit; raise the longest wait among those exceeded."""
    windows = [_Window(name, key) for name, key in checks]
    client = redis_clients.async_client()
    if client is None:
        used = [_count_locally(window) for window in windows]
    else:
        pipe = client.pipeline(transaction=False)
        for window in windows:
            pipe.set(window.key, 0, ex=window.ttl, nx=True).incr(window.key)
        try:
            used = [int(value) for value in (await pipe.execute())[1::2]]
        except RedisError as exc:
            log.warning("rate limits not counted (Redis: %s)", exc)
            return
    refusal = _worst(windows, used)
    if refusal is not None:
        raise refusal


async def ahit(name: str, key: object) -> None:
    """Count one event for `key` under limit `name`; raise RateLimited when over it."""
    await ahit_all((name, key))


def hit_all(*checks: tuple[str, object]) -> None:
    """`ahit_all` for synchronous code."""
    windows = [_Window(name, key) for name, key in checks]
    client = redis_clients.sync_client()
    if client is None:
        used = [_count_locally(window) for window in windows]
    else:
        pipe = client.pipeline(transaction=False)
        for window in windows:
            pipe.set(window.key, 0, ex=window.ttl, nx=True).incr(window.key)
        try:
            used = [int(value) for value in pipe.execute()[1::2]]
        except RedisError as exc:
            log.warning("rate limits not counted (Redis: %s)", exc)
            return
    refusal = _worst(windows, used)
    if refusal is not None:
        raise refusal


def hit(name: str, key: object) -> None:
    hit_all((name, key))
