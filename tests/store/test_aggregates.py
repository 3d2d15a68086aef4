"""Unit tests of store/aggregates.py (summaries, tiers, M4 planning)."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from wanllm_server.store import InvalidQuery, Series, m4
from wanllm_server.store import aggregates as agg

from tests.store.store_helpers import as_triples, brute_m4


def _random(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 3, n)
    st = rng.integers(-2000, 70_000, n)
    tm = rng.permutation(n).astype(np.int64)  # distinct times
    v = rng.normal(size=n).round(2)
    v[rng.random(n) < 0.05] = np.nan
    v[rng.random(n) < 0.02] = -np.inf
    return g, st, tm, v


def test_summary_merge_matches_numpy() -> None:
    g, st, tm, v = _random(1, 5000)
    parts = [
        agg.summarize_groups(g[i : i + 700], st[i : i + 700], tm[i : i + 700], v[i : i + 700])
        for i in range(0, 5000, 700)
    ]
    for grp in range(3):
        merged = None
        for p in parts:
            if grp in p:
                merged = agg.merge_summary(merged, p[grp])
        m = g == grp
        f = v[m][np.isfinite(v[m])]
        s = merged.to_stats("x")  # type: ignore[union-attr]
        assert (s.count, s.finite_count, s.min_value, s.max_value) == (
            m.sum(),
            len(f),
            f.min(),
            f.max(),
        )
        assert s.avg_value == pytest.approx(f.mean(), rel=1e-12) and s.std_dev == pytest.approx(
            f.std(ddof=1), rel=1e-10
        )
        last = np.flatnonzero(m)[np.lexsort((st[m], tm[m]))[-1]]
        assert (merged.latest_time, merged.latest_step) == (tm[last], st[last])  # type: ignore[union-attr]


def test_tier_rows_merge_and_coarsen_agree_with_points() -> None:
    g, st, tm, v = _random(2, 6000)
    whole = agg.tier_rows(g, st, tm, v)
    halves = [agg.tier_rows(g[s], st[s], tm[s], v[s]) for s in (slice(0, 2500), slice(2500, None))]
    both = agg.TierRows(
        *(np.concatenate([getattr(h, f) for h in halves]) for f in ("group", "level")),
        agg.concat_partials([h.partials for h in halves]),
    )
    merged = agg.merge_tier_rows(both)
    assert merged.partials.tobytes() == agg.merge_tier_rows(whole).partials.tobytes()
    assert len(whole) == len(merged)
    m = g == 1
    for level in agg.TIER_LEVELS:
        direct = agg.partials_from_points(Series(st[m], tm[m], v[m]), level)
        sel = (merged.group == 1) & (merged.level == level)
        assert merged.partials[sel].tobytes() == direct.tobytes()
    coarse = agg.partials_from_points(Series(st[m], tm[m], v[m]), 4)  # 2**6 times wider below
    coarse["bucket"] >>= 6
    assert (
        agg.merge_partials((coarse["bucket"],), coarse)[1].tobytes()
        == agg.partials_from_points(Series(st[m], tm[m], v[m]), 10).tobytes()
    )


def test_merge_tier_rows_equals_merge_partials_over_every_row() -> None:
    """Rows of three batches (keys shared between them or not; NaN, -Inf and tied
    values among the points) compact to what merge_partials gives over all rows."""
    g, st, tm, v = _random(3, 4000)
    parts = [agg.tier_rows(g[s], st[s], tm[s], v[s])
             for s in (slice(0, 1500), slice(1500, 1501), slice(1501, None))]  # fmt: skip
    rows = agg.TierRows(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in ("group", "level")),
        agg.concat_partials([p.partials for p in parts]),
    )
    (kg, kl, _), want = agg.merge_partials(
        (rows.group, rows.level, rows.partials["bucket"]), rows.partials
    )
    got = agg.merge_tier_rows(rows)
    assert len(kg) < len(rows)  # some keys are shared
    assert got.group.tolist() == kg.tolist() and got.level.tolist() == kl.tolist()
    assert got.partials.tobytes() == want.tobytes()
    one = agg.merge_tier_rows(parts[0])  # no key shared: the rows, sorted
    assert (
        one.partials.tobytes()
        == agg.merge_partials(
            (parts[0].group, parts[0].level, parts[0].partials["bucket"]), parts[0].partials
        )[1].tobytes()
    )


@pytest.mark.parametrize(
    ("start", "end", "buckets", "width"),
    [
        (0, 999, 1000, 1),
        (0, 1000, 1000, 2),
        (0, 99_999, 1000, 128),
        (5, 5, 1, 1),
        (-1, 0, 1, 2**63),
        (-8, 7, 2, 8),
    ],
)
def test_choose_bucket_width(start: int, end: int, buckets: int, width: int) -> None:
    assert m4.choose_bucket_width(start, end, buckets) == width


def test_choose_bucket_width_rejects_bad_input() -> None:
    with pytest.raises(InvalidQuery):
        m4.choose_bucket_width(0, 10, 0)
    with pytest.raises(InvalidQuery):
        m4.choose_bucket_width(10, 0, 5)


def test_plan_reads_interior_tiers_and_exact_edges() -> None:
    plan = m4.plan_downsample(1000, 99_000, 1000)
    assert plan.width == 128 and plan.level == 6
    assert plan.edges == ((1000, 1023), (98_944, 99_000))
    assert plan.tier_buckets == (1024 >> 6, (98_944 >> 6) - 1)
    assert m4.plan_downsample(0, 999, 100).level == 4  # width 16 = the finest tier
    assert m4.plan_downsample(0, 999, 200).level is None  # width 8: raw points


@pytest.mark.parametrize("seed", range(4))
def test_m4_from_tiers_equals_m4_from_raw(seed: int) -> None:
    g, st, tm, v = _random(seed, 8000)
    tiers = agg.tier_rows(g, st, tm, v)
    m = g == 0
    raw = Series(st[m], tm[m], v[m])
    for start, end, buckets in ((-2000, 70_000, 100), (333, 44_444, 57), (0, 65_535, 16)):
        plan = m4.plan_downsample(start, end, buckets)
        inr = (raw.steps >= start) & (raw.steps <= end)
        ranged = Series(raw.steps[inr], raw.times[inr], raw.values[inr])
        want = m4.m4_from_raw(ranged, plan.width)
        w, expected, _ = brute_m4(
            ranged.steps.tolist(),
            ranged.times.tolist(),
            ranged.values.tolist(),
            start,
            end,
            buckets,
        )
        assert w == plan.width and as_triples(want.points) == expected
        assert plan.level is not None
        edge = np.zeros(len(raw), bool)
        for a, b in plan.edges:
            edge |= (raw.steps >= a) & (raw.steps <= b)
        sel = (tiers.group == 0) & (tiers.level == plan.level)
        got = m4.m4_from_tiers(
            tiers.partials[sel], plan, Series(raw.steps[edge], raw.times[edge], raw.values[edge])
        )
        assert as_triples(got.points) == as_triples(want.points)
        assert got.bucket_start.tolist() == want.bucket_start.tolist()
        assert got.bucket_count.tolist() == want.bucket_count.tolist() and got.total_points == int(
            inr.sum()
        )
        assert np.array_equal(got.bucket_min, want.bucket_min, equal_nan=True)
        assert np.array_equal(got.bucket_max, want.bucket_max, equal_nan=True)


def test_merge_moments_past_the_float_range_is_exact_or_infinite() -> None:
    """Inside the safe range the float formulas; past it exact and rounded once:
    a result past float64's range is ±inf, never an error."""
    assert agg.merge_moments(1.0, 0.0, 1, 3.0, 0.0, 1) == (2.0, 2.0)
    mean, m2 = agg.merge_moments(1e200, 0.0, 1, -1e200, 0.0, 1)
    assert (mean, m2) == (0.0, math.inf)
    mean, m2 = agg.merge_moments(1e150, 0.0, 3, 1e150 + 1e135, 0.0, 1)
    exact = (Fraction(1e150) * 3 + Fraction(1e150 + 1e135)) / 4
    assert mean == float(exact) and m2 == float(
        (Fraction(1e150 + 1e135) - Fraction(1e150)) ** 2 * 3 / 4
    )
    assert agg.merge_moments(math.inf, math.inf, 2, 1.0, 0.0, 1)[0] == math.inf
