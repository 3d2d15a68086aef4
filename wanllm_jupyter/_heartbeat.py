"""A run's heartbeat: a task on the kernel's I/O loop (:mod:`._io_loop`) that
POSTs ``runs/{id}/heartbeat`` every ``every`` seconds while the run's sender is
online (:mod:`.core.heartbeat`). The POST runs on the loop's blocking helper
thread; a failing streak is logged once (:class:`._io_loop.FailureLog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._loop_task import LoopTask

if TYPE_CHECKING:
    from ._sender import Sender
    from ._transport import Transport


class Heartbeat(LoopTask):
    """Beats for one run from :meth:`start` until :meth:`stop` (which may come first)."""

    def __init__(self, run_id: str, transport: Transport, sender: Sender, every: float) -> None:
        super().__init__()
        self.run_id, self.transport, self.sender, self.every = run_id, transport, sender, every

    async def _main(self) -> None:
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
