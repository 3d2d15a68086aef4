"""The live metric chart: a bqplot figure with ipywidgets controls.

``chart(runs, metrics)`` draws what :class:`~._model.ChartModel` computes;
live points arrive through :class:`~._live.LiveHub` and a
:class:`~._live.Redrawer` on the widgets' I/O loop (:mod:`._io_loop`) redraws
4 to 20 times per second by the chart's size. The figure's scales and marks are
:class:`~._marks.ChartMarks`, the toolbar :class:`~._controls.ChartControls`.

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

A chart made by a cell is closed when the cell runs again (:mod:`._lifetime`).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as W

from .._http import Connection
from ._chart_html import CSS, badge, empty_html, legend_html, status_html, title_label
from ._controls import ChartControls
from ._frontends import follow_frontend_subshell
from ._io_loop import IOLoop
from ._jobs import Job, Pending, Zoom
from ._lifetime import ShownInCells, close_all, close_tree, owned_by_cell
from ._live import LiveHub, Redrawer
from ._marks import ChartMarks, compact_ticks, layout_of
from ._model import X_MODES, ChartModel, SeriesView
from ._overlay import ChartOverlay, readout_series
from ._runs import as_run_list, is_borrowed, run_id_of
from ._source import open_source, with_notice
from ._style import MUTED

__all__ = ["CSS", "MetricChart", "chart"]

OVERLAY_INTERVAL = 0.5  # the read-out's points are re-sent at most twice a second
RELOAD_INTERVAL = 1.0  # live re-bucketing by the server at most once per second


class MetricChart(ShownInCells, W.VBox):
    """A live chart of runs × metrics. Build it with :func:`chart`."""

    def __init__(
        self,
        conn: Connection | None,
        model: ChartModel,
        *,
        title: str | None = None,
        height: str = "360px",
        live: bool = True,
        compact: bool = False,
        owns_connection: bool = False,
    ) -> None:
        """``conn`` None: offline data, not live. ``compact``: a small multiple (no
        controls, fewer ticks); the workspace's per-metric grid uses it.
        ``owns_connection``: close ``conn`` with the chart."""
        self.conn, self.model, self.compact = conn, model, compact
        self._owns_connection = owns_connection
        self._lock = threading.RLock()
        self._work_lock = threading.Lock()
        self._closed = False
        self._reload_at = 0.0
        self._pending = Pending()
        self.marks = ChartMarks()
        self._overlay_at = -float("inf")
        self._overlay_timer: concurrent.futures.Future[None] | None = None
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
        self.controls = ChartControls(model, self)
        c = self.controls  # its widgets stay attributes of the chart too
        self.smoothing, self.method, self.x_axis = c.smoothing, c.method, c.x_axis
        self.log_y, self.outliers = c.log_y, c.outliers
        self.reset, self.png, self.csv = c.reset, c.png, c.csv
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
        self.status.value = badge("loading…", MUTED)
        self._redrawer = Redrawer(self._work)
        self._live_runs: set[str] = set()
        if live and conn is not None:
            self._subscribe(conn)
        self.model.load()
        self._rebuild()
        self._draw()

    # ------------------------------------------------------------ toolbar
    def _on_smoothing(self) -> None:
        with self.model.lock:
            self.model.method = str(self.method.value)
            self.model.strength = float(self.smoothing.value)
            sampled = any(s.sampled for s in self.model.series)
        self._schedule(Job.RELOAD if sampled else Job.DRAW)

    def _on_axes(self, *, x: str | None = None, y: str | None = None) -> None:
        with self.model.lock:
            if x is not None:
                self.model.x_mode = x
            if y is not None:
                self.model.y_scale = y
        self._schedule(Job.RELOAD if x is not None and x not in X_MODES else Job.REBUILD)

    def _on_outliers(self, on: bool) -> None:
        self.model.ignore_outliers = on
        if not on and self.marks.y_scale is not None:
            self.marks.y_scale.min = self.marks.y_scale.max = None
        self._schedule(Job.DRAW)

    # ------------------------------------------------------------ public
    def reset_zoom(self) -> None:
        """Show everything again (re-queries the whole range when zoomed data was loaded)."""
        with self._lock:
            self.marks.reset_zoom()
        self._schedule(Zoom() if self.model.loaded_range is not None else Job.DRAW)

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
        self.controls.download.send_file(name, data, "text/csv")

    def save_csv(self, path: str | Path | None = None) -> Path:
        """Write every point of the chart to ``path`` (default ``<metrics>.csv``)."""
        out = Path(path or f"{'-'.join(self.model.metrics) or 'chart'}.csv".replace("/", "_"))
        self.to_dataframe(full=True).to_csv(out, index=False)
        self.status.value = badge(f"saved {out.name}", "#2ca02c")
        return out

    def refresh(self) -> None:
        """Re-query the server now."""
        self._schedule(Job.RELOAD)

    def set_metrics(self, metrics: list[str]) -> None:
        """Show other metrics (the workspace's selector uses this)."""
        self.model.set_metrics(metrics)
        self.title.value = ", ".join(metrics)
        self._schedule(Job.RELOAD)

    def close(self) -> None:
        """Stop live updates and redraws and close every widget of the chart."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.conn is not None:
            for run_id in list(self._live_runs):
                LiveHub.get().unsubscribe(self.conn, run_id, self)
        self._redrawer.stop()
        if self._overlay_timer is not None:
            self._overlay_timer.cancel()
        if self.marks.x_scale is not None:
            self.marks.x_scale.unobserve(self._on_zoom, names=["min", "max"])
        close_tree(self)
        super().close()
        if self._owns_connection and self.conn is not None:
            self.conn.close()

    # ------------------------------------------------------------ live (Listener)
    def _subscribe(self, conn: Connection) -> None:
        hub = LiveHub.get()
        readies = []
        for run_id in self.model.run_ids:
            run = self.model.source.run(run_id)
            self.model.runs[run_id] = run
            if run.get("state") == "running":
                self._live_runs.add(run_id)
                readies.append(hub.subscribe(conn, run_id, self))
        for ready in readies:  # points logged from now on reach us; the REST load gets the rest
            ready.wait(2.0)

    def on_points(self, run_id: str, points: dict[str, Any]) -> None:
        if self.model.append(run_id, points):
            self._schedule(Job.DRAW)

    def on_run(self, run: dict[str, Any]) -> None:
        if not self.model.set_run(run):
            return  # e.g. a summary update: a redraw now would only delay the next points
        if run.get("state") != "running":
            self._live_runs.discard(str(run.get("id")))
        self._schedule(Job.DRAW)

    def on_gap(self, run_id: str) -> None:
        self._schedule(Job.RELOAD)

    # ------------------------------------------------------------ work (I/O loop's worker)
    def _schedule(self, request: Job | Zoom) -> None:
        with self._lock:
            self._pending.add(request)
        self._redrawer.request()

    def _work(self) -> int:
        """Apply what was scheduled; the number of line points drawn. One at a time:
        a call from another thread waits for the worker's to finish."""
        with self._work_lock:
            with self._lock:
                pending, self._pending = self._pending, Pending()
            if self._closed:
                return 0
            jobs, zoom = pending.jobs, pending.zoom
            if zoom is not None:
                self.model.load(zoom.lo, zoom.hi)
            elif Job.RELOAD in jobs or (
                self.model.needs_reload() and time.monotonic() - self._reload_at > RELOAD_INTERVAL
            ):
                self._reload_at = time.monotonic()
                rng = self.model.loaded_range or (None, None)
                self.model.load(*rng)
            if Job.REBUILD in jobs or (Job.RELOAD in jobs and self._needs_rebuild()):
                self._rebuild()
            return self._draw()

    def _needs_rebuild(self) -> bool:
        return self.marks.built_for != layout_of(self.model)

    # ------------------------------------------------------------ figure
    def _rebuild(self) -> None:
        """New scales, axes and marks (x mode, y scale, y axis sides or the series set changed)."""
        with self._lock:
            if self._closed:
                return
            old_x, old = self.marks.x_scale, [*self.figure.marks, *self.figure.axes]
            marks, axes = self.marks.build(self.model, self.compact)
            xs = self.marks.x_scale
            if old_x is not None:
                old_x.unobserve(self._on_zoom, names=["min", "max"])
            xs.observe(self._on_zoom, names=["min", "max"])
            follow_frontend_subshell(xs)  # a zoom is served while a cell runs (JupyterLab)
            with self.figure.hold_sync():
                self.figure.marks, self.figure.axes = marks, axes
                self.figure.fig_margin = {
                    "top": 12,
                    "bottom": 42,
                    "left": 64,
                    "right": 84 if self.marks.y_right is not None else 16,
                }
            with self.overlay.hold_sync():
                self.overlay.x_scale = xs
                self.overlay.x_kind = "date" if self.model.x_mode == "wall_time" else "number"
                self.overlay.x_name = axes[0].label
                self.overlay.y_log = self.model.y_scale == "log"
            close_all(old)  # the replaced marks, axes and scales

    def _draw(self) -> int:
        """Push the model's current data into the marks (keeps the user's zoom);
        the number of line points drawn."""
        with self._lock:
            if self._closed:
                return 0
            if self._needs_rebuild():
                self._rebuild()
            views = self.model.views()
            smoothing_on = self.model.strength > 0
            self.marks.draw(self.model, views, smoothing_on)
            drawn_views = [v for v in views if v.x.size]
            legend = legend_html(drawn_views) if len(drawn_views) > 1 else ""
            if self.legend.value != legend:  # one series: the title names it
                self.legend.value = legend
            self._draw_overlay(views, smoothing_on)
            if self.compact and self.model.x_mode != "wall_time":
                compact_ticks(
                    self.figure.axes, views, self.model.y_scale == "linear", self.marks.zoomed()
                )
            self._draw_state(views)
            return sum(
                v.x.size + (v.smooth_x.size if smoothing_on and v.smooth_x is not None else 0)
                for v in views
            )

    def _draw_overlay(self, views: list[SeriesView], smoothing_on: bool) -> None:
        """Send the read-out's points, at most every ``OVERLAY_INTERVAL`` seconds
        (a timer sends the last state of a burst of redraws)."""
        now = time.monotonic()
        if now - self._overlay_at < OVERLAY_INTERVAL:
            if self._overlay_timer is None or self._overlay_timer.done():
                self._overlay_timer = IOLoop.get().later(
                    OVERLAY_INTERVAL, lambda: self._schedule(Job.DRAW)
                )
            return
        self._overlay_at = now
        self.overlay.series = readout_series(views, self.model.axis_sides(), smoothing_on)

    def _draw_state(self, views: list[SeriesView]) -> None:
        self.status.value = status_html(views, bool(self._live_runs))
        if sum(v.x.size for v in views) == 0:
            self.empty.value = empty_html(self.model.metrics, bool(self.model.running_run_ids()))
            self.empty.layout.display = None
            self.figure.layout.visibility = "hidden"  # no empty axes under the empty state
        else:
            self.empty.layout.display = "none"
            self.figure.layout.visibility = None

    # ------------------------------------------------------------ zoom
    def _on_zoom(self, _change: dict[str, Any]) -> None:
        """The x scale changed. In JupyterLab this runs on a kernel subshell's thread, beside
        the cell and the I/O loop's worker: scales and model are read under the chart's lock,
        then the model's (the order the worker takes them)."""
        with self._lock:
            visible = self.marks.visible_x()
            self.marks.fit_y(self.model, visible)
            rng = self.model.requery_range(visible)
        if rng is not None:
            self._schedule(Zoom(*rng))


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
    In a notebook the chart is closed when its cell runs again or is deleted.
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
    widget = MetricChart(
        conn,
        model,
        title=title,
        height=height,
        live=live and conn is not None,
        owns_connection=conn is not None and not is_borrowed(conn, run_list, connection),
    )
    with_notice(widget, source)
    return owned_by_cell(widget)
