"""CPU-heavy work (decoding and re-encoding images, extracting text from files) kept off the
event loop and bounded.

The event loop serves every tenant's sockets, and the database thread every tenant's queries:
a 40-megapixel upload decoded on either stalls them all. Heavy work runs instead in a small
pool of its own, HEAVY_WORK_THREADS threads per process (Pillow and the extractors release
the GIL for most of their work); more work at once waits for a thread rather than competing
for the CPU with the replies. Work done in plain threads (knowledge syncs) takes the same
number of slots through `slot()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings

_executor: ThreadPoolExecutor | None = None
_slots: threading.BoundedSemaphore | None = None
_lock = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=settings.HEAVY_WORK_THREADS, thread_name_prefix="parley-heavy"
            )
        return _executor


async def run[**P, R](fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`fn(*args, **kwargs)` in the heavy-work pool, awaited from the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(fn, *args, **kwargs))


@contextlib.contextmanager
def slot() -> Iterator[None]:
    """One of the HEAVY_WORK_THREADS slots, for heavy work in a thread of its own."""
    global _slots
    with _lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings.HEAVY_WORK_THREADS)
    with _slots:
        yield
