"""Contract: hourly rollups and retention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from wanllm_server.store import Retention, RunCreate, Store
from wanllm_server.store.batches import system_batch_from_rows

from tests.store.store_helpers import batch

HOUR = 3_600_000_000
DAY = 24 * HOUR
BASE = 1_780_000_000 // 3600 * HOUR  # an hour boundary


async def test_hourly_rollups(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    times = [BASE + 1, BASE + 2, BASE + HOUR - 1, BASE + HOUR, BASE + 3 * HOUR + 5]
    vals = [1.0, 2.0, math.nan, 4.0, 5.0]
    await store.write_metrics(
        batch(
            run.id,
            {"x": (list(range(5)), vals), "y": ([0], [7.0])},
            times={"x": times, "y": [BASE]},
        )
    )
    rows = await store.hourly_rollups(run.id, ["x"])
    got = [
        (r.hour - BASE, r.metric_name, r.count, r.avg_value, r.min_value, r.max_value) for r in rows
    ]
    assert got == [
        (0, "x", 3, 1.5, 1.0, 2.0), (HOUR, "x", 1, 4.0, 4.0, 4.0), (3 * HOUR, "x", 1, 5.0, 5.0, 5.0)
    ]  # fmt: skip
    assert rows[0].std_dev == pytest.approx(np.std([1.0, 2.0], ddof=1)) and rows[1].std_dev is None
    window = await store.hourly_rollups(run.id, start_time=BASE + HOUR, end_time=BASE + 2 * HOUR)
    assert [(r.metric_name, r.count) for r in window] == [("x", 1)]
    assert {r.metric_name for r in await store.hourly_rollups(run.id)} == {"x", "y"}


async def test_retention_drops_old_points_and_keeps_stats_exact(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    now = BASE + 100 * DAY
    old = [now - 95 * DAY + i for i in range(3)]
    new = [now - DAY + i for i in range(3)]
    await store.write_metrics(
        batch(
            run.id,
            {"x": ([0, 1, 2], [9.0, -9.0, 1.0]), "gone": ([0], [1.0])},
            times={"x": old, "gone": [old[0]]},
        )
    )
    await store.write_metrics(batch(run.id, {"x": ([3, 4, 5], [2.0, 3.0, 4.0])}, times={"x": new}))
    await store.write_system_metrics(system_batch_from_rows(
        [{"run_id": str(run.id), "metric_type": "cpu", "value": v, "time": t / 1e6} for v, t in ((1, now - 40 * DAY), (2, now - DAY))]
    ))  # fmt: skip
    removed = await store.apply_retention(Retention(metrics_days=90, system_metrics_days=30), now)
    assert removed == {"metrics": 4, "system_metrics": 1}
    s = await store.history(run.id, "x")
    assert s.steps.tolist() == [3, 4, 5]
    st = await store.stats(run.id, "x")
    assert (st.count, st.min_value, st.max_value, st.avg_value, st.first_step) == (
        3,
        2.0,
        4.0,
        3.0,
        3,
    )
    d = await store.downsample(run.id, "x", 1, start_step=0, end_step=5)
    assert d.total_points == 3 and d.bucket_min.tolist() == [2.0]
    assert [m.name for m in await store.metric_names(run.id)] == ["x"]
    assert [s.values.tolist() for s in await store.system_metrics(run.id)] == [[2.0]]
    assert await store.apply_retention(Retention(0, 0), now + 1000 * DAY) == {
        "metrics": 0,
        "system_metrics": 0,
    }
