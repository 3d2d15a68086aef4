"""A task on the kernel's I/O loop (:mod:`._io_loop`) that runs from :meth:`LoopTask.start`
until :meth:`LoopTask.stop`, which may come first. The loop's module (asyncio) is imported
by ``start``, not with this one (:mod:`._loop_start`)."""

from __future__ import annotations

import concurrent.futures
import threading


class LoopTask:
    """Subclasses write :meth:`_main`; :meth:`_end` cancels it unless overridden."""

    def __init__(self) -> None:
        self._task: concurrent.futures.Future[None] | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def start(self) -> None:
        from ._io_loop import KernelLoop

        with self._lock:
            if not self._stopped:
                self._task = KernelLoop.get().spawn(self._main())

    def stop(self) -> None:
        """End the task; before :meth:`start`, it will not start."""
        with self._lock:
            self._stopped = True
            task = self._task
        if task is not None:
            self._end(task)

    def _end(self, task: concurrent.futures.Future[None]) -> None:
        task.cancel()

    async def _main(self) -> None:
        raise NotImplementedError
