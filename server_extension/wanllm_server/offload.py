"""A small, bounded thread pool for the CPU-heavy part of requests.

Smoothing, big encodings and the like run here, never on the event loop, so
``/health``, notebooks and kernels stay responsive meanwhile. At most
``workers`` such jobs run at once; more wait their turn in the pool's queue.
Work sent here should release the GIL or yield it often (numpy, or a C call
per bounded slice: see :func:`.handlers.wire.json_pieces`).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

INLINE_POINTS = 20_000  # below this many points, offloading costs more than it saves
BODY_BYTES_PER_POINT = 40  # about one point of a columnar JSON or Arrow request body


def default_workers() -> int:
    """Half the usable CPUs, at least 1 and at most 4: the loop keeps a core."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cpus or 2) // 2))


class Offload:
    """``await offload(fn, *args)``: ``fn(*args)`` on a worker thread."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or default_workers()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="wanllm-cpu")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def maybe(self, points: int, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` inline for fewer than :data:`INLINE_POINTS` points, else offloaded."""
        if points < INLINE_POINTS:
            return fn(*args)
        return await self(fn, *args)

    def close(self) -> None:
        """Drop queued jobs; running ones finish on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
