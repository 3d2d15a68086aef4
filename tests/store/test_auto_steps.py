"""The auto-step rule of the core (one implementation for every backend)
against a point-by-point reading of docs/api.md."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from wanllm_jupyter.core.auto_steps import assign_auto_steps


def _reference(
    steps: list[int], auto: list[bool], series: list[int], last: dict[int, int]
) -> list[int]:
    greatest = dict(last)
    out = []
    for step, a, s in zip(steps, auto, series, strict=True):
        if a:
            step = greatest[s] + 1 if s in greatest else 0
        greatest[s] = max(greatest.get(s, step), step)
        out.append(step)
    return out


points = st.lists(
    st.tuples(st.integers(-50, 50), st.booleans(), st.integers(0, 3)), min_size=1, max_size=40
)


@given(points, st.dictionaries(st.integers(0, 3), st.integers(-60, 60), max_size=4))
def test_auto_steps_equal_the_reference(
    pts: list[tuple[int, bool, int]], last: dict[int, int]
) -> None:
    steps, auto, series = (list(x) for x in zip(*pts, strict=True))
    got = assign_auto_steps(
        np.array(steps, np.int64), np.array(auto, bool), np.array(series, np.int64), last
    )
    assert got.tolist() == _reference(steps, auto, series, last)


def test_all_auto_series_counts_on_from_its_last_step() -> None:
    got = assign_auto_steps(
        np.zeros(5, np.int64), np.ones(5, bool), np.array([0, 1, 0, 1, 0]), {1: -3}
    )
    assert got.tolist() == [0, -2, 1, -1, 2]
