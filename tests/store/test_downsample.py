"""Contract: M4 downsampling equals a brute-force M4 over the raw points."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wanllm_server.store import RunCreate, Store

from tests.store.store_helpers import T0, as_triples, batch, bits, brute_m4

values = st.one_of(
    st.floats(-1e6, 1e6, allow_nan=False, width=32),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
point_lists = st.lists(st.tuples(st.integers(-300, 3000), values), min_size=1, max_size=400)


def check(
    result: Any, raw: list[tuple[int, int, float]], start: int, end: int, buckets: int
) -> None:
    s, t, v = zip(*raw, strict=False)
    w, expected, bands = brute_m4(s, t, v, start, end, buckets)
    in_range = sum(start <= x <= end for x in s)
    assert result.bucket_width == w
    assert result.total_points == in_range
    assert result.sampled == (in_range > 4 * buckets)
    assert as_triples(result.points) == expected
    got = {
        b: (c, mn, mx)
        for b, c, mn, mx in zip(result.bucket_start.tolist(), result.bucket_count.tolist(),
                                result.bucket_min.tolist(), result.bucket_max.tolist(),
                                strict=False)
    }  # fmt: skip
    assert got.keys() == bands.keys()
    for b, (c, mn, mx) in bands.items():
        assert got[b][0] == c and bits(got[b][1:]) == bits([mn, mx])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(point_lists, min_size=1, max_size=3),
    buckets=st.integers(1, 40),
    window=st.tuples(st.integers(-400, 3100), st.integers(0, 3500)),
)
def test_matches_brute_force(
    store: Store, run: Callable[[Any], Any], batches: list, buckets: int, window: tuple[int, int]
) -> None:
    r, _ = run(store.create_run(RunCreate()))
    raw: list[tuple[int, int, float]] = []
    for pts in batches:
        times = [T0 + len(raw) + i for i in range(len(pts))]  # distinct times: no (step, time) ties
        run(
            store.write_metrics(
                batch(r.id, {"x": ([p[0] for p in pts], [p[1] for p in pts])}, times={"x": times})
            )
        )
        raw += [(p[0], tm, p[1]) for p, tm in zip(pts, times, strict=False)]
    steps = [p[0] for p in raw]
    full = run(store.downsample(r.id, "x", buckets))
    check(full, raw, min(steps), max(steps), buckets)
    start, length = window
    check(
        run(store.downsample(r.id, "x", buckets, start_step=start, end_step=start + length)),
        raw,
        start,
        start + length,
        buckets,
    )


async def test_large_series_uses_tiers_and_keeps_extremes(store: Store) -> None:
    r, _ = await store.create_run(RunCreate())
    rng = np.random.default_rng(3)
    n = 40_000
    steps = np.arange(n)
    v = rng.normal(size=n)
    v[12_345], v[33_333], v[20_000] = 100.0, -100.0, math.nan
    for i in range(0, n, 5000):
        sl = slice(i, i + 5000)
        await store.write_metrics(
            batch(
                r.id,
                {"x": (steps[sl].tolist(), v[sl].tolist())},
                times={"x": (T0 + steps[sl]).tolist()},
            )
        )
    raw = list(zip(steps.tolist(), (T0 + steps).tolist(), v.tolist(), strict=False))
    for start, end, buckets in (
        (0, n - 1, 100),
        (1_000, 9_999, 50),
        (777, 31_111, 123),
        (5, 40_000, 7),
    ):
        d = await store.downsample(r.id, "x", buckets, start_step=start, end_step=end)
        check(d, raw, start, end, buckets)
        assert d.sampled and len(d.points) <= 4 * buckets
    d = await store.downsample(r.id, "x", 100)
    assert 100.0 in d.points.values and -100.0 in d.points.values


async def test_stable_under_appends(store: Store) -> None:
    r, _ = await store.create_run(RunCreate())
    n = 4096
    v = np.sin(np.arange(2 * n) / 37.0)
    await store.write_metrics(batch(r.id, {"x": (list(range(n)), v[:n].tolist())}))
    before = await store.downsample(r.id, "x", 64, start_step=0, end_step=2 * n - 1)
    await store.write_metrics(
        batch(r.id, {"x": (list(range(n, n + 100)), v[n : n + 100].tolist())})
    )
    after = await store.downsample(r.id, "x", 64, start_step=0, end_step=2 * n - 1)
    assert before.bucket_width == after.bucket_width == 128
    k = len(before.bucket_start) - 1  # every bucket but the last is unchanged
    assert after.bucket_start[:k].tolist() == before.bucket_start[:k].tolist()
    assert after.bucket_count[:k].tolist() == before.bucket_count[:k].tolist()
    cut = before.bucket_start[k]
    assert as_triples(after.points)[: int((after.points.steps < cut).sum())] == [
        p for p in as_triples(before.points) if p[0] < cut
    ]


async def test_small_range_is_not_sampled(store: Store) -> None:
    r, _ = await store.create_run(RunCreate())
    await store.write_metrics(batch(r.id, {"x": ([0, 5, 5, 9], [1.0, math.nan, 2.0, 3.0])}))
    d = await store.downsample(r.id, "x", 1000)
    assert not d.sampled and d.total_points == 4 and d.points.steps.tolist() == [0, 5, 5, 9]
    empty = await store.downsample(r.id, "x", 10, start_step=100, end_step=200)
    assert empty.total_points == 0 and len(empty.points) == 0


async def test_many_small_batches(store: Store) -> None:
    """Hundreds of tiny batches (live logging) read back exactly (backends may compact)."""
    r, _ = await store.create_run(RunCreate())
    rng = np.random.default_rng(5)
    raw: list[tuple[int, int, float]] = []
    for i in range(160):
        steps = (i * 5 + np.arange(5)).tolist()
        vals = rng.normal(size=5).tolist()
        times = [T0 + len(raw) + j for j in range(5)]
        await store.write_metrics(batch(r.id, {"x": (steps, vals)}, times={"x": times}))
        raw += list(zip(steps, times, vals, strict=False))
    s = await store.history(r.id, "x")
    assert as_triples(s) == [(a, b, bits([c])[0]) for a, b, c in raw]
    for start, end, buckets in ((0, 799, 20), (13, 777, 9)):
        check(
            await store.downsample(r.id, "x", buckets, start_step=start, end_step=end),
            raw,
            start,
            end,
            buckets,
        )
    assert (await store.stats(r.id, "x")).count == 800
