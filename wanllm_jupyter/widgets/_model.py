"""Chart data logic, free of any widget: series assembly, x-axis modes, smoothing,
live appends and the zoom re-query decision. The bqplot view (:mod:`.chart`)
only draws what :meth:`ChartModel.views` returns.

A series' points are a *base* (the last REST answer, possibly M4-downsampled
by the server) plus a *tail* of live points that arrived over the WebSocket
after it. Smoothing always runs along ``step`` on full-resolution data: locally
when the chart holds every point of the series, else by the server
(``smoothing=``) for the base.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import smoothing as sm
from ..core.errors import UsageError
from ._format import split_axes
from ._source import (
    Band,
    FloatArray,
    IntArray,
    SeriesResponse,
    Source,
    epoch_seconds,
    floats,
    ints,
)
from ._style import DASHES, METRIC_COLORS, RUN_COLORS

X_MODES = ("step", "relative_time", "wall_time")
DEFAULT_SAMPLES = 1000
FULL_LIMIT_FACTOR = 4
DRAWN_RUN_FIELDS = (
    "state",
    "name",
    "created_at",
)  # hold up to 4·samples raw points before asking for M4


@dataclass(slots=True)
class Series:
    """One run × metric on a chart."""

    run_id: str
    metric: str
    label: str
    color: str
    dash: str
    steps: IntArray = field(default_factory=lambda: ints([]))
    times: FloatArray = field(default_factory=lambda: floats([]))
    values: FloatArray = field(default_factory=lambda: floats([]))
    n_base: int = 0  # points of the last REST answer; the rest is the live tail
    base_time: float = -math.inf  # newest time of the base: older live points are dropped
    sampled: bool = False
    total_points: int = 0
    band: Band | None = None
    server_smoothed: FloatArray | None = None  # aligned with the base points

    @property
    def tail_len(self) -> int:
        return int(self.values.size) - self.n_base


@dataclass(slots=True)
class SeriesView:
    """What the view draws for one series, x already in the chart's x mode."""

    key: tuple[str, str]
    label: str
    color: str
    dash: str
    x: np.ndarray
    y: FloatArray  # non-finite (and ≤ 0 on a log axis) replaced by NaN: line gaps
    steps: IntArray
    times: FloatArray
    raw: FloatArray  # the values as logged (NaN/±Inf kept)
    smooth_x: np.ndarray | None
    smooth_y: FloatArray | None
    band_x: np.ndarray | None
    band_low: FloatArray | None
    band_high: FloatArray | None
    sampled: bool
    total_points: int
    nonfinite_x: np.ndarray
    nonfinite_kind: list[str]  # "nan" | "+inf" | "-inf"


def parse_smoothing(smoothing: float | str | tuple[str, float] | None) -> tuple[str, float]:
    """``0.6`` | ``"gaussian"`` | ``("tb_ema", 0.6)`` | ``None`` → ``(method, strength)``."""
    if smoothing is None:
        return "ema", 0.0
    if isinstance(smoothing, str):
        method, strength = smoothing, 0.6
    elif isinstance(smoothing, tuple):
        method, strength = smoothing
    else:
        method, strength = "ema", float(smoothing)
    if method not in sm.METHODS:
        raise UsageError(f"smoothing method must be one of {sm.METHODS}, got {method!r}")
    if not 0 <= float(strength) < 1:
        raise UsageError(f"smoothing strength must be in [0, 1), got {strength!r}")
    return method, float(strength)


def _last_of_each_step(steps: IntArray) -> IntArray:
    """Indices of the last point at each distinct step (steps sorted)."""
    if steps.size == 0:
        return ints([])
    return np.flatnonzero(np.r_[steps[1:] != steps[:-1], True])


class ChartModel:
    """Data of one chart: runs × metrics, thread-safe (live appends come from a thread)."""

    def __init__(
        self,
        source: Source,
        run_ids: Sequence[str],
        metrics: Sequence[str],
        *,
        x: str = "step",
        y_scale: str = "linear",
        smoothing: float | str | tuple[str, float] | None = 0.6,
        samples: int | str | None = None,
        ignore_outliers: bool = False,
        colors: Mapping[str, str] | None = None,
    ) -> None:
        """``colors``: metric → colour for single-run charts; default: the metric's
        colour in every chart of the kernel (``METRIC_COLORS``)."""
        if not run_ids:
            raise UsageError("chart needs at least one run")
        if y_scale not in ("linear", "log"):
            raise UsageError(f"y_scale must be 'linear' or 'log', got {y_scale!r}")
        if samples == "all":
            samples = None
            self.all_points = True
        elif samples is None or (isinstance(samples, int) and samples >= 1):
            self.all_points = False
        else:
            raise UsageError(f"samples must be a positive int, None or 'all', got {samples!r}")
        self.source = source
        self.run_ids = list(dict.fromkeys(run_ids))
        self.metrics = list(dict.fromkeys(metrics))
        self.x_mode = x
        self.y_scale = y_scale
        self.method, self.strength = parse_smoothing(smoothing)
        self.samples = int(samples) if samples else DEFAULT_SAMPLES
        self.ignore_outliers = ignore_outliers
        self.metric_colors = dict(colors or {})
        self.runs: dict[str, dict[str, Any]] = {}
        self.series: list[Series] = []
        self.loaded_range: tuple[int | None, int | None] | None = None  # None: everything
        self._xmetric: dict[str, tuple[IntArray, FloatArray]] = {}
        self.lock = threading.RLock()
        self.version = 0
        self._assemble()

    # ---------------------------------------------------------------- setup
    def _label(self, run_id: str) -> str:
        run = self.runs.get(run_id) or {}
        return str(run.get("name") or run_id[:8])

    def _assemble(self) -> None:
        """Create the Series list (colours: per metric for one run, per run otherwise;
        the same colour for a run or metric in every chart of the kernel)."""
        by_run = len(self.run_ids) > 1
        colors = RUN_COLORS.colors(self.run_ids)
        existing = {(s.run_id, s.metric): s for s in self.series}
        out = []
        for run_id in self.run_ids:
            for m, metric in enumerate(self.metrics):
                if by_run:  # dashes tell metrics apart, or else runs sharing a colour
                    color = colors[run_id]
                    dash = (
                        DASHES[m % len(DASHES)]
                        if len(self.metrics) > 1
                        else RUN_COLORS.dash(run_id)
                    )
                    label = (
                        f"{self._label(run_id)} · {metric}"
                        if len(self.metrics) > 1
                        else self._label(run_id)
                    )
                else:
                    color = self.metric_colors.get(metric) or METRIC_COLORS.color(metric)
                    dash, label = "solid", metric
                s = existing.get((run_id, metric)) or Series(run_id, metric, label, color, dash)
                s.label, s.color, s.dash = label, color, dash
                out.append(s)
        self.series = out

    def set_metrics(self, metrics: Sequence[str]) -> None:
        with self.lock:
            self.metrics = list(dict.fromkeys(metrics))
            self._assemble()
            self.version += 1

    # ---------------------------------------------------------------- loading
    def load(self, start_step: int | None = None, end_step: int | None = None) -> None:
        """(Re)load every series from the server over ``[start_step, end_step]``."""
        for run_id in self.run_ids:
            run = self.source.run(run_id)
            with self.lock:
                self.runs[run_id] = run
        with self.lock:
            self._assemble()
            series = list(self.series)
        if self.x_mode not in X_MODES:
            for run_id in self.run_ids:
                self._load_xmetric(run_id)
        logged = self._logged_names({s.run_id for s in series if not s.values.size})
        for s in series:
            if s.run_id in logged and s.metric not in logged[s.run_id]:
                continue  # no point yet: the empty state, without a 404 request
            self._load_series(s, start_step, end_step)
        with self.lock:
            whole = start_step is None and end_step is None
            self.loaded_range = None if whole else (start_step, end_step)
            self.version += 1

    def _logged_names(self, run_ids: set[str]) -> dict[str, set[str]]:
        """The metric names each of ``run_ids`` has logged (asked only for runs
        with a series still empty, so that a metric without points is not requested)."""
        return {r: {m["name"] for m in self.source.metric_names(r)} for r in run_ids}

    def _load_xmetric(self, run_id: str) -> None:
        try:
            r = self.source.series(run_id, self.x_mode)
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
            r = SeriesResponse(ints([]), floats([]), floats([]))
        with self.lock:
            self._xmetric[run_id] = (r.steps, r.values)

    def _request(
        self, s: Series, start: int | None, end: int | None, smoothing: tuple[str, float] | None
    ) -> SeriesResponse:
        samples = None if self.all_points else self.samples
        try:
            return self.source.series(
                s.run_id,
                s.metric,
                samples=samples,
                start_step=start,
                end_step=end,
                smoothing=smoothing,
            )
        except Exception as exc:
            if getattr(exc, "status", None) != 404:
                raise
            return SeriesResponse(ints([]), floats([]), floats([]))

    def _load_series(self, s: Series, start: int | None, end: int | None) -> None:
        r = self._request(s, start, end, None)
        if r.sampled and self.strength > 0 and r.steps.size > 1:
            span = float(r.steps[-1] - r.steps[0])
            param = sm.param_from_strength(self.method, self.strength, span, r.total_points)
            r = self._request(s, start, end, (self.method, param))
        with self.lock:
            tail_keep = s.times[s.n_base :] > (r.times.max() if r.times.size else -math.inf)
            tail = (
                s.steps[s.n_base :][tail_keep],
                s.times[s.n_base :][tail_keep],
                s.values[s.n_base :][tail_keep],
            )
            s.steps = np.concatenate([r.steps, tail[0]])
            s.times = np.concatenate([r.times, tail[1]])
            s.values = np.concatenate([r.values, tail[2]])
            s.n_base = int(r.values.size)
            s.base_time = float(r.times.max()) if r.times.size else -math.inf
            s.sampled, s.total_points = r.sampled, r.total_points + int(tail_keep.sum())
            s.band = r.band if r.sampled else None
            s.server_smoothed = r.smoothed
            self._sort_tail(s)

    @staticmethod
    def _sort_tail(s: Series) -> None:
        if s.steps.size > 1 and np.any(np.diff(s.steps) < 0):
            order = np.argsort(s.steps, kind="stable")
            s.steps, s.times, s.values = s.steps[order], s.times[order], s.values[order]
            if np.any(order[: s.n_base] != np.arange(s.n_base)):
                s.server_smoothed = None  # late points inside the base: smooth locally

    # ---------------------------------------------------------------- live
    def append(self, run_id: str, points: Mapping[str, Mapping[str, Iterable[Any]]]) -> bool:
        """Merge a WebSocket ``metrics`` message; True when a drawn series changed."""
        changed = False
        with self.lock:
            for name, p in points.items():
                steps, times, values = (
                    ints(p.get("steps")),
                    floats(p.get("times")),
                    floats(p.get("values")),
                )
                if name == self.x_mode and run_id in self._xmetric:
                    xs, xv = self._xmetric[run_id]
                    self._xmetric[run_id] = (
                        np.concatenate([xs, steps]),
                        np.concatenate([xv, values]),
                    )
                    changed = True
                for s in self.series:
                    if s.run_id != run_id or s.metric != name:
                        continue
                    keep = times > s.base_time
                    if not keep.any():
                        continue
                    s.steps = np.concatenate([s.steps, steps[keep]])
                    s.times = np.concatenate([s.times, times[keep]])
                    s.values = np.concatenate([s.values, values[keep]])
                    s.total_points += int(keep.sum())
                    self._sort_tail(s)
                    changed = True
            if changed:
                self.version += 1
        return changed

    def set_run(self, run: Mapping[str, Any]) -> bool:
        """A ``run`` message: new state or metadata; True when something the chart
        shows changed (state, name or start: a summary update is not redrawn)."""
        with self.lock:
            run_id = str(run.get("id"))
            if run_id not in self.runs:
                return False
            old, self.runs[run_id] = self.runs[run_id], dict(run)
            self.version += 1
            return any(old.get(k) != run.get(k) for k in DRAWN_RUN_FIELDS)

    def running_run_ids(self) -> list[str]:
        with self.lock:
            return [r for r in self.run_ids if (self.runs.get(r) or {}).get("state") == "running"]

    def needs_reload(self) -> bool:
        """True when live tails grew enough that the server should re-bucket them:
        a sampled series got about one bucket of new points, or a complete one
        outgrew what the chart keeps at full resolution."""
        if self.all_points:
            return False
        with self.lock:
            for s in self.series:
                bucket = max(s.total_points // self.samples, 16)
                if (
                    s.sampled and s.tail_len >= bucket
                ) or s.values.size > FULL_LIMIT_FACTOR * self.samples:
                    return True
        return False

    def axis_sides(self) -> dict[str, str]:
        """``"left"``/``"right"`` y axis per metric (:func:`._format.split_axes`)."""
        with self.lock:
            mags: dict[str, float] = {}
            for s in self.series:
                finite = np.abs(s.values[np.isfinite(s.values)])
                if finite.size:
                    mags[s.metric] = max(mags.get(s.metric, 0.0), float(finite.max()))
            return split_axes(self.metrics, mags)

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
        last = _last_of_each_step(xs[order])
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

    # ---------------------------------------------------------------- export
    def to_frame(self, *, full: bool = True) -> Any:
        """Long DataFrame (run_id, run, metric, step, time, value, smoothed); with
        ``full`` every point is fetched again at full resolution."""
        import pandas as pd

        frames = []
        with self.lock:
            series = list(self.series)
        for s in series:
            if full:
                r = self.source.series(s.run_id, s.metric)
                steps, times, values = r.steps, r.times, r.values
            else:
                steps, times, values = s.steps, s.times, s.values
            smoothed = np.full(values.size, np.nan)
            if self.strength > 0 and values.size > 1:
                param = sm.param_from_strength(
                    self.method, self.strength, float(steps[-1] - steps[0]), steps.size
                )
                out = sm.smooth(steps, values, self.method, param)
                idx = _last_of_each_step(steps)
                smoothed[idx] = out.values
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": s.run_id,
                        "run": self._label(s.run_id),
                        "metric": s.metric,
                        "step": steps,
                        "time": pd.to_datetime(times, unit="s", utc=True),
                        "value": values,
                        "smoothed": smoothed,
                    }
                )
            )
        if not frames:
            return pd.DataFrame(
                columns=["run_id", "run", "metric", "step", "time", "value", "smoothed"]
            )
        return pd.concat(frames, ignore_index=True)
