"""A run's heartbeat: a task on the kernel's I/O loop (:mod:`._io_loop`) that
POSTs ``runs/{id}/heartbeat`` every ``every`` seconds while the run's sender is
online (:mod:`.core.heartbeat`). The POST runs on the loop's blocking helper
thread; a failing streak is logged once (:class:`._io_loop.FailureLog`). The
loop's module (asyncio) is imported by :meth:`Heartbeat.start`, not with this one
(:mod:`._loop_start`)."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._sender import Sender
    from ._transport import Transport


class Heartbeat:
    """Beats for one run from :meth:`start` until :meth:`stop` (which may come first)."""

    def __init__(self, run_id: str, transport: Transport, sender: Sender, every: float) -> None:
        self.run_id, self.transport, self.sender, self.every = run_id, transport, sender, every
        self._task: concurrent.futures.Future[None] | None = None
        self._stopped = False
        self._lock = threading.Lock()

    def start(self) -> None:
        from ._io_loop import KernelLoop

        with self._lock:
            if not self._stopped:
                self._task = KernelLoop.get().spawn(self._beat())

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._task is not None:
                self._task.cancel()

    async def _beat(self) -> None:
        import asyncio

        from ._io_loop import FailureLog, KernelLoop

        io, failures = KernelLoop.get(), FailureLog(f"heartbeat of run {self.run_id}")
        while True:
            await asyncio.sleep(self.every)
            if not self.sender.online:
                continue  # the sender is retrying or spooling: it reports the outage
            try:
                await io.offload(self.transport.heartbeat, self.run_id)
            except Exception as exc:
                failures.failed(exc)
            else:
                failures.ok()
