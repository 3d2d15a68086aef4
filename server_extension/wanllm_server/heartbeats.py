"""Signs of life: explicit heartbeats and accepted ingest batches.

Any traffic from a run keeps it alive: an explicit ``runs/{id}/heartbeat`` is
recorded at once, an accepted batch (metrics or system metrics) at most every
:data:`~wanllm_jupyter.core.heartbeat.HEARTBEAT_INTERVAL` seconds per run on
this server, so a logging run costs one small run update per interval, not
one per batch. A ``crashed`` run that shows a sign of life is ``running``
again; the change is published live.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wanllm_jupyter.core.heartbeat import HEARTBEAT_INTERVAL

from .store.base import RunUpdate, StoreError
from .store.run_rules import revived

if TYPE_CHECKING:
    from .live import LiveHub
    from .store.base import Store

log = logging.getLogger(__name__)
MAX_TRACKED_RUNS = 100_000  # past this, forget every run's last beat (one extra write each)


class Heartbeats:
    """Records signs of life in the store and publishes revived runs."""

    def __init__(self, live: LiveHub, every: float = HEARTBEAT_INTERVAL) -> None:
        self.live, self.every = live, every
        self._last: dict[uuid.UUID, float] = {}  # run -> when this server last recorded a beat

    async def beat(self, store: Store, run_id: uuid.UUID) -> None:
        """An explicit heartbeat (RunNotFound for an unknown run)."""
        run = await store.update_run(run_id, RunUpdate(heartbeat=True))
        self._last[run_id] = time.monotonic()
        if revived(run):
            self.live.publish_run(run)

    async def traffic(self, store: Store, run_ids: Iterable[uuid.UUID]) -> None:
        """Accepted ingest from ``run_ids``: a heartbeat for each run not beaten
        within the interval. Never fails the request that carried the traffic."""
        now = time.monotonic()
        due = [r for r in run_ids if now - self._last.get(r, -float("inf")) >= self.every]
        if not due:
            return
        if len(self._last) >= MAX_TRACKED_RUNS:
            self._last.clear()
        self._last.update(dict.fromkeys(due, now))  # concurrent batches: one write
        for run_id in due:
            try:
                await self.beat(store, run_id)
            except StoreError as e:  # e.g. the run was deleted meanwhile
                self._last.pop(run_id, None)
                log.debug("wanllm: heartbeat of run %s from ingest skipped: %s", run_id, e)
