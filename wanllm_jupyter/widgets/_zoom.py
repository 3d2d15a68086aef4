"""The zoom decision: which step range a visible x range shows, and whether a pan
or zoom needs the server again (outside what is loaded, or narrower than a
sampled answer resolves)."""

from __future__ import annotations

import math

import numpy as np

from ._series import X_MODES
from ._views import ChartViews


class ChartZoom(ChartViews):
    """The re-query decision of a chart's data after a pan or zoom."""

    # ---------------------------------------------------------------- zoom
    def visible_steps(self, visible: tuple[float, float]) -> tuple[float, float] | None:
        """The step range shown by a visible x range (epoch seconds for wall time)."""
        lo, hi = visible
        if self.x_mode == "step":
            return lo, hi
        if self.x_mode not in X_MODES:
            return None
        spans = []
        with self.lock:
            for s in self.series:
                if s.times.size < 2:
                    continue
                offset = self.run_start(s.run_id) if self.x_mode == "relative_time" else 0.0
                order = np.argsort(s.times, kind="stable")
                t, st = s.times[order] - offset, s.steps[order].astype(np.float64)
                spans.append((np.interp(lo, t, st), np.interp(hi, t, st)))
        if not spans:
            return None
        return min(a for a, _ in spans), max(b for _, b in spans)

    def requery_range(
        self, visible: tuple[float, float] | None
    ) -> tuple[int | None, int | None] | None:
        """Step range to re-query after a pan/zoom (``(None, None)``: everything),
        or None when the loaded data already shows the visible range at full
        resolution."""
        with self.lock:
            if visible is None:
                return (None, None) if self.loaded_range is not None else None
            rng = self.visible_steps(visible)
            if rng is None:
                return None
            lo, hi = rng
            sampled = any(s.sampled for s in self.series)
            steps = [s.steps for s in self.series if s.steps.size]
            if not steps:
                return None
            extent = (
                min(int(a[0]) for a in steps)
                if self.loaded_range is None or self.loaded_range[0] is None
                else self.loaded_range[0],
                max(int(a[-1]) for a in steps)
                if self.loaded_range is None or self.loaded_range[1] is None
                else self.loaded_range[1],
            )
        outside = self.loaded_range is not None and (lo < extent[0] or hi > extent[1])
        narrower = sampled and (hi - lo) < 0.5 * (extent[1] - extent[0])
        if not (outside or narrower):
            return None
        margin = 0.1 * (hi - lo)
        return max(math.floor(lo - margin), 0), math.ceil(hi + margin)
