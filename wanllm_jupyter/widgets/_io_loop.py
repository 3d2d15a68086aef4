"""The kernel widgets' one I/O loop: an asyncio loop on a daemon thread
(``wanllm-io``) holds every live socket, run-table feed, redraw pacing and
timer; blocking work (HTTP re-queries, drawing into widgets) runs on one worker
thread (``wanllm-widgets-work``), so that the loop keeps reading sockets while
a chart re-queries the server; host-name lookups of new sockets have a third.
Three threads, however many widgets are open.

Both run beside the kernel's main thread, so charts keep growing while the
cell that logs is still executing (ipykernel sends comm messages from any
thread).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class ProcessWide:
    """A class with one instance per process, made by the first :meth:`get`."""

    _instances: ClassVar[dict[type, Any]] = {}
    _instances_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get(cls) -> Self:
        with cls._instances_lock:
            if cls not in cls._instances:
                cls._instances[cls] = cls()
            instance: Self = cls._instances[cls]
            return instance


class IOLoop(ProcessWide):
    """The process-wide loop thread and worker; :meth:`get` starts them once."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._worker = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="wanllm-widgets-work"
        )
        # tornado resolves host names in the loop's default executor: a thread of its
        # own (made at the first lookup), so that a lookup never waits behind drawing
        # and drawing code may wait for a socket to open
        self.loop.set_default_executor(
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="wanllm-io-resolve")
        )
        threading.Thread(target=self.loop.run_forever, name="wanllm-io", daemon=True).start()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread (from any thread)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop (from any thread); cancelling the future cancels it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

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


class FailureLog:
    """Logs the first failure of a streak (a reconnect loop's), then stays quiet
    until :meth:`ok` ends the streak."""

    def __init__(self, what: str) -> None:
        self.what, self.failing = what, False

    def failed(self, exc: BaseException) -> None:
        if self.failing:
            log.debug("wanllm: %s failed again: %r", self.what, exc)
            return
        self.failing = True
        log.warning("wanllm: %s failed (%r); retrying until it works", self.what, exc)

    def ok(self) -> None:
        if self.failing:
            self.failing = False
            log.warning("wanllm: %s works again", self.what)
