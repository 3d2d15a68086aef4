"""A small, bounded thread pool for the CPU-heavy part of requests.

Smoothing, big encodings and decodes, M4 of raw points and the like run here,
never on the event loop, so ``/health``, notebooks and kernels stay responsive
meanwhile. At most ``workers`` such jobs run at once; more wait their turn in
the pool's queue. Work sent here should release the GIL or yield it often
(numpy, or a C call per bounded slice: see :func:`.handlers.wire.json_pieces`).

The workers may run at a lower CPU priority (``nice``; the app's
``offload_nice``, default 0). Measured with benchmarks/hostile.py: it did not
lower the longest event-loop block, and when other processes keep the CPUs
busy the niced workers were starved (a 1M-point export took 1.1 s instead of
0.4 s), so it is off unless asked for.

One pool serves the process (:func:`pool`): the app makes it with its settings
(:func:`install`) and the store's read path uses it too (:func:`maybe`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

INLINE_POINTS = 20_000  # below this many points, offloading costs more than it saves
BODY_BYTES_PER_POINT = 40  # about one point of a columnar JSON or Arrow request body
DEFAULT_NICE = 0  # the workers' niceness above the server's (see the module doc)


def default_workers() -> int:
    """Half the usable CPUs, at least 1 and at most 4: the loop keeps a core."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cpus or 2) // 2))


def lower_priority(nice: int) -> None:
    """Raise the calling thread's niceness by ``nice`` (Linux: per thread; elsewhere
    a no-op). Never raises: a priority is a hint, not a requirement."""
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    tid = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)


class Offload:
    """``await offload(fn, *args)``: ``fn(*args)`` on a worker thread ``nice``
    steps below the server's priority."""

    def __init__(self, workers: int | None = None, nice: int = DEFAULT_NICE) -> None:
        self.workers = workers or default_workers()
        self.nice = nice
        self._pool = ThreadPoolExecutor(
            self.workers, "wanllm-cpu", initializer=lower_priority, initargs=(nice,)
        )

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


_pool: Offload | None = None


def pool() -> Offload:
    """The process's pool (made with the defaults if no app installed one)."""
    global _pool
    if _pool is None:
        _pool = Offload()
    return _pool


def install(workers: int | None = None, nice: int = DEFAULT_NICE) -> Offload:
    """Make the process's pool with these settings (the app, at start). One it
    replaces keeps serving whoever holds it until they close it."""
    global _pool
    _pool = Offload(workers, nice)
    return _pool


def uninstall(offload: Offload) -> None:
    """Close ``offload``; the process's next :func:`pool` call makes a new one."""
    global _pool
    offload.close()
    if _pool is offload:
        _pool = None


async def maybe(points: int, fn: Callable[..., T], *args: Any) -> T:
    """:meth:`Offload.maybe` on the process's pool."""
    return await pool().maybe(points, fn, *args)
