"""The kernel's one I/O loop: an asyncio loop on one daemon thread (``wanllm-io``)
shared by the logging client (heartbeats, system sampling) and the widgets (live
sockets, run-table feeds, redraw pacing, timers). Short blocking calls made for
it (host-name lookups, heartbeat POSTs, psutil samples) run on one helper thread
(``wanllm-io-blocking``, made at the first), so the loop itself never blocks.
Two threads however many runs and widgets there are (docs/kernel-threads.md).

Started by the first :meth:`KernelLoop.get` (by ``init()`` or a widget), not at
``import wanllm_jupyter``: importing asyncio costs about 20 ms.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Self, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class ProcessWide:
    """A class with one instance per process, made by the first :meth:`get`."""

    _instances: ClassVar[dict[type, Any]] = {}
    _instances_lock: ClassVar[threading.RLock] = threading.RLock()  # get() may get another

    @classmethod
    def get(cls) -> Self:
        with cls._instances_lock:
            if cls not in cls._instances:
                cls._instances[cls] = cls()
            instance: Self = cls._instances[cls]
            return instance


class KernelLoop(ProcessWide):
    """The process-wide loop thread; :meth:`get` starts it once."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        # the loop's default executor: tornado resolves host names there too
        self.loop.set_default_executor(DaemonWorker("wanllm-io-blocking"))
        threading.Thread(target=self.loop.run_forever, name="wanllm-io", daemon=True).start()

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread (from any thread)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def spawn(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop (from any thread); cancelling the future cancels it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def offload(self, fn: Callable[..., T], *args: Any) -> T:
        """Await ``fn(*args)`` run on the blocking helper thread (call from the loop);
        for short calls only: they queue behind each other."""
        return await self.loop.run_in_executor(None, fn, *args)


class DaemonWorker(concurrent.futures.ThreadPoolExecutor):
    """One daemon thread running submitted calls in order, made at the first. Unlike
    a ``ThreadPoolExecutor`` (a subclass only because asyncio's default executor must
    be one; none of its machinery is used) it still takes calls while the interpreter
    exits (a run's last system sample at ``atexit``) and is not joined then (a
    heartbeat hanging on a dead server does not hold up the exit)."""

    def __init__(self, name: str) -> None:
        super().__init__(1)
        self.name = name
        self._calls: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], Callable[[], Any]]]
        self._calls = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((future, lambda: fn(*args, **kwargs)))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        return future

    def _work(self) -> None:
        while True:
            future, call = self._calls.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:  # the caller awaits it
                future.set_exception(exc)


class FailureLog:
    """Logs the first failure of a streak (a reconnect or retry loop's) as a warning,
    later ones at debug level, until :meth:`ok` ends the streak."""

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
