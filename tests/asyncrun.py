"""Run a coroutine from a sync test, on a fresh event loop in its own thread.

Sync tests that need to await something (e.g. next to Playwright's sync API, which sets an
event loop on the main thread while it is open) drive their coroutines through this helper.
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
