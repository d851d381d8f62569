"""Fixed-window rate limits in Django's cache (Redis when configured, so shared by processes).

Limits live in settings.WIDGET_RATE_LIMITS (name → (count, window seconds)) over these
defaults; the protocol doc lists them.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache

from chatbot.core import metrics

DEFAULT_LIMITS: dict[str, tuple[int, int]] = {
    "send:visitor": (20, 60),
    "send:ip": (60, 60),
    "send:bot": (600, 60),
    "session:ip": (30, 60),
    "connect:ip": (60, 60),
    "upload:visitor": (10, 60),
    "typing:visitor": (30, 60),
}


class RateLimited(Exception):
    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"Too many requests ({scope}); retry in {retry_after} s.")
        self.scope = scope
        self.retry_after = retry_after
        metrics.rate_limit_refused(scope)


def _limit(name: str) -> tuple[int, int]:
    configured = getattr(settings, "WIDGET_RATE_LIMITS", None) or {}
    return configured.get(name, DEFAULT_LIMITS[name])


def hit(name: str, key: object) -> None:
    """Count one event for `key` under limit `name`; raise RateLimited when over it."""
    count, window = _limit(name)
    now = time.time()
    window_start = int(now // window * window)
    cache_key = f"rl:{name}:{key}:{window_start}"
    cache.add(cache_key, 0, timeout=window + 5)
    try:
        used = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=window + 5)
        used = 1
    if used > count:
        raise RateLimited(name, max(1, int(window_start + window - now + 0.999)))


def hit_all(*checks: tuple[str, object]) -> None:
    """Count against every limit; raise the longest wait among those exceeded."""
    worst: RateLimited | None = None
    for name, key in checks:
        try:
            hit(name, key)
        except RateLimited as exc:
            if worst is None or exc.retry_after > worst.retry_after:
                worst = exc
    if worst is not None:
        raise worst
