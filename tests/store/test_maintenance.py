"""Contract: retention."""

from __future__ import annotations

from wanllm_server.store import Retention, RunCreate, Store
from wanllm_server.store.batches import system_batch_from_rows

from tests.store.store_helpers import batch

HOUR = 3_600_000_000
DAY = 24 * HOUR
BASE = 1_780_000_000 // 3600 * HOUR  # an hour boundary


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
        [{"run_id": str(run.id), "metric_type": "cpu", "value": v, "time": t / 1e6}
         for v, t in ((1, now - 40 * DAY), (2, now - DAY))]
    ))  # fmt: skip
    removed = await store.apply_retention(Retention(metrics_days=90, system_metrics_days=30), now)
    assert removed == {"metrics": 4, "system_metrics": 1, "media": 0}
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
        "media": 0,
    }
