"""Shared builders for the live hub tests."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import defaultdict
from typing import Any

import numpy as np
import orjson
from wanllm_server.live import LiveHub
from wanllm_server.live_subscriber import Subscriber
from wanllm_server.store.base import MetricBatch, Run

RUN = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER = uuid.UUID("00000000-0000-4000-8000-000000000002")


def make_batch(
    run: uuid.UUID,
    names: list[str],
    name_idx: list[int],
    steps: list[int],
    values: list[float],
    *,
    run_idx: list[int] | None = None,
    runs: list[uuid.UUID] | None = None,
) -> MetricBatch:
    n = len(values)
    return MetricBatch(
        batch_id=uuid.uuid4().hex,
        run_ids=runs or [run],
        names=names,
        run_idx=np.asarray(run_idx or [0] * n, dtype=np.int32),
        name_idx=np.asarray(name_idx, dtype=np.int32),
        steps=np.asarray(steps, dtype=np.int64),
        times=np.asarray([1_700_000_000_000_000 + s for s in steps], dtype=np.int64),
        values=np.asarray(values, dtype=np.float64),
    )


def make_run(state: str = "running") -> Run:
    return Run(
        id=RUN,
        project="p",
        name="bright-fox",
        state=state,  # type: ignore[arg-type]
        created_at=1_700_000_000_000_000,
        updated_at=1_700_000_000_000_000,
    )


async def next_message(sub: Subscriber, timeout: float = 2.0) -> dict[str, Any]:
    return orjson.loads(await asyncio.wait_for(sub.get(), timeout))


_SEQ: defaultdict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))


def publish(hub: LiveHub, batch: MetricBatch) -> dict[str, int]:
    """Publish ``batch`` as the ingest path does after a commit: with each of
    its runs' next live sequence number (one counter per run for the whole
    test session, like a store shared by every hub)."""
    seqs = {str(r): next(_SEQ[str(r)]) for r in batch.run_ids}
    hub.publish_points(batch, seqs)
    return seqs
