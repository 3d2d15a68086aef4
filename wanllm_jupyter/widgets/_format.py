"""Number formats and axis rules shared by every chart (metric charts, grouped
comparison, system metrics), so that the same value reads the same everywhere."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

# d3 formats: up to 4 significant digits, trailing zeros trimmed ("0.8", not "0.800"),
# thousands separated ("12,000")
Y_TICK_FORMAT = ",.4~g"
X_TICK_FORMAT = ",.6~g"
RIGHT_AXIS_RATIO = 100.0  # metrics whose magnitudes differ this much get a right axis
FLAT_PAD = 0.05  # a (nearly) constant series is drawn in ±5 % of its value


def split_axes(metrics: Sequence[str], magnitudes: Mapping[str, float]) -> dict[str, str]:
    """``"left"`` or ``"right"`` per metric: the first metric with data sets the left
    axis; a metric whose largest |value| differs from it by ``RIGHT_AXIS_RATIO`` or
    more goes on the right one."""
    sides = dict.fromkeys(metrics, "left")
    known = [m for m in metrics if magnitudes.get(m, 0.0) > 0]
    if len(known) < 2:
        return sides
    ref = magnitudes[known[0]]
    for m in known[1:]:
        ratio = magnitudes[m] / ref
        if ratio >= RIGHT_AXIS_RATIO or ratio <= 1 / RIGHT_AXIS_RATIO:
            sides[m] = "right"
    return sides


def padded_range(values: Sequence[np.ndarray]) -> tuple[float, float] | None:
    """A y range for a (nearly) flat set of series, so that its ticks differ
    ("29.47 29.47 29.47" otherwise); None when the data has a real extent."""
    finite = [v[np.isfinite(v)] for v in values]
    finite = [v for v in finite if v.size]
    if not finite:
        return None
    lo = float(min(v.min() for v in finite))
    hi = float(max(v.max() for v in finite))
    scale = max(abs(lo), abs(hi))
    if hi - lo > 1e-3 * scale:
        return None
    pad = FLAT_PAD * scale or 1.0
    return lo - pad, hi + pad
