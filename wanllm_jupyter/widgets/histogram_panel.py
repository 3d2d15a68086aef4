"""The histogram panel: how one logged distribution (``wl.Histogram``, or
``wl.watch``'s gradients and parameters) moves over steps.

Per run, a heatmap (steps on x, values on y, the colour the share of that
step's values in each bin; histograms with other edges are rebinned onto one
grid, :mod:`._hist_grid`) and below it the distribution at one step, drawn as
bars over that step's own edges. A click on the heatmap or the slider picks the
step; while the run logs, the slider follows the latest step unless moved.

At most ``MAX_HISTOGRAM_STEPS`` steps are read at once (the server picks them
evenly, first and last kept); live steps are appended, and past twice that the
whole range is read again, so memory stays bounded however long a run logs.
"""

from __future__ import annotations

import threading
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np

from .._http import Connection
from .._media_source import MAX_HISTOGRAM_STEPS
from ..core.api.media import HistogramStep
from ._format import X_TICK_FORMAT
from ._frontends import follow_frontend_subshell
from ._hist_grid import heat, nearest, outline
from ._html import esc
from ._media_panel import MediaPanel, open_panel

# transparent where a bin is empty (the theme's background shows), then blue, then orange
HEAT_COLORS = ["rgba(0,114,178,0)", "rgba(0,114,178,0.85)", "#E69F00"]
BAR_COLOR = "#0072B2"


def merge_steps(
    held: list[HistogramStep], new: list[HistogramStep], since: int | None
) -> list[HistogramStep]:
    """``held`` with the steps from ``since`` on replaced by ``new`` (all of them
    when ``since`` is None), in step order."""
    kept = [h for h in held if since is not None and h.step < since]
    return sorted([*kept, *new], key=lambda h: h.step)


class _RunView:
    """One run's heatmap, bars and slider."""

    def __init__(self, panel: HistogramPanel, run_id: str) -> None:
        self.panel, self.run_id = panel, run_id
        self.hists: list[HistogramStep] = []
        self.follow = True
        self._setting = threading.local()
        self.x = bq.LinearScale()
        self.y = bq.LinearScale()
        self.color = bq.ColorScale(colors=HEAT_COLORS, min=0)
        self.heat = bq.HeatMap(
            x=np.arange(2.0), y=np.arange(2.0), color=np.zeros((2, 2)),
            scales={"x": self.x, "y": self.y, "color": self.color},
        )  # fmt: skip
        self.marker = bq.Lines(
            x=np.zeros(2), y=np.zeros(2), scales={"x": self.x, "y": self.y},
            colors=["#D55E00"], stroke_width=2,
        )  # fmt: skip
        self.heat.on_element_click(self._on_click)
        self.heat_fig = bq.Figure(
            marks=[self.heat, self.marker],
            axes=[
                bq.Axis(scale=self.x, label="step", tick_format=X_TICK_FORMAT, grid_lines="none"),
                bq.Axis(scale=self.y, orientation="vertical", label=panel.key, grid_lines="none"),
            ],
            animation_duration=0,
            fig_margin={"top": 8, "bottom": 40, "left": 64, "right": 16},
            layout=W.Layout(width="100%", height="240px", min_width="0"),
        )
        self.bx, self.by = bq.LinearScale(), bq.LinearScale(min=0)
        self.bars = bq.Lines(
            x=np.zeros(2), y=np.zeros(2), scales={"x": self.bx, "y": self.by},
            interpolation="step-after", fill="bottom", colors=[BAR_COLOR],
            fill_colors=[BAR_COLOR], fill_opacities=[0.35],
        )  # fmt: skip
        self.bars_fig = bq.Figure(
            marks=[self.bars],
            axes=[
                bq.Axis(scale=self.bx, label=panel.key, grid_lines="none"),
                bq.Axis(scale=self.by, orientation="vertical", label="count", tick_format=".3~s"),
            ],
            animation_duration=0,
            fig_margin={"top": 8, "bottom": 40, "left": 64, "right": 16},
            layout=W.Layout(width="100%", height="180px", min_width="0"),
        )
        self.slider = W.SelectionSlider(
            options=[0], description="step", continuous_update=True, layout=W.Layout(flex="1")
        )
        self.slider.observe(self._on_slider, names="value")
        follow_frontend_subshell(self.slider)  # moved while a cell runs (JupyterLab)
        follow_frontend_subshell(self.heat)  # and clicks
        self.name = W.HTML()
        self.picked = W.HTML()
        self.box = W.VBox(
            [self.name, self.heat_fig, W.HBox([self.slider, self.picked]), self.bars_fig],
            layout=W.Layout(min_width="0"),
        )

    @property
    def steps(self) -> list[int]:
        return [h.step for h in self.hists]

    def load(self, since: int | None) -> None:
        source, key = self.panel.source, self.panel.key
        got = self.panel.absent_ok(source.histograms, self.run_id, key, start_step=since)
        if got is None:
            return
        self.hists = merge_steps(self.hists, got.histograms, since)
        if len(self.hists) > 2 * MAX_HISTOGRAM_STEPS:  # read an even choice again
            self.hists = source.histograms(self.run_id, key).histograms

    def draw(self) -> None:
        self.name.value = (
            f'<div class="wl-run-name">{esc(self.panel.run_name(self.run_id))}</div>'
            if len(self.panel.run_ids) > 1
            else ""
        )
        grid = heat(self.hists)
        if grid is None:
            return
        steps = self.steps
        current = self.slider.value
        value = steps[-1] if self.follow or current not in steps else current
        self._setting.on = True
        try:  # two messages: with both in one, the browser's slider stays at index 0
            if list(self.slider.options) != steps:
                self.slider.options = steps
            self.slider.value = value
        finally:
            self._setting.on = False
        x, share = grid.steps.astype(np.float64), grid.share
        if x.size == 1:  # bqplot squeezes a one-column heatmap away: draw it 1 step wide
            x, share = np.array([x[0] - 0.5, x[0] + 0.5]), np.repeat(share, 2, axis=1)
        with self.heat.hold_sync():
            self.heat.x, self.heat.y, self.heat.color = x, grid.centers, share
        self.color.max = float(grid.share.max()) or 1.0
        self.draw_step()

    def draw_step(self) -> None:
        """The bars and the heatmap's marker at the slider's step."""
        if not self.hists:
            return
        h = self.hists[nearest(self.steps, float(self.slider.value))]
        x, y = outline(h)
        with self.bars.hold_sync():
            self.bars.x, self.bars.y = x, y
        with self.marker.hold_sync():
            self.marker.x = np.full(2, float(h.step))
            self.marker.y = np.array([min(g.edges[0] for g in self.hists),
                                      max(g.edges[-1] for g in self.hists)])  # fmt: skip
        self.picked.value = self.panel.muted(f"{sum(h.counts):,.0f} values")

    def _on_slider(self, change: dict[str, Any]) -> None:
        if getattr(self._setting, "on", False):
            return
        steps = self.steps
        self.follow = bool(steps) and change["new"] == steps[-1]
        self.draw_step()

    def _on_click(self, _mark: Any, event: dict[str, Any]) -> None:
        x = (event.get("data") or {}).get("click_x")
        if isinstance(x, (int, float)) and self.hists:
            self.slider.value = self.steps[nearest(self.steps, float(x))]  # → _on_slider


class HistogramPanel(MediaPanel):
    """Histograms of one key over steps; build it with :func:`distributions`."""

    KIND = "histogram"
    NOUN = "histograms"

    def __init__(self, conn: Connection, run_ids: list[str], key: str, **kwargs: Any) -> None:
        self.key = key  # the views' axis labels need it before the panel is built
        self.views = {run_id: _RunView(self, run_id) for run_id in run_ids}
        super().__init__(conn, run_ids, key, parts=[v.box for v in self.views.values()], **kwargs)

    def load(self, since: dict[str, int] | None) -> None:
        for run_id, view in self.views.items():
            if since is None:
                view.hists = []
                view.load(None)
            elif run_id in since:
                view.load(since[run_id])

    def draw(self) -> bool:
        for view in self.views.values():
            view.box.layout.display = None if view.hists else "none"
            view.draw()
        return any(v.hists for v in self.views.values())


def distributions(
    runs: Any, key: str, *, live: bool = True, connection: Connection | None = None
) -> HistogramPanel | W.HTML:
    """The histograms logged under ``key`` (``wl.Histogram``, ``wl.watch``) by one
    or several ``runs``, over steps; live while a run logs."""
    return open_panel(HistogramPanel, runs, key, live, connection)
