"""The histogram panel's arithmetic, free of widgets: histograms logged at many
steps, each with its own bin edges, rebinned onto one common grid for the heatmap
(docs/chart-math.md, "Histograms over steps").

A histogram says how many values fell in each bin, not where inside it: the
rebinning assumes they are spread evenly within a bin (its cumulative count is
linear between edges), so a common bin that covers a fraction of a logged bin
gets that fraction of its count. Totals are kept exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..core.api.media import HistogramStep

GRID_BINS = 64  # rows of the heatmap
FloatArray = npt.NDArray[np.float64]


def rebin(edges: Sequence[float], counts: Sequence[float], grid: FloatArray) -> FloatArray:
    """``counts`` over ``edges`` moved onto the bins of ``grid`` (increasing edges
    covering ``edges``): values spread evenly inside each logged bin."""
    e = np.asarray(edges, dtype=np.float64)
    cumulative = np.concatenate(([0.0], np.cumsum(np.asarray(counts, dtype=np.float64))))
    return np.diff(np.interp(grid, e, cumulative))  # constant outside the logged range


@dataclass(frozen=True, slots=True)
class Heat:
    """The heatmap: ``share[i, j]`` = fraction of step ``steps[j]``'s values in the
    grid bin ``[edges[i], edges[i+1])``; a step without values is all zeros."""

    steps: npt.NDArray[np.int64]
    edges: FloatArray
    share: FloatArray

    @property
    def centers(self) -> FloatArray:
        return (self.edges[:-1] + self.edges[1:]) / 2


def common_grid(hists: Sequence[HistogramStep], bins: int = GRID_BINS) -> FloatArray:
    """``bins`` equal bins from the smallest first edge to the largest last edge;
    when every step has the same edges (2 to ``bins`` bins), those edges."""
    first = hists[0].edges
    if all(h.edges == first for h in hists) and 2 <= len(first) - 1 <= bins:
        return np.asarray(first, dtype=np.float64)
    lo = min(h.edges[0] for h in hists)
    hi = max(h.edges[-1] for h in hists)
    return np.linspace(lo, hi, bins + 1)


def heat(hists: Sequence[HistogramStep], bins: int = GRID_BINS) -> Heat | None:
    """The heatmap of ``hists`` (in step order), or None without any."""
    if not hists:
        return None
    grid = common_grid(hists, bins)
    share = np.zeros((grid.size - 1, len(hists)))
    for j, h in enumerate(hists):
        column = rebin(h.edges, h.counts, grid)
        total = column.sum()
        if total > 0:
            share[:, j] = column / total
    return Heat(np.asarray([h.step for h in hists], dtype=np.int64), grid, share)


def outline(h: HistogramStep) -> tuple[FloatArray, FloatArray]:
    """x, y of one step's histogram drawn as bars over its own edges: a step line
    (``step-after``) through every edge, its last count repeated at the last edge."""
    counts = np.asarray(h.counts, dtype=np.float64)
    return np.asarray(h.edges, dtype=np.float64), np.append(counts, counts[-1:])


def nearest(steps: Sequence[int], step: float) -> int:
    """The index of the step in ``steps`` (increasing) nearest to ``step``."""
    i = int(np.searchsorted(np.asarray(steps), step))
    if i <= 0:
        return 0
    if i >= len(steps):
        return len(steps) - 1
    return i if steps[i] - step < step - steps[i - 1] else i - 1
