"""Contract: live sequence numbers (docs/api.md, "Live message ordering") are
taken in each metrics batch's commit, per run, and a replay returns the
numbers its batch took; identical on every backend."""

from __future__ import annotations

import asyncio

import numpy as np
from wanllm_server.store import RunCreate, Store, SystemMetricBatch
from wanllm_server.store.base import MetricBatch

from tests.store.store_helpers import T0, batch


async def test_each_commit_takes_the_runs_next_number_and_a_replay_its_own(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    key = str(run.id)
    first = await store.write_metrics(batch(run.id, {"x": ([0], [1.0])}, batch_id="b-1"))
    second = await store.write_metrics(batch(run.id, {"x": ([1], [2.0])}, batch_id="b-2"))
    assert (first.live_seq, second.live_seq) == ({key: 1}, {key: 2})
    replay = await store.write_metrics(batch(run.id, {"x": ([0], [1.0])}, batch_id="b-1"))
    assert replay.duplicate and replay.live_seq == {key: 1}
    third = await store.write_metrics(batch(run.id, {"y": ([0], [3.0])}, batch_id="b-3"))
    assert third.live_seq == {key: 3}  # a replay takes no number
    other, _ = await store.create_run(RunCreate())
    assert (await store.write_metrics(batch(other.id, {"x": ([0], [1.0])}))).live_seq == {
        str(other.id): 1
    }


async def test_a_batch_of_two_runs_takes_a_number_of_each(store: Store) -> None:
    a, _ = await store.create_run(RunCreate())
    b, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(a.id, {"x": ([0], [1.0])}))
    both = MetricBatch(
        batch_id="two-runs",
        run_ids=[a.id, b.id],
        names=["x"],
        run_idx=np.array([0, 1], np.int32),
        name_idx=np.zeros(2, np.int32),
        steps=np.array([1, 0], np.int64),
        times=np.array([T0, T0], np.int64),
        values=np.array([1.0, 2.0]),
    )
    assert (await store.write_metrics(both)).live_seq == {str(a.id): 2, str(b.id): 1}
    assert (await store.write_metrics(both)).live_seq == {str(a.id): 2, str(b.id): 1}


async def test_concurrent_batches_take_distinct_numbers(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    results = await asyncio.gather(
        *(store.write_metrics(batch(run.id, {"x": ([i], [float(i)])})) for i in range(8))
    )
    assert sorted(r.live_seq[str(run.id)] for r in results) == list(range(1, 9))


async def test_no_numbers_for_empty_or_system_batches(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    empty = await store.write_metrics(batch(run.id, {}))
    assert empty.live_seq == {} and not empty.duplicate
    system = SystemMetricBatch(
        batch_id="sys-1",
        run_ids=[run.id],
        types=["cpu"],
        run_idx=np.zeros(1, np.int32),
        type_idx=np.zeros(1, np.int32),
        times=np.array([T0], np.int64),
        values=np.array([1.0]),
    )
    assert (await store.write_system_metrics(system)).live_seq == {}
    assert (await store.write_metrics(batch(run.id, {"x": ([0], [1.0])}))).live_seq == {
        str(run.id): 1
    }


async def test_auto_steps_are_resolved_in_the_batch(store: Store) -> None:
    """The live feed publishes the stored steps, never the placeholders."""
    run, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(run.id, {"x": ([4], [1.0])}))
    auto = batch(run.id, {"x": ([None, None], [2.0, 3.0])})
    await store.write_metrics(auto)
    assert auto.steps.tolist() == [5, 6]
