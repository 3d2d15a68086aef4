"""M4 from tier partials written in pieces: several partials per bucket, in any
row order (what a store reads after many writes), merged equal to raw M4."""

from __future__ import annotations

import numpy as np
import pytest
from wanllm_server.store import Series, m4
from wanllm_server.store import aggregates as agg

from tests.store.store_helpers import as_triples


@pytest.mark.parametrize("seed", range(6))
def test_tiers_of_many_writes_in_any_order_equal_raw(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6000
    st = rng.integers(-500, 40_000, n)
    tm = rng.permutation(n).astype(np.int64)
    v = rng.normal(size=n).round(1)  # ties: min/max picked by (step, time)
    v[rng.random(n) < 0.05] = np.nan
    v[rng.random(n) < 0.02] = np.inf
    writes = rng.integers(0, 7, n)  # each write's points give their own partials
    pieces = []
    for w in range(7):
        m = writes == w
        t = agg.tier_rows(np.zeros(int(m.sum()), np.int64), st[m], tm[m], v[m])
        pieces.append(t)
    for start, end, buckets in ((-500, 40_000, 400), (1001, 30_017, 250), (1001, 30_017, 100)):
        plan = m4.plan_downsample(start, end, buckets)
        assert plan.level is not None
        tiers = agg.concat_partials(
            [pieces[i].partials[pieces[i].level == plan.level] for i in rng.permutation(7)]
        )
        assert (np.unique(tiers["bucket"], return_counts=True)[1] > 1).any()
        edge = np.zeros(n, bool)
        for a, b in plan.edges:
            edge |= (st >= a) & (st <= b)
        got = m4.m4_from_tiers(tiers, plan, Series(st[edge], tm[edge], v[edge]))
        inr = (st >= start) & (st <= end)
        want = m4.m4_from_raw(Series(st[inr], tm[inr], v[inr]), plan.width)
        assert as_triples(got.points) == as_triples(want.points)
        assert got.bucket_start.tolist() == want.bucket_start.tolist()
        assert got.bucket_count.tolist() == want.bucket_count.tolist()
        assert got.bucket_nonfinite.tolist() == want.bucket_nonfinite.tolist()
        assert np.array_equal(got.bucket_min, want.bucket_min, equal_nan=True)
        assert np.array_equal(got.bucket_max, want.bucket_max, equal_nan=True)
