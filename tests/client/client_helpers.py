"""Assertions shared by the client tests."""

from __future__ import annotations

import numpy as np

import wanllm_jupyter as wl


def exact_points(api: wl.Api, run_id: str, metrics: list[str], n: int) -> None:
    """Every metric has exactly the steps 0..n-1, each once."""
    df = api.run(run_id).history(long=True)
    assert len(df) == n * len(metrics)
    for m in metrics:
        steps = np.sort(df.loc[df["metric"] == m, "step"].to_numpy())
        np.testing.assert_array_equal(steps, np.arange(n))
