"""The auto-step rule (docs/api.md): a point logged without a step gets its
series' last step + 1 (0 for a series without steps), in batch order, counting
the batch's own earlier points of that series (with or without a step)."""

from __future__ import annotations

import numpy as np


def assign_auto_steps(
    steps: np.ndarray, auto: np.ndarray, series: np.ndarray, last: dict[int, int]
) -> np.ndarray:
    """``steps`` with each point where ``auto`` is set given its auto step.

    ``series[i]`` names point i's series; ``last`` maps a series to its greatest
    stored step (absent: the series has no stored points).
    """
    out: np.ndarray = steps.copy()
    for s in np.unique(series[auto]).tolist():
        idx = np.flatnonzero(series == s)
        is_auto = auto[idx]
        cur = last.get(s)
        if is_auto.all():  # the common case, without a Python loop over points
            out[idx] = (0 if cur is None else cur + 1) + np.arange(len(idx))
            continue
        for i, a in zip(idx.tolist(), is_auto.tolist(), strict=True):
            if a:
                cur = 0 if cur is None else cur + 1
                out[i] = cur
            else:
                cur = int(out[i]) if cur is None else max(cur, int(out[i]))
    return out
