"""Run a coroutine from a sync test, on a fresh event loop in its own thread.

pytest-asyncio tests break once the session-scoped Playwright browser is up (its sync API
keeps an event loop set on the main thread), so tests that may run in the same session as
the browser tests drive their coroutines through this helper instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run[T](coroutine: Coroutine[Any, Any, T]) -> T:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
