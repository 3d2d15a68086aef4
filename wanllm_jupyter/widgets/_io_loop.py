"""The widgets' side of the kernel's one I/O loop (:mod:`wanllm_jupyter._io_loop`):
the loop holds every live socket, run-table feed, redraw pacing and timer;
blocking widget work (HTTP re-queries, drawing into widgets) runs on one worker
thread (``wanllm-widgets-work``), so that the loop keeps reading sockets while a
chart re-queries the server.

Both run beside the kernel's main thread, so charts keep growing while the
cell that logs is still executing (ipykernel sends comm messages from any
thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .._io_loop import KernelLoop, ProcessWide

T = TypeVar("T")
log = logging.getLogger(__name__)


class IOLoop(ProcessWide):
    """The kernel loop plus the widgets' worker thread; :meth:`get` starts them once."""

    def __init__(self) -> None:
        self._kernel = KernelLoop.get()
        self.loop = self._kernel.loop
        self._worker = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="wanllm-widgets-work"
        )

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread (from any thread)."""
        self._kernel.call_soon(fn, *args)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop (from any thread); cancelling the future cancels it."""
        return self._kernel.spawn(coro)

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on the worker thread (call from the loop)."""
        return await self.loop.run_in_executor(self._worker, fn, *args)

    def later(self, delay: float, fn: Callable[[], object]) -> concurrent.futures.Future[None]:
        """Run ``fn`` on the worker after ``delay`` seconds (0: soon); cancel the future
        to drop it. An exception is logged."""

        async def wait_then_run() -> None:
            await asyncio.sleep(delay)
            try:
                await self.blocking(fn)
            except Exception:
                log.exception("wanllm: a widget's timed task failed")

        return self.spawn(wait_then_run())
