"""The live metric chart: a bqplot figure with ipywidgets controls.

``chart(runs, metrics)`` draws what :class:`~._model.ChartModel` computes;
live points arrive through :class:`~._live.LiveHub` and are drawn by a
:class:`~._live.Redrawer` thread, 4 to 20 times per second by the chart's size.

Hover read-out, drag zoom (double-click resets) and tick thinning are done in
the browser by :class:`~._overlay.ChartOverlay`; the mouse wheel scrolls the
page. The legend is HTML above the plot (it wraps, and never covers a line);
a metric whose values are 100× larger or smaller than the first one's gets a
right y axis.

Zoom happens in the browser and always works; the full-resolution re-query of
the zoomed range needs the new range in Python. JupyterLab >= 4.4 with
ipykernel >= 7 delivers it on a kernel subshell while a cell runs (see
:func:`~._frontends.follow_frontend_subshell`); other front ends deliver it
between cells, so there a zoomed sampled series is re-queried when the cell
finishes (docs/frontends.md).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np

from .._http import Connection
from ._download import BrowserDownload
from ._format import X_TICK_FORMAT, Y_TICK_FORMAT
from ._frontends import follow_frontend_subshell
from ._html import esc
from ._live import LiveHub, Redrawer
from ._model import X_MODES, ChartModel, SeriesView
from ._overlay import ChartOverlay, readout_series
from ._runs import as_run_list, run_id_of
from ._source import open_source, with_notice
from ._style import MUTED

SMOOTHING_CHOICES = [
    ("EMA (x-aware)", "ema"),
    ("TensorBoard EMA", "tb_ema"),
    ("Gaussian", "gaussian"),
    ("Running average", "running_avg"),
    ("Trailing average", "running_avg_trailing"),
]
X_CHOICES = [("Step", "step"), ("Relative time (s)", "relative_time"), ("Wall time", "wall_time")]
OVERLAY_INTERVAL = 0.5  # the read-out's points are re-sent at most twice a second
RELOAD_INTERVAL = 1.0  # live re-bucketing by the server at most once per second
NONFINITE_STYLE = {
    "nan": ("cross", "#d62728"),
    "+inf": ("triangle-up", "#d62728"),
    "-inf": ("triangle-down", "#d62728"),
}
CSS = """
<style>
.wl-chart { font-family: var(--jp-ui-font-family, system-ui, sans-serif);
            color: var(--jp-ui-font-color1, #222); }
.wl-chart .wl-title { font-weight: 600; font-size: 14px; color: var(--jp-ui-font-color0, #111); }
.wl-chart .wl-muted { color: var(--jp-ui-font-color2, #555); }
.wl-badge { border-radius: 9px; padding: 1px 8px; font-size: 11px; font-weight: 600;
            color: white; margin-left: 6px; }
.wl-empty { border: 1px dashed var(--jp-border-color1, #bdbdbd); border-radius: 6px;
            padding: 18px; color: var(--jp-ui-font-color1, #222); text-align: center;
            background: var(--jp-layout-color1, #fff); }
.wl-legend { display: flex; flex-wrap: wrap; gap: 2px 12px; font-size: 12px; line-height: 18px;
             color: var(--jp-ui-font-color1, #222); max-height: 96px; overflow-y: auto;
             padding: 0 4px; }
.wl-legend-item { display: inline-flex; align-items: center; gap: 5px; white-space: nowrap; }
.wl-legend-line { display: inline-block; width: 18px; height: 0; border-top-width: 3px; }
.wl-chart .bqplot .axis .tick text, .wl-chart .bqplot .axis .axislabel {
  fill: var(--jp-ui-font-color1, #222); }
.wl-chart .bqplot .axis .tick line { stroke: var(--jp-border-color2, #e0e0e0); }
.wl-chart .bqplot .axis path { stroke: var(--jp-border-color1, #bdbdbd); }
.wl-chart .bqplot .plotarea_background { fill: var(--jp-layout-color0, #fff); }
</style>
"""
CSS_DASH = {"solid": "solid", "dashed": "dashed", "dotted": "dotted", "dash_dotted": "dashed"}


@dataclass(slots=True)
class _Layer:
    """The lines of every series drawn with one dash style on one y axis: a
    bqplot ``Lines`` mark draws many lines (one colour, label and opacity each)
    but one dash, on one scale."""

    dash: str
    side: str
    raw: bq.Lines
    smooth: bq.Lines


def _faint(color: str) -> tuple[str, float]:
    """(colour, opacity) of a raw line behind its smoothed one: a #rrggbb colour
    gets a 25 % alpha (cheaper to paint than an element opacity), others 0.25."""
    if len(color) == 7 and color.startswith("#"):
        return color + "40", 1.0
    return color, 0.25


def _ragged(rows: list[np.ndarray]) -> np.ndarray:
    """Lines of different lengths as one bqplot ``x``/``y`` value (a 1-D object
    array; bqplot sends each row as its own binary buffer)."""
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = row
    return out


def _set_lines(mark: bq.Lines, xs: list[np.ndarray], ys: list[np.ndarray], **traits: Any) -> None:
    """Replace every line of ``mark`` in one comm message. Lines must not be empty
    (bqplot's view fails on a line without points: leave the series out)."""
    with mark.hold_sync():
        # traittypes compares old and new arrays with np.array_equal, which an object
        # array of rows cannot answer: an empty value in between makes the shapes differ
        mark.x = mark.y = np.zeros(0)
        if xs:
            mark.x, mark.y = _ragged(xs), _ragged(ys)
        for name, value in traits.items():
            setattr(mark, name, value)


def _badge(text: str, color: str, title: str = "") -> str:
    """A coloured pill; ``text`` and ``title`` are escaped, ``color`` is ours."""
    return (
        f'<span class="wl-badge" style="background:{color}" title="{esc(title)}">{esc(text)}</span>'
    )


def title_label(text: str) -> W.Label:
    """A chart title: a text widget (a name is never parsed as HTML)."""
    label = W.Label(text)
    label.add_class("wl-title")
    return label


def legend_html(views: list[SeriesView]) -> str:
    """The HTML legend above the plot: a line sample in each series' colour and
    dash, and its (escaped) label; it wraps, so 20 runs stay readable."""
    items = [
        f'<span class="wl-legend-item"><span class="wl-legend-line" style="border-top-style:'
        f'{CSS_DASH.get(v.dash, "solid")};border-top-color:{v.color}"></span>{esc(v.label)}</span>'
        for v in views
    ]
    return f'<div class="wl-legend">{"".join(items)}</div>'


def nice_ticks(lo: float, hi: float, count: int = 4) -> np.ndarray:
    """Round tick values (1, 2 or 5 × 10^k apart, as d3's ``ticks``) in [lo, hi],
    about ``count`` of them."""
    if not hi > lo:
        return np.array([lo])
    raw = (hi - lo) / count
    step = 10 ** np.floor(np.log10(raw))
    error = raw / step
    step *= 10 if error >= 50**0.5 else 5 if error >= 10**0.5 else 2 if error >= 2**0.5 else 1
    return np.arange(np.ceil(lo / step) * step, hi + step * 1e-9, step) + 0.0


class MetricChart(W.VBox):
    """A live chart of runs × metrics. Build it with :func:`chart`."""

    def __init__(
        self,
        conn: Connection,
        model: ChartModel,
        *,
        title: str | None = None,
        height: str = "360px",
        live: bool = True,
        compact: bool = False,
    ) -> None:
        """``compact``: a small multiple (no controls, fewer ticks); the
        workspace's per-metric grid uses it."""
        self.conn, self.model, self.compact = conn, model, compact
        self._lock = threading.RLock()
        self._reload_at = 0.0
        self._pending: set[str] = set()
        self._x_scale: Any = None
        self._y_scale: Any = None
        self._layers: list[_Layer] = []
        self._built_for: tuple[tuple[str, ...], tuple[str, ...]] | None = None
        self._band: bq.Lines | None = None
        self._y_right: Any = None
        self._overlay_at = -float("inf")
        self._overlay_timer: threading.Timer | None = None
        self._bad: dict[str, bq.Scatter] = {}
        self.title = title_label(title or ", ".join(model.metrics))
        self.status = W.HTML()
        self.legend = W.HTML()
        self.figure = bq.Figure(
            marks=[],
            axes=[],
            animation_duration=0,
            display_toolbar=False,
            fig_margin={"top": 12, "bottom": 42, "left": 64, "right": 16},
            layout=W.Layout(width="100%", height=height, min_width="0"),
        )
        self.overlay = ChartOverlay()
        self.empty = W.HTML(layout=W.Layout(display="none"))
        self.controls = self._controls()
        if compact:
            self.controls.layout.display = "none"
        super().__init__(
            [
                W.HTML(CSS),
                W.HBox(
                    [self.title, self.status],
                    layout=W.Layout(align_items="center", justify_content="space-between"),
                ),
                self.controls,
                self.empty,
                self.legend,
                self.overlay,
                self.figure,
            ],
            layout=W.Layout(min_width="0"),
        )
        self.add_class("wl-chart")
        self.status.value = _badge("loading…", MUTED)
        self._redrawer = Redrawer(self._work)
        self._live_runs: set[str] = set()
        if live:
            self._subscribe()
        self.model.load()
        self._rebuild()
        self._draw()

    # ------------------------------------------------------------ controls
    def _controls(self) -> W.Box:
        small = W.Layout(width="auto")
        self.smoothing = W.FloatSlider(
            value=self.model.strength,
            min=0.0,
            max=0.99,
            step=0.01,
            description="Smoothing",
            continuous_update=False,
            readout_format=".2f",
            layout=W.Layout(width="290px"),
            style={"description_width": "80px"},
        )
        self.method = W.Dropdown(
            options=SMOOTHING_CHOICES, value=self.model.method, layout=W.Layout(width="150px")
        )
        x_options = list(X_CHOICES)
        if self.model.x_mode not in X_MODES:
            x_options.append((self.model.x_mode, self.model.x_mode))
        self.x_axis = W.Dropdown(
            options=x_options,
            value=self.model.x_mode,
            description="x",
            layout=W.Layout(width="190px"),
            style={"description_width": "14px"},
        )
        self.log_y = W.ToggleButton(
            value=self.model.y_scale == "log",
            description="log y",
            tooltip="Logarithmic y axis",
            layout=small,
        )
        self.outliers = W.ToggleButton(
            value=self.model.ignore_outliers,
            description="ignore outliers",
            tooltip="y range from the 5th–95th percentile",
            layout=small,
        )
        self.reset = W.Button(
            description="",
            icon="expand",
            tooltip="Reset zoom (or double-click the plot); drag across the plot to zoom",
            layout=small,
        )
        self.png = W.Button(description="PNG", icon="download", tooltip="Save as PNG", layout=small)
        self.csv = W.Button(
            description="CSV", icon="table", tooltip="Download every point as CSV", layout=small
        )
        self._download = BrowserDownload()
        self.smoothing.observe(lambda _: self._on_smoothing(), names="value")
        self.method.observe(lambda _: self._on_smoothing(), names="value")
        self.x_axis.observe(lambda c: self._on_axes(x=c["new"]), names="value")
        self.log_y.observe(
            lambda c: self._on_axes(y="log" if c["new"] else "linear"), names="value"
        )
        self.outliers.observe(lambda c: self._on_outliers(c["new"]), names="value")
        self.reset.on_click(lambda _: self.reset_zoom())
        self.png.on_click(lambda _: self.save_png())
        self.csv.on_click(lambda _: self.download_csv())
        return W.HBox(
            [
                self.smoothing,
                self.method,
                self.x_axis,
                self.log_y,
                self.outliers,
                self.reset,
                self.png,
                self.csv,
                self._download,
            ],
            layout=W.Layout(flex_flow="row wrap", align_items="center", gap="4px"),
        )

    def _on_smoothing(self) -> None:
        with self.model.lock:
            self.model.method, self.model.strength = self.method.value, float(self.smoothing.value)
            sampled = any(s.sampled for s in self.model.series)
        self._schedule("reload" if sampled else "draw")

    def _on_axes(self, *, x: str | None = None, y: str | None = None) -> None:
        with self.model.lock:
            if x is not None:
                self.model.x_mode = x
            if y is not None:
                self.model.y_scale = y
        self._schedule("reload" if x is not None and x not in X_MODES else "rebuild")

    def _on_outliers(self, on: bool) -> None:
        self.model.ignore_outliers = on
        if not on and self._y_scale is not None:
            self._y_scale.min = self._y_scale.max = None
        self._schedule("draw")

    # ------------------------------------------------------------ public
    def reset_zoom(self) -> None:
        """Show everything again (re-queries the whole range when zoomed data was loaded)."""
        with self._lock:
            for scale in (self._x_scale, self._y_scale, self._y_right):
                if scale is not None:
                    scale.min = scale.max = None
        if self.model.loaded_range is not None:
            self._schedule("zoom:all")
        else:
            self._schedule("draw")

    def save_png(self, filename: str | None = None) -> None:
        """Download the chart as PNG (through the browser: the chart must be displayed)."""
        self.figure.save_png(filename or f"{'-'.join(self.model.metrics) or 'chart'}.png")

    def to_dataframe(self, *, full: bool = True) -> Any:
        """Every point (``full``) or the drawn points, long form, with smoothed values."""
        return self.model.to_frame(full=full)

    def download_csv(self, filename: str | None = None) -> None:
        """Download every point as CSV through the browser, like PNG (the chart must be
        displayed); :meth:`save_csv` writes the file from Python instead."""
        name = filename or f"{'-'.join(self.model.metrics) or 'chart'}.csv".replace("/", "_")
        data = self.to_dataframe(full=True).to_csv(index=False).encode()
        self._download.send_file(name, data, "text/csv")

    def save_csv(self, path: str | Path | None = None) -> Path:
        """Write every point of the chart to ``path`` (default ``<metrics>.csv``)."""
        out = Path(path or f"{'-'.join(self.model.metrics) or 'chart'}.csv".replace("/", "_"))
        self.to_dataframe(full=True).to_csv(out, index=False)
        self.status.value = _badge(f"saved {out.name}", "#2ca02c")
        return out

    def refresh(self) -> None:
        """Re-query the server now."""
        self._schedule("reload")

    def set_metrics(self, metrics: list[str]) -> None:
        """Show other metrics (the workspace's selector uses this)."""
        self.model.set_metrics(metrics)
        self.title.value = ", ".join(metrics)
        self._schedule("reload")

    def close(self) -> None:
        for run_id in list(self._live_runs):
            LiveHub.get().unsubscribe(self.conn, run_id, self)
        self._redrawer.stop()
        if self._overlay_timer is not None:
            self._overlay_timer.cancel()
        self.overlay.close()
        super().close()

    # ------------------------------------------------------------ live (Listener)
    def _subscribe(self) -> None:
        hub = LiveHub.get()
        readies = []
        for run_id in self.model.run_ids:
            run = self.model.source.run(run_id)
            self.model.runs[run_id] = run
            if run.get("state") == "running":
                self._live_runs.add(run_id)
                readies.append(hub.subscribe(self.conn, run_id, self))
        for ready in readies:  # points logged from now on reach us; the REST load gets the rest
            ready.wait(2.0)

    def on_points(self, run_id: str, points: dict[str, Any]) -> None:
        if self.model.append(run_id, points):
            self._schedule("draw")

    def on_run(self, run: dict[str, Any]) -> None:
        if not self.model.set_run(run):
            return  # e.g. a summary update: a redraw now would only delay the next points
        if run.get("state") != "running":
            self._live_runs.discard(str(run.get("id")))
        self._schedule("draw")

    def on_gap(self, run_id: str) -> None:
        self._schedule("reload")

    # ------------------------------------------------------------ work (redraw thread)
    def _schedule(self, what: str) -> None:
        with self._lock:
            self._pending.add(what)
        self._redrawer.request()

    def _work(self) -> int:
        """Apply what was scheduled; the number of line points drawn."""
        with self._lock:
            pending, self._pending = self._pending, set()
        zoom = next((p for p in pending if p.startswith("zoom:")), None)
        if zoom == "zoom:all":
            self.model.load()
        elif zoom is not None:
            lo, hi = (int(v) for v in zoom[5:].split(","))
            self.model.load(lo, hi)
        elif "reload" in pending or (
            self.model.needs_reload() and time.monotonic() - self._reload_at > RELOAD_INTERVAL
        ):
            self._reload_at = time.monotonic()
            rng = self.model.loaded_range or (None, None)
            self.model.load(*rng)
        if "rebuild" in pending or ("reload" in pending and self._needs_rebuild()):
            self._rebuild()
        return self._draw()

    def _layout(self) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
        """What the marks and axes depend on: the metrics (axis labels) and the
        (dash style, y axis side) pairs in use (one raw and one smoothed mark each)."""
        sides = self.model.axis_sides()
        pairs = dict.fromkeys((s.dash, sides.get(s.metric, "left")) for s in self.model.series)
        return tuple(self.model.metrics), tuple(pairs)

    def _needs_rebuild(self) -> bool:
        return self._built_for != self._layout()

    # ------------------------------------------------------------ figure
    def _rebuild(self) -> None:
        """New scales, axes and marks (x mode, y scale, y axis sides or the series set changed)."""
        with self._lock:
            wall = self.model.x_mode == "wall_time"
            log = self.model.y_scale == "log"
            xs = bq.DateScale() if wall else bq.LinearScale()
            ys = bq.LogScale() if log else bq.LinearScale()
            self._built_for = self._layout()
            sides = self.model.axis_sides()
            right = [m for m in self.model.metrics if sides.get(m) == "right"]
            left = [m for m in self.model.metrics if m not in right]
            yr = (bq.LogScale() if log else bq.LinearScale()) if right else None
            x_label = {
                "step": "step",
                "relative_time": "relative time (s)",
                "wall_time": "wall time",
            }.get(self.model.x_mode, self.model.x_mode)
            axes = [
                bq.Axis(
                    scale=xs,
                    label=x_label,
                    grid_lines="solid",
                    label_offset="32px",
                    tick_format="%H:%M:%S" if wall else X_TICK_FORMAT,
                ),
                bq.Axis(
                    scale=ys,
                    orientation="vertical",
                    grid_lines="solid",
                    tick_format=Y_TICK_FORMAT,
                    label="" if self.compact else ", ".join(left)[:40],  # the title names it
                    label_offset="48px",
                ),
            ]
            if yr is not None:
                axes.append(
                    bq.Axis(
                        scale=yr,
                        orientation="vertical",
                        side="right",
                        grid_lines="none",
                        tick_format=Y_TICK_FORMAT,
                        label=", ".join(right)[:40],
                        label_offset="64px",
                    )
                )
            scales = {"x": xs, "y": ys}
            self._layers = [
                _Layer(
                    dash=dash,
                    side=side,
                    raw=bq.Lines(
                        x=[],
                        y=[],
                        scales={"x": xs, "y": yr if side == "right" else ys},
                        line_style=dash,
                        stroke_width=1.5,
                    ),
                    smooth=bq.Lines(
                        x=[],
                        y=[],
                        scales={"x": xs, "y": yr if side == "right" else ys},
                        line_style=dash,
                        stroke_width=2,
                    ),
                )
                for dash, side in self._built_for[1]
            ]
            # min-max bands of sampled series: closed polygons, filled, no outline
            self._band = bq.Lines(
                x=[], y=[], scales=scales, fill="inside", close_path=True, stroke_width=0
            )
            self._bad = {
                kind: bq.Scatter(
                    x=[],
                    y=[],
                    scales=scales,
                    marker=marker,
                    colors=[color],
                    default_size=48,
                    names=[],
                    display_names=False,
                    tooltip=bq.Tooltip(fields=["name"], labels=[""]),
                )
                for kind, (marker, color) in NONFINITE_STYLE.items()
            }
            marks: list[Any] = [self._band, *(layer.raw for layer in self._layers)]
            marks += [*(layer.smooth for layer in self._layers), *self._bad.values()]
            if self._x_scale is not None:
                self._x_scale.unobserve(self._on_zoom, names=["min", "max"])
            self._x_scale, self._y_scale, self._y_right = xs, ys, yr
            xs.observe(self._on_zoom, names=["min", "max"])
            follow_frontend_subshell(xs)  # a zoom is served while a cell runs (JupyterLab)
            with self.figure.hold_sync():
                self.figure.marks, self.figure.axes = marks, axes
                self.figure.fig_margin = {
                    "top": 12,
                    "bottom": 42,
                    "left": 64,
                    "right": 84 if yr is not None else 16,
                }
            with self.overlay.hold_sync():
                self.overlay.x_scale = xs
                self.overlay.x_kind = "date" if wall else "number"
                self.overlay.x_name = x_label
                self.overlay.y_log = log

    def _draw(self) -> int:
        """Push the model's current data into the marks (keeps the user's zoom);
        the number of line points drawn."""
        with self._lock:
            if self._needs_rebuild():
                self._rebuild()
            views = self.model.views()
            sides = self.model.axis_sides()
            y_range = self.model.y_range(views)
            smoothing_on = self.model.strength > 0
            finite = [v.y[np.isfinite(v.y)] for v in views]
            finite = np.concatenate(finite) if finite else np.zeros(0)
            top = y_range[1] if y_range else (float(finite.max()) if finite.size else 1.0)
            bottom = y_range[0] if y_range else (float(finite.min()) if finite.size else 0.0)
            for layer in self._layers:
                self._draw_layer(
                    layer,
                    [
                        v
                        for v in views
                        if v.dash == layer.dash and sides.get(v.key[1], "left") == layer.side
                    ],
                    smoothing_on,
                )
            drawn_views = [v for v in views if v.x.size]
            legend = legend_html(drawn_views) if len(drawn_views) > 1 else ""
            if self.legend.value != legend:  # one series: the title names it
                self.legend.value = legend
            self._draw_bands([v for v in views if sides.get(v.key[1], "left") == "left"])
            self._draw_overlay(views, sides, smoothing_on)
            bad: dict[str, tuple[list[Any], list[float], list[str]]] = {
                k: ([], [], []) for k in self._bad
            }
            for v in views:
                for i, kind in enumerate(v.nonfinite_kind):
                    xs, ys, names = bad[kind]
                    xs.append(v.nonfinite_x[i])
                    ys.append(bottom if kind == "-inf" else top)
                    names.append(
                        f"{v.label}: {kind.upper().replace('NAN', 'NaN')} "
                        f"at step {int(v.steps[~np.isfinite(v.raw)][i])}"
                    )
            for kind, mark in self._bad.items():
                xs, ys, names = bad[kind]
                with mark.hold_sync():
                    mark.x, mark.y, mark.names = np.asarray(xs), np.asarray(ys, dtype=float), names
            if y_range is not None:
                self._y_scale.min, self._y_scale.max = y_range
            if self.compact and self.model.x_mode != "wall_time":
                self._compact_ticks(views)
            self._draw_state(views)
            return sum(
                v.x.size + (v.smooth_x.size if smoothing_on and v.smooth_x is not None else 0)
                for v in views
            )

    @staticmethod
    def _draw_layer(layer: _Layer, views: list[SeriesView], smoothing_on: bool) -> None:
        """Raw lines (faint behind the smoothed ones when smoothing is on) and smoothed lines."""
        views = [v for v in views if v.x.size]
        faint = [_faint(v.color) if smoothing_on else (v.color, 1.0) for v in views]
        _set_lines(
            layer.raw,
            [v.x for v in views],
            [v.y for v in views],
            colors=[c for c, _ in faint],
            labels=[v.label for v in views],
            opacities=[o for _, o in faint],
        )
        smoothed = [v for v in views if smoothing_on and v.smooth_x is not None and v.smooth_x.size]
        _set_lines(
            layer.smooth,
            [v.smooth_x for v in smoothed],
            [v.smooth_y for v in smoothed],
            colors=[v.color for v in smoothed],
            labels=[v.label for v in smoothed],
        )

    def _draw_bands(self, views: list[SeriesView]) -> None:
        """One closed polygon per sampled series: lows forwards, highs backwards.
        Buckets without a drawable extent are left out (a gap would open the
        polygon, and an open sub-path is filled as if closed by a chord)."""
        xs, ys, colors = [], [], []
        for v in views:
            if v.band_x is None or not v.band_x.size:
                continue
            ok = np.isfinite(v.band_low) & np.isfinite(v.band_high)
            if self.model.y_scale == "log":
                ok &= (v.band_low > 0) & (v.band_high > 0)
            x = v.band_x[ok]
            if not x.size:
                continue
            xs.append(np.concatenate([x, x[::-1]]))
            ys.append(np.concatenate([v.band_low[ok], v.band_high[ok][::-1]]))
            colors.append(v.color)
        _set_lines(
            self._band,
            xs,
            ys,
            colors=colors,
            fill_colors=colors,
            fill_opacities=[0.15] * len(colors),
        )

    def _draw_overlay(
        self, views: list[SeriesView], sides: dict[str, str], smoothing_on: bool
    ) -> None:
        """Send the read-out's points, at most every ``OVERLAY_INTERVAL`` seconds
        (a timer sends the last state of a burst of redraws)."""
        now = time.monotonic()
        if now - self._overlay_at < OVERLAY_INTERVAL:
            if self._overlay_timer is None or not self._overlay_timer.is_alive():
                self._overlay_timer = threading.Timer(
                    OVERLAY_INTERVAL, lambda: self._schedule("draw")
                )
                self._overlay_timer.daemon = True
                self._overlay_timer.start()
            return
        self._overlay_at = now
        self.overlay.series = readout_series(views, sides, smoothing_on)

    def _compact_ticks(self, views: list[SeriesView]) -> None:
        """About 4 round x ticks (a narrow chart's default ticks overlap); the
        default ticks again while the user has zoomed."""
        xs = [v.x[np.isfinite(v.x)] for v in views]
        xs = [x for x in xs if x.size]
        zoomed = self._x_scale.min is not None or self._x_scale.max is not None
        if not xs or zoomed:
            self.figure.axes[0].tick_values = None
            return
        lo, hi = float(min(x.min() for x in xs)), float(max(x.max() for x in xs))
        self.figure.axes[0].tick_values = nice_ticks(lo, hi)
        ys = [v.y[np.isfinite(v.y)] for v in views]
        ys = [y for y in ys if y.size]
        if ys and self.model.y_scale == "linear":  # about 4 round y ticks in a small chart too
            lo, hi = float(min(y.min() for y in ys)), float(max(y.max() for y in ys))
            self.figure.axes[1].tick_values = nice_ticks(lo, hi)

    def _draw_state(self, views: list[SeriesView]) -> None:
        total = sum(v.total_points for v in views)
        drawn = sum(v.x.size for v in views)
        badges = []
        if any(v.sampled for v in views):
            badges.append(
                _badge(
                    f"sampled {drawn:,} of {total:,} pts",
                    "#7f7f7f",
                    "M4 downsampled by the server; zoom in for full resolution",
                )
            )
        if self._live_runs:
            badges.append(_badge("● live", "#1f77b4"))
        elif views:
            badges.append(_badge("finished", "#2ca02c"))
        self.status.value = "".join(badges)
        if drawn == 0:
            names = ", ".join(self.model.metrics) or "metrics"
            waiting = (
                "Waiting for the first point of" if self.model.running_run_ids() else "No data for"
            )
            self.empty.value = (
                f'<div class="wl-empty"><b>{waiting} {esc(names)}</b><br>'
                "Points appear here as soon as they are logged.</div>"
            )
            self.empty.layout.display = None
            self.figure.layout.visibility = "hidden"  # no empty axes under the empty state
        else:
            self.empty.layout.display = "none"
            self.figure.layout.visibility = None

    # ------------------------------------------------------------ zoom
    def _on_zoom(self, _change: dict[str, Any]) -> None:
        """The x scale changed. In JupyterLab this runs on a kernel subshell's thread, beside
        the cell and the live and redraw threads: scales and model are read under the chart's
        lock, then the model's (the order the redraw thread takes them)."""
        with self._lock:
            xs = self._x_scale
            if xs.min is None or xs.max is None:
                visible = None
            elif isinstance(xs.min, dt.datetime):
                visible = (xs.min.timestamp(), xs.max.timestamp())
            else:
                visible = (float(xs.min), float(xs.max))
            self._fit_y(visible)
            rng = self.model.requery_range(visible)
        if rng is None:
            return
        lo, hi = rng
        self._schedule("zoom:all" if lo is None else f"zoom:{lo},{hi}")

    def _fit_y(self, visible: tuple[float, float] | None) -> None:
        """The y axes follow an x zoom: the extent of the visible points (5 % padding);
        automatic again when the zoom is reset. Pinned ranges (ignore outliers) stay."""
        if self.model.ignore_outliers:
            return
        axes = [(s, side) for s, side in ((self._y_scale, "left"), (self._y_right, "right")) if s]
        if visible is None:
            for scale, _ in axes:
                scale.min = scale.max = None
            return
        sides = self.model.axis_sides()
        views = self.model.views()
        for scale, side in axes:
            shown = []
            for v in (v for v in views if sides.get(v.key[1], "left") == side):
                for x, y in ((v.x, v.y), (v.smooth_x, v.smooth_y)):
                    if x is None or y is None or not x.size:
                        continue
                    if x.dtype.kind == "M":
                        x = x.astype("datetime64[ms]").astype(np.int64) / 1e3
                    shown.append(y[(x >= visible[0]) & (x <= visible[1]) & np.isfinite(y)])
            values = np.concatenate(shown) if shown else np.zeros(0)
            if not values.size:
                continue
            lo, hi = float(values.min()), float(values.max())
            if self.model.y_scale == "log":
                scale.min, scale.max = lo / 1.1, hi * 1.1
            else:
                pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
                scale.min, scale.max = lo - pad, hi + pad


def chart(
    runs: Any,
    metrics: str | list[str] | None = None,
    *,
    x: str = "step",
    y_scale: str = "linear",
    smoothing: float | str | tuple[str, float] | None = 0.6,
    samples: int | str | None = None,
    ignore_outliers: bool = False,
    title: str | None = None,
    height: str = "360px",
    live: bool = True,
    connection: Connection | None = None,
) -> MetricChart:
    """A live chart of ``metrics`` for one or several ``runs``.

    ``x``: ``"step"``, ``"relative_time"``, ``"wall_time"`` or any logged metric.
    ``smoothing``: strength in [0, 1) (x-aware EMA), a method name, or
    ``(method, strength)``; 0/None draws the raw series only.
    ``samples``: M4 buckets per series (default 1000), or ``"all"`` for every point.
    """
    run_list = as_run_list(runs)
    conn, source = open_source(run_list, connection)  # offline: local data, not live
    run_ids = [run_id_of(r) for r in run_list]
    if not metrics:
        metrics = sorted({m["name"] for rid in run_ids for m in source.metric_names(rid)})
    elif isinstance(metrics, str):
        metrics = [metrics]
    model = ChartModel(
        source,
        run_ids,
        list(metrics),
        x=x,
        y_scale=y_scale,
        smoothing=smoothing,
        samples=samples,
        ignore_outliers=ignore_outliers,
    )
    live = live and conn is not None
    widget = MetricChart(conn, model, title=title, height=height, live=live)  # type: ignore[arg-type]
    return with_notice(widget, source)
