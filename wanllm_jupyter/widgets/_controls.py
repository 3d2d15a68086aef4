"""The chart's toolbar: smoothing, x axis, log y, outliers, zoom reset, PNG and CSV."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import ipywidgets as W

from ._download import BrowserDownload
from ._model import X_MODES, ChartModel

SMOOTHING_CHOICES = [
    ("EMA (x-aware)", "ema"),
    ("TensorBoard EMA", "tb_ema"),
    ("Gaussian", "gaussian"),
    ("Running average", "running_avg"),
    ("Trailing average", "running_avg_trailing"),
]
X_CHOICES = [("Step", "step"), ("Relative time (s)", "relative_time"), ("Wall time", "wall_time")]


class ControlActions(Protocol):
    """What the toolbar calls on its chart."""

    def _on_smoothing(self) -> None: ...
    def _on_axes(self, *, x: str | None = None, y: str | None = None) -> None: ...
    def _on_outliers(self, on: bool) -> None: ...
    def reset_zoom(self) -> None: ...
    def save_png(self, filename: str | None = None) -> None: ...
    def download_csv(self, filename: str | None = None) -> None: ...


class ChartControls(W.HBox):
    """The toolbar's widgets, set from ``model`` and wired to ``chart``."""

    def __init__(self, model: ChartModel, chart: ControlActions) -> None:
        small = W.Layout(width="auto")
        self.smoothing = W.FloatSlider(
            value=model.strength,
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
            options=SMOOTHING_CHOICES, value=model.method, layout=W.Layout(width="150px")
        )
        x_options = list(X_CHOICES)
        if model.x_mode not in X_MODES:
            x_options.append((model.x_mode, model.x_mode))
        self.x_axis = W.Dropdown(
            options=x_options,
            value=model.x_mode,
            description="x",
            layout=W.Layout(width="190px"),
            style={"description_width": "14px"},
        )
        self.log_y = W.ToggleButton(
            value=model.y_scale == "log",
            description="log y",
            tooltip="Logarithmic y axis",
            layout=small,
        )
        self.outliers = W.ToggleButton(
            value=model.ignore_outliers,
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
        self.download = BrowserDownload()
        self._wire(chart)
        super().__init__(
            [
                self.smoothing,
                self.method,
                self.x_axis,
                self.log_y,
                self.outliers,
                self.reset,
                self.png,
                self.csv,
                self.download,
            ],
            layout=W.Layout(flex_flow="row wrap", align_items="center", gap="4px"),
        )

    def _wire(self, chart: ControlActions) -> None:
        def on_value(widget: W.ValueWidget, act: Callable[[object], None]) -> None:
            widget.observe(lambda change: act(change["new"]), names="value")

        on_value(self.smoothing, lambda _: chart._on_smoothing())
        on_value(self.method, lambda _: chart._on_smoothing())
        on_value(self.x_axis, lambda new: chart._on_axes(x=str(new)))
        on_value(self.log_y, lambda new: chart._on_axes(y="log" if new else "linear"))
        on_value(self.outliers, lambda new: chart._on_outliers(bool(new)))
        self.reset.on_click(lambda _: chart.reset_zoom())
        self.png.on_click(lambda _: chart.save_png())
        self.csv.on_click(lambda _: chart.download_csv())
