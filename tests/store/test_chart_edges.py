"""Reads of a few steps inside large sealed blocks (chart edge buckets, raw
zooms, step windows): PostgreSQL sends only those steps' values of blocks
holding one point a step, and whole blocks otherwise (repeated steps, gaps).
Results equal the raw points and M4 over them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from wanllm_server.store import RunCreate, Series, Store, m4

from tests.store.store_helpers import T0, as_triples, batch

BLOCK = 3000  # points a batch: sealed blocks (SMALL_BLOCK is 512)


def _series(kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps and values: consecutive steps, or in every block step 990 missing and
    1500 twice (as many points as steps from first to last, not one point a step:
    steps 991-1500 are one place earlier than consecutive steps would be)."""
    rng = np.random.default_rng(len(kind))
    steps = np.arange(n, dtype=np.int64)
    if kind == "repeats":
        for a in range(0, n, BLOCK):
            steps[a + 990 : a + 1500] += 1
    return steps, rng.normal(size=n).round(2)


@pytest.mark.parametrize("kind", ["consecutive", "repeats"])
def test_zooms_inside_blocks_equal_raw(store: Store, run: Callable[[Any], Any], kind: str) -> None:
    r, _ = run(store.create_run(RunCreate()))
    n = 5 * BLOCK
    steps, values = _series(kind, n)
    times = T0 + np.arange(n) * 7
    for a in range(0, n, BLOCK):
        part = slice(a, a + BLOCK)
        b = batch(
            r.id,
            {"m": (steps[part].tolist(), values[part].tolist())},
            times={"m": times[part].tolist()},
        )
        run(store.write_metrics(b))
    raw = run(store.history(r.id, "m"))
    assert len(raw) == n
    for a, b in ((1001, 1010), (3995, 4005), (2990, 6017)):  # step windows inside blocks
        part = run(store.history(r.id, "m", start_step=a, end_step=b))
        inr = (raw.steps >= a) & (raw.steps <= b)
        want = Series(raw.steps[inr], raw.times[inr], raw.values[inr])
        assert as_triples(part) == as_triples(want)
    windows = [(3, n - 4, 500), (1001, 4000, 100), (1000, 9000, 3), (3100, 5900, 40)]
    windows += [(1001, 1020, 10), (3995, 4200, 1000)]  # read raw
    for start, end, buckets in windows:
        got = run(store.downsample(r.id, "m", buckets, start_step=start, end_step=end))
        inr = (raw.steps >= start) & (raw.steps <= end)
        plan = m4.plan_downsample(start, end, buckets)
        want = m4.m4_from_raw(
            Series(raw.steps[inr], raw.times[inr], raw.values[inr]),
            plan.width,
            max_unsampled=4 * buckets,
        )
        assert as_triples(got.points) == as_triples(want.points)
        assert got.bucket_count.tolist() == want.bucket_count.tolist()
        assert np.array_equal(got.bucket_min, want.bucket_min, equal_nan=True)
        assert np.array_equal(got.bucket_max, want.bucket_max, equal_nan=True)
        assert got.total_points == int(inr.sum())
