"""Summaries of values so close together that the moment merge's products
underflow: IEEE's zero on every backend, never an error (PostgreSQL raises
"value out of range: underflow" where the IEEE result of non-zero operands is
zero)."""

from __future__ import annotations

import math

from wanllm_server.store import RunCreate, Store
from wanllm_server.store import aggregates as agg

from tests.store.store_helpers import batch, bits

TINY = [1e-200, 3e-200, -2e-310, 5e-324, 0.0, 1e-160]


async def test_moments_of_tiny_values_merge_as_ieee_does(store: Store) -> None:
    """One value a batch, so every batch merges its moments into the summary's;
    the summary equals :func:`.aggregates.merge_moments` applied in order."""
    run, _ = await store.create_run(RunCreate())
    mean, m2 = TINY[0], 0.0
    for n, value in enumerate(TINY, start=1):
        await store.write_metrics(batch(run.id, {"x": ([n], [value])}))
        if n > 1:
            mean, m2 = agg.merge_moments(mean, m2, n - 1, value, 0.0, 1)
    st = await store.stats(run.id, "x")
    assert st.count == len(TINY) and st.min_value == -2e-310 and st.max_value == 1e-160
    assert bits([st.avg_value]) == bits([mean])
    assert bits([st.std_dev]) == bits([math.sqrt(max(m2, 0.0) / (len(TINY) - 1))])
