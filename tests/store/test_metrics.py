"""Contract: metric writes (atomic, idempotent, exact) and reads."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
from wanllm_server.store import (
    MetricNotFound,
    RunCreate,
    RunNotFound,
    Store,
    SystemMetricBatch,
)
from wanllm_server.store.batches import metric_batch_from_columns, system_batch_from_rows

from tests.store.store_helpers import T0, batch, bits


async def test_write_and_read_back(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    res = await store.write_metrics(
        batch(run.id, {"loss": ([0, 1, 2], [3.0, 2.0, 1.0]), "acc": ([0], [0.5])})
    )
    assert (res.points, res.duplicate) == (4, False)
    s = await store.history(run.id, "loss")
    assert s.steps.tolist() == [0, 1, 2] and s.values.tolist() == [3.0, 2.0, 1.0]
    assert s.times.tolist() == [T0, T0 + 1, T0 + 2]
    assert s.steps.dtype == np.int64 and s.times.dtype == np.int64 and s.values.dtype == np.float64
    infos = await store.metric_names(run.id)
    assert [(m.name, m.count, m.last_step, m.last_time) for m in infos] == [
        ("acc", 1, 0, T0),
        ("loss", 3, 2, T0 + 2),
    ]


async def test_project_metric_names_span_its_runs_only(store: Store) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    a, _ = await store.create_run(RunCreate(project=project))
    b, _ = await store.create_run(RunCreate(project=project))
    other, _ = await store.create_run(RunCreate(project=project + "-other"))
    await store.create_run(RunCreate(project=project))  # no metrics: adds nothing
    await store.write_metrics(batch(a.id, {"loss": ([0, 1], [2.0, 1.0]), "val/acc": ([0], [0.5])}))
    await store.write_metrics(batch(b.id, {"loss": ([0], [3.0]), "lr": ([0], [0.1])}))
    await store.write_metrics(batch(other.id, {"elsewhere": ([0], [1.0])}))
    names = await store.project_metric_names(project)
    assert [(m.name, m.runs) for m in names] == [("loss", 2), ("lr", 1), ("val/acc", 1)]
    assert await store.project_metric_names("no-such-project") == []


async def test_nonfinite_values_round_trip_exactly(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    vals = [math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, 0.1]
    await store.write_metrics(batch(run.id, {"x": (list(range(len(vals))), vals)}))
    assert bits((await store.history(run.id, "x")).values) == bits(vals)
    latest = await store.latest(run.id, "x")
    assert bits([latest.value]) == bits([0.1])
    await store.write_metrics(batch(run.id, {"x": ([99], [math.nan])}, times={"x": [T0 + 99]}))
    assert math.isnan((await store.latest(run.id, "x")).value)


async def test_out_of_order_and_duplicate_steps_stored_as_logged(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(
        batch(run.id, {"x": ([5, 3, 5, 1], [1.0, 2.0, 3.0, 4.0])}, times={"x": [10, 11, 12, 13]})
    )
    await store.write_metrics(batch(run.id, {"x": ([3, 0], [5.0, 6.0])}, times={"x": [9, 14]}))
    s = await store.history(run.id, "x")
    assert list(zip(s.steps.tolist(), s.times.tolist(), s.values.tolist(), strict=False)) == [
        (0, 14, 6.0), (1, 13, 4.0), (3, 9, 5.0), (3, 11, 2.0), (5, 10, 1.0), (5, 12, 3.0)
    ]  # fmt: skip
    st = await store.stats(run.id, "x")
    assert (st.count, st.first_step, st.last_step, st.first_time, st.last_time) == (6, 0, 5, 9, 14)


async def test_auto_step_continues_the_series(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(run.id, {"a": ([None, None], [1.0, 2.0]), "b": ([7], [1.0])}))
    await store.write_metrics(
        batch(run.id, {"a": ([None, 10, None], [3.0, 4.0, 5.0]), "b": ([None], [2.0])})
    )
    assert (await store.history(run.id, "a")).steps.tolist() == [0, 1, 2, 10, 11]
    assert (await store.history(run.id, "b")).steps.tolist() == [7, 8]


async def test_auto_step_follows_a_negative_step_of_the_same_batch(store: Store) -> None:
    """The series' last step + 1, also when that step is negative and just logged."""
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(run.id, {"x": ([-5, None, None], [1.0, 2.0, 3.0])}))
    await store.write_metrics(batch(run.id, {"x": ([None, -9, None], [4.0, 5.0, 6.0])}))
    assert (await store.history(run.id, "x")).steps.tolist() == [-9, -5, -4, -3, -2, -1]


async def test_idempotent_replay_writes_nothing(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    b = batch(run.id, {"x": ([1, 2], [1.0, 2.0])}, batch_id="batch-1")
    assert (await store.write_metrics(b)).duplicate is False
    again = await store.write_metrics(b)
    assert (again.points, again.duplicate) == (0, True)
    assert len(await store.history(run.id, "x")) == 2
    assert (await store.stats(run.id, "x")).count == 2


async def test_batch_with_unknown_run_writes_nothing(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    ghost = uuid.uuid4()
    b = batch(run.id, {"x": ([1, 2], [1.0, 2.0])}, batch_id="mixed")
    b.run_ids.append(ghost)
    b.run_idx[1] = 1
    with pytest.raises(RunNotFound) as e:
        await store.write_metrics(b)
    assert e.value.run_id == str(ghost)
    assert await store.metric_names(run.id) == []
    b.run_ids.pop()
    b.run_idx[1] = 0
    assert (await store.write_metrics(b)).points == 2, "the failed batch id must not be recorded"


async def test_unknown_metric_and_run_on_reads(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    for call in (store.history, store.latest, store.stats):
        with pytest.raises(MetricNotFound):
            await call(run.id, "nope")
        with pytest.raises(RunNotFound):
            await call(uuid.uuid4(), "nope")
    with pytest.raises(MetricNotFound):
        await store.downsample(run.id, "nope", 10)


async def test_history_ranges_and_limit(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    steps = list(range(100))
    await store.write_metrics(
        batch(
            run.id,
            {"x": (steps[:50], [float(s) for s in steps[:50]])},
            times={"x": [T0 + s for s in steps[:50]]},
        )
    )
    await store.write_metrics(
        batch(
            run.id,
            {"x": (steps[50:], [float(s) for s in steps[50:]])},
            times={"x": [T0 + s for s in steps[50:]]},
        )
    )
    assert (await store.history(run.id, "x", start_step=45, end_step=55)).steps.tolist() == list(
        range(45, 56)
    )
    assert (await store.history(run.id, "x", start_time=T0 + 98)).steps.tolist() == [98, 99]
    assert (await store.history(run.id, "x", end_time=T0 + 1)).steps.tolist() == [0, 1]
    assert (await store.history(run.id, "x", start_step=10, limit=3)).steps.tolist() == [10, 11, 12]
    assert len(await store.history(run.id, "x", start_step=200)) == 0


async def test_latest_is_greatest_time(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(
        batch(run.id, {"x": ([10, 2], [1.0, 2.0])}, times={"x": [T0, T0 + 5]})
    )
    p = await store.latest(run.id, "x")
    assert (p.step, p.time, p.value) == (2, T0 + 5, 2.0)
    await store.write_metrics(batch(run.id, {"x": ([1], [3.0])}, times={"x": [T0 + 5]}))
    assert (await store.latest(run.id, "x")).value == 2.0  # same time, lower step


async def test_stats_exact_against_numpy(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    rng = np.random.default_rng(7)
    allv = []
    for i in range(5):
        v = rng.normal(1e3, 50, 2000) * (i + 1)
        v[rng.random(len(v)) < 0.05] = np.nan
        v[rng.random(len(v)) < 0.01] = np.inf
        allv.append(v)
        steps = np.arange(i * 2000, (i + 1) * 2000)
        await store.write_metrics(
            batch(run.id, {"x": (steps.tolist(), v.tolist())}, times={"x": (T0 + steps).tolist()})
        )
    v = np.concatenate(allv)
    f = v[np.isfinite(v)]
    st = await store.stats(run.id, "x")
    assert (st.count, st.finite_count, st.nonfinite_count) == (len(v), len(f), len(v) - len(f))
    assert st.min_value == f.min() and st.max_value == f.max()
    assert st.avg_value == pytest.approx(f.mean(), rel=1e-12)
    assert st.std_dev == pytest.approx(f.std(ddof=1), rel=1e-9)
    assert (st.first_step, st.last_step, st.first_time, st.last_time) == (0, 9999, T0, T0 + 9999)


async def test_stats_without_finite_values(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(run.id, {"x": ([0, 1], [math.nan, math.inf])}))
    st = await store.stats(run.id, "x")
    assert (st.count, st.finite_count, st.min_value, st.avg_value, st.std_dev) == (
        2,
        0,
        None,
        None,
        None,
    )


async def test_validated_columnar_batch(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    b = metric_batch_from_columns(
        str(run.id), ["a", "b"], [0, 1, 0], [None, 4, None], [1.0, 2.0, 3.0], ["NaN", 2, -1.5]
    )
    assert (await store.write_metrics(b)).points == 3
    s = await store.history(run.id, "a")
    assert s.steps.tolist() == [0, 1] and s.times.tolist() == [1_000_000, 3_000_000]
    assert bits(s.values) == bits([math.nan, -1.5])


async def test_bulk_history_streams_chunks(store: Store) -> None:
    runs = [(await store.create_run(RunCreate()))[0] for _ in range(2)]
    for n, run in enumerate(runs):
        for part in range(3):
            steps = list(range(part * 100, part * 100 + 100))
            await store.write_metrics(
                batch(
                    run.id,
                    {"a": (steps, [float(s + n) for s in steps]), "b": (steps[:10], [1.0] * 10)},
                )
            )
    chunks = [c async for c in store.bulk_history([r.id for r in runs], ["a"], chunk_points=70)]
    assert all(len(c.series) <= 70 for c in chunks) and {c.name for c in chunks} == {"a"}
    for n, run in enumerate(runs):
        mine = [c.series for c in chunks if c.run_id == run.id]
        steps = np.concatenate([s.steps for s in mine])
        assert steps.tolist() == list(range(300))
        assert np.concatenate([s.values for s in mine]).tolist() == [
            float(s + n) for s in range(300)
        ]
    ranged = [c async for c in store.bulk_history([runs[0].id], start_step=150, end_step=160)]
    assert {(c.name, len(c.series)) for c in ranged} == {("a", 11)}
    every = [c async for c in store.bulk_history([runs[1].id])]
    assert sorted({c.name for c in every}) == ["a", "b"]
    with pytest.raises(RunNotFound):
        _ = [c async for c in store.bulk_history([uuid.uuid4()])]


async def test_system_metrics(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    rows = [
        {
            "run_id": str(run.id),
            "metric_type": "gpu.0.util",
            "value": 50 + i,
            "time": 100.0 + i,
            "device": "gpu0",
            "node": "n1",
        }
        for i in range(5)
    ] + [{"run_id": str(run.id), "metric_type": "cpu", "value": "NaN", "time": 100.5}]
    b = system_batch_from_rows(rows, batch_id="sys-1")
    assert (await store.write_system_metrics(b)).points == 6
    assert (await store.write_system_metrics(b)).duplicate
    series = {s.metric_type: s for s in await store.system_metrics(run.id)}
    assert set(series) == {"gpu.0.util", "cpu"}
    gpu = series["gpu.0.util"]
    assert gpu.values.tolist() == [50.0, 51.0, 52.0, 53.0, 54.0]
    assert gpu.times.tolist() == [100_000_000 + i * 1_000_000 for i in range(5)]
    assert gpu.devices == ["gpu0"] * 5 and gpu.nodes == ["n1"] * 5
    assert math.isnan(series["cpu"].values[0]) and series["cpu"].devices == [None]
    only = await store.system_metrics(
        run.id, types=["gpu.0.util"], start_time=101_000_000, end_time=103_000_000, limit=2
    )
    assert [s.values.tolist() for s in only] == [[51.0, 52.0]]
    ghost = SystemMetricBatch(
        "g",
        [uuid.uuid4()],
        ["cpu"],
        np.zeros(1, np.int32),
        np.zeros(1, np.int32),
        np.zeros(1, np.int64),
        np.zeros(1),
    )
    with pytest.raises(RunNotFound):
        await store.write_system_metrics(ghost)


async def test_delete_run_removes_metrics(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(run.id, {"x": ([1], [1.0])}))
    await store.write_system_metrics(
        system_batch_from_rows([{"run_id": str(run.id), "metric_type": "cpu", "value": 1}])
    )
    await store.delete_run(run.id)
    again, resumed = await store.create_run(RunCreate(id=run.id))
    assert not resumed
    assert await store.metric_names(again.id) == [] and await store.system_metrics(again.id) == []


async def test_stats_of_values_near_the_float_limit(store: Store) -> None:
    """Summaries whose squares leave float64's range are infinite on every backend,
    never an error (PostgreSQL raises on a finite product that overflows)."""
    run, _ = await store.create_run(RunCreate())
    for step, value in enumerate([1e200, -1e200, 1.7e308, -1.7e308]):
        await store.write_metrics(batch(run.id, {"x": ([step], [value])}))
    st = await store.stats(run.id, "x")
    assert (st.count, st.finite_count, st.min_value, st.max_value) == (4, 4, -1.7e308, 1.7e308)
    assert st.std_dev == math.inf and abs(st.avg_value) < 1e293  # exact: 0, within 1e-15
    assert (await store.history(run.id, "x")).values.tolist() == [1e200, -1e200, 1.7e308, -1.7e308]
