"""Benchmark: what the webhook events cost a reply when the workspace has no endpoint.

A reply raises two events (the visitor's message, then the bot's). For each, the write path
calls `events.emit`, which asks the webhooks listener's `wants` test: a per-bot flag
remembered in the process for 10 s and shared through the cache. With no endpoint nothing
else happens (no after-commit callback, no query). This times both halves with the flag
cached as "no endpoint", against the cache in use (local memory, or Redis with REDIS_URL).

    .venv/bin/python bench/api/events_overhead.py [--events 20000]
    REDIS_URL=redis://127.0.0.1:6379/15 .venv/bin/python bench/api/events_overhead.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
os.environ.setdefault("PARLEY_TESTING", "1")

import django  # noqa: E402

django.setup()

from django.core.cache import cache  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from chatbot.lib import events  # noqa: E402
from chatbot.webhooks import dispatch  # noqa: E402


def build() -> dict[str, object]:
    raise AssertionError("never built without an endpoint")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    bot_id = 987_654_321
    cache.set(dispatch._flag_key(bot_id), False, timeout=None)  # as after the first event

    started = time.perf_counter()
    for _ in range(args.events // 10):
        dispatch.forget_local_flags()  # every read goes to the shared cache
        events.emit(bot_id, "message.created", build, order_key="c_x")
    shared_us = (time.perf_counter() - started) / (args.events // 10) * 1e6

    started = time.perf_counter()
    with transaction.atomic():
        for _ in range(args.events):
            events.emit(bot_id, "message.created", build, order_key="c_x")
        registered = len(connection.run_on_commit)
    emit_us = (time.perf_counter() - started) / args.events * 1e6
    cache.delete(dispatch._flag_key(bot_id))
    print(f"cache: {cache.__class__.__name__}")
    print(f"emit, flag read from the shared cache: {shared_us:.2f} us (once per bot per 10 s)")
    print(f"emit, flag remembered in the process: {emit_us:.2f} us per event")
    print(
        f"after-commit callbacks registered: {registered}; per reply (2 events): "
        f"{2 * emit_us:.1f} us, no database query"
    )


if __name__ == "__main__":
    main()
