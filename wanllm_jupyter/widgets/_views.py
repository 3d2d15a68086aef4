"""A chart's x axis and what it draws: x of points in each x mode (step, relative
or wall time, another metric), smoothing along step, the series views, the y range."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core import smoothing as sm
from ._series import X_MODES, ChartState, Series, SeriesView, last_of_each_step
from ._source import FloatArray, IntArray, epoch_seconds, floats, ints


class ChartViews(ChartState):
    """x-axis modes and series views of a chart's data."""

    # ---------------------------------------------------------------- x axis
    def run_start(self, run_id: str) -> float:
        run = self.runs.get(run_id) or {}
        start = epoch_seconds(run.get("created_at"))
        if start is not None:
            return start
        firsts = [s.times.min() for s in self.series if s.run_id == run_id and s.times.size]
        return float(min(firsts)) if firsts else 0.0

    def x_of(
        self, run_id: str, steps: IntArray, times: FloatArray
    ) -> tuple[np.ndarray, np.ndarray]:
        """x of points (in the chart's x mode) and the mask of points that have one."""
        ok = np.ones(steps.size, dtype=bool)
        if self.x_mode == "step":
            return steps.astype(np.float64), ok
        if self.x_mode == "relative_time":
            return times - self.run_start(run_id), ok
        if self.x_mode == "wall_time":
            return (times * 1e3).astype("datetime64[ms]"), ok
        xs, xv = self._xmetric.get(run_id, (ints([]), floats([])))
        if xs.size == 0:
            return np.full(steps.size, np.nan), np.zeros(steps.size, dtype=bool)
        order = np.argsort(xs, kind="stable")
        last = last_of_each_step(xs[order])
        xs, xv = xs[order][last], xv[order][last]
        pos = np.clip(np.searchsorted(xs, steps), 0, xs.size - 1)
        x = np.where(xs[pos] == steps, xv[pos], np.nan)
        return x, np.isfinite(x)

    # ---------------------------------------------------------------- views
    def _smoothed(self, s: Series) -> tuple[IntArray, FloatArray] | None:
        """(steps, smoothed values) at distinct steps, or None when smoothing is off."""
        if self.strength <= 0 or s.values.size < 2:
            return None
        steps, values = s.steps, s.values
        if s.sampled and s.server_smoothed is not None and s.server_smoothed.size == s.n_base:
            base = s.steps[: s.n_base], s.server_smoothed
            if s.tail_len == 0:
                return base
            param = sm.param_from_strength(
                self.method, self.strength, float(steps[-1] - steps[0]), s.total_points
            )
            local = sm.smooth(steps, values, self.method, param)
            tail = local.x > (base[0][-1] if base[0].size else -math.inf)
            return (
                np.concatenate([base[0], local.x[tail].astype(np.int64)]),
                np.concatenate([base[1], local.values[tail]]),
            )
        param = sm.param_from_strength(
            self.method, self.strength, float(steps[-1] - steps[0]), steps.size
        )
        local = sm.smooth(steps, values, self.method, param)
        return local.x.astype(np.int64), local.values

    def views(self) -> list[SeriesView]:
        """Everything the view needs to draw, computed under the lock."""
        with self.lock:
            return [self._view(s) for s in self.series]

    def _view(self, s: Series) -> SeriesView:
        x, ok = self.x_of(s.run_id, s.steps, s.times)
        steps, times, raw, x = s.steps[ok], s.times[ok], s.values[ok], x[ok]
        y = np.where(np.isfinite(raw), raw, np.nan)
        if self.y_scale == "log":
            y = np.where(y > 0, y, np.nan)
        if self.x_mode not in X_MODES and x.size:
            order = np.argsort(x, kind="stable")
            x, y, steps, times, raw = x[order], y[order], steps[order], times[order], raw[order]
        bad = ~np.isfinite(raw)
        kinds = ["nan" if np.isnan(v) else ("+inf" if v > 0 else "-inf") for v in raw[bad]]
        smooth_x = smooth_y = None
        sm_data = self._smoothed(s)
        if sm_data is not None and s.steps.size:
            idx = np.clip(
                np.searchsorted(s.steps, sm_data[0], side="right") - 1, 0, s.steps.size - 1
            )
            sx, sok = self.x_of(s.run_id, sm_data[0], s.times[idx])
            smooth_x, smooth_y = sx[sok], sm_data[1][sok]
            if self.y_scale == "log":
                smooth_y = np.where(smooth_y > 0, smooth_y, np.nan)
            if self.x_mode not in X_MODES and smooth_x.size:
                order = np.argsort(smooth_x, kind="stable")
                smooth_x, smooth_y = smooth_x[order], smooth_y[order]
        band_x = band_low = band_high = None
        if s.band is not None and s.band.steps.size and self.x_mode in X_MODES and s.steps.size:
            band_times = np.interp(s.band.steps, s.steps, s.times)
            band_x, _ = self.x_of(s.run_id, s.band.steps, band_times)
            band_low, band_high = s.band.low, s.band.high
        return SeriesView(
            key=(s.run_id, s.metric),
            label=s.label,
            color=s.color,
            dash=s.dash,
            x=x,
            y=y,
            steps=steps,
            times=times,
            raw=raw,
            smooth_x=smooth_x,
            smooth_y=smooth_y,
            band_x=band_x,
            band_low=band_low,
            band_high=band_high,
            sampled=s.sampled,
            total_points=s.total_points,
            nonfinite_x=x[bad],
            nonfinite_kind=kinds,
        )

    def y_range(self, views: Sequence[SeriesView]) -> tuple[float, float] | None:
        """The y extent to pin: 5th–95th percentile (padded) when ignoring outliers."""
        if not self.ignore_outliers:
            return None
        ys = np.concatenate([v.y for v in views]) if views else floats([])
        rng = sm.percentile_range(ys)
        if rng is None:
            return None
        lo, hi = rng
        pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
        return lo - pad, hi + pad
