"""Chart data logic, free of any widget: series assembly and loading, live
appends and export here; the series types in :mod:`._series`, x-axis modes and
views in :mod:`._views`, the zoom re-query decision in :mod:`._zoom`. The bqplot
view (:mod:`.chart`) only draws what :meth:`ChartModel.views` returns.

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
from typing import Any

import numpy as np

from ..core import smoothing as sm
from ..core.errors import UsageError
from ._format import split_axes
from ._series import (
    DEFAULT_SAMPLES,
    DRAWN_RUN_FIELDS,
    FULL_LIMIT_FACTOR,
    X_MODES,
    Series,
    SeriesView,
    last_of_each_step,
    parse_smoothing,
)
from ._source import (
    FloatArray,
    IntArray,
    SeriesResponse,
    Source,
    floats,
    ints,
)
from ._style import DASHES, METRIC_COLORS, RUN_COLORS
from ._zoom import ChartZoom

__all__ = ["X_MODES", "ChartModel", "Series", "SeriesView", "parse_smoothing"]


class ChartModel(ChartZoom):
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
                idx = last_of_each_step(steps)
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
