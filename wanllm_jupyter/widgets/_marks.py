"""The chart's bqplot scales, axes and marks: built for a model's layout (x mode,
y scale, y axis sides, dash styles) and filled from its series views."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import numpy as np

from ._format import X_TICK_FORMAT, Y_TICK_FORMAT
from ._model import ChartModel, SeriesView

NONFINITE_STYLE = {
    "nan": ("cross", "#d62728"),
    "+inf": ("triangle-up", "#d62728"),
    "-inf": ("triangle-down", "#d62728"),
}
X_LABELS = {"step": "step", "relative_time": "relative time (s)", "wall_time": "wall time"}
Layout = tuple[tuple[str, ...], tuple[tuple[str, str], ...]]


@dataclass(slots=True)
class Layer:
    """The lines of every series drawn with one dash style on one y axis: a
    bqplot ``Lines`` mark draws many lines (one colour, label and opacity each)
    but one dash, on one scale."""

    dash: str
    side: str
    raw: bq.Lines
    smooth: bq.Lines


def faint(color: str) -> tuple[str, float]:
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


def set_lines(mark: bq.Lines, xs: list[np.ndarray], ys: list[np.ndarray], **traits: Any) -> None:
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


def layout_of(model: ChartModel) -> Layout:
    """What the marks and axes depend on: the metrics (axis labels) and the
    (dash style, y axis side) pairs in use (one raw and one smoothed mark each)."""
    sides = model.axis_sides()
    pairs = dict.fromkeys((s.dash, sides.get(s.metric, "left")) for s in model.series)
    return tuple(model.metrics), tuple(pairs)


def _lines(xs: Any, y: Any, dash: str, width: float) -> bq.Lines:
    return bq.Lines(x=[], y=[], scales={"x": xs, "y": y}, line_style=dash, stroke_width=width)


@dataclass
class ChartMarks:
    """One chart's scales and marks (None/empty until :meth:`build`)."""

    x_scale: Any = None
    y_scale: Any = None
    y_right: Any = None
    layers: list[Layer] = field(default_factory=list)
    band: bq.Lines | None = None
    bad: dict[str, bq.Scatter] = field(default_factory=dict)
    built_for: Layout | None = None

    def build(self, model: ChartModel, compact: bool) -> tuple[list[Any], list[bq.Axis]]:
        """New scales and marks for the model's layout; the figure's marks and axes."""
        wall, log = model.x_mode == "wall_time", model.y_scale == "log"
        xs = bq.DateScale() if wall else bq.LinearScale()
        ys = bq.LogScale() if log else bq.LinearScale()
        self.built_for = layout_of(model)
        sides = model.axis_sides()
        right = [m for m in model.metrics if sides.get(m) == "right"]
        left = [m for m in model.metrics if m not in right]
        yr = (bq.LogScale() if log else bq.LinearScale()) if right else None
        axes = [
            bq.Axis(
                scale=xs,
                label=X_LABELS.get(model.x_mode, model.x_mode),
                grid_lines="solid",
                label_offset="32px",
                tick_format="%H:%M:%S" if wall else X_TICK_FORMAT,
            ),
            bq.Axis(
                scale=ys,
                orientation="vertical",
                grid_lines="solid",
                tick_format=Y_TICK_FORMAT,
                label="" if compact else ", ".join(left)[:40],  # the title names it
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
        self.layers = [
            Layer(
                dash=dash,
                side=side,
                raw=_lines(xs, yr if side == "right" else ys, dash, 1.5),
                smooth=_lines(xs, yr if side == "right" else ys, dash, 2),
            )
            for dash, side in self.built_for[1]
        ]
        # min-max bands of sampled series: closed polygons, filled, no outline
        self.band = bq.Lines(
            x=[], y=[], scales=scales, fill="inside", close_path=True, stroke_width=0
        )
        self.bad = {
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
        marks: list[Any] = [self.band, *(layer.raw for layer in self.layers)]
        marks += [*(layer.smooth for layer in self.layers), *self.bad.values()]
        self.x_scale, self.y_scale, self.y_right = xs, ys, yr
        return marks, axes

    def draw(self, model: ChartModel, views: list[SeriesView], smoothing_on: bool) -> None:
        """Lines, bands and non-finite markers of ``views``; a pinned y range."""
        sides = model.axis_sides()
        y_range = model.y_range(views)
        for layer in self.layers:
            mine = [
                v
                for v in views
                if v.dash == layer.dash and sides.get(v.key[1], "left") == layer.side
            ]
            _draw_layer(layer, mine, smoothing_on)
        left = [v for v in views if sides.get(v.key[1], "left") == "left"]
        _draw_bands(self.band, left, model.y_scale == "log")
        self._draw_nonfinite(views, y_range)
        if y_range is not None:
            self.y_scale.min, self.y_scale.max = y_range

    def _draw_nonfinite(self, views: list[SeriesView], y_range: tuple[float, float] | None) -> None:
        """NaN and ±Infinity markers at the top (bottom for -Infinity) of the plot."""
        finite = [v.y[np.isfinite(v.y)] for v in views]
        values = np.concatenate(finite) if finite else np.zeros(0)
        top = y_range[1] if y_range else (float(values.max()) if values.size else 1.0)
        bottom = y_range[0] if y_range else (float(values.min()) if values.size else 0.0)
        bad: dict[str, tuple[list[Any], list[float], list[str]]] = {
            k: ([], [], []) for k in self.bad
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
        for kind, mark in self.bad.items():
            xs, ys, names = bad[kind]
            with mark.hold_sync():
                mark.x, mark.y, mark.names = np.asarray(xs), np.asarray(ys, dtype=float), names

    def zoomed(self) -> bool:
        return self.x_scale.min is not None or self.x_scale.max is not None

    def reset_zoom(self) -> None:
        for scale in (self.x_scale, self.y_scale, self.y_right):
            if scale is not None:
                scale.min = scale.max = None

    def visible_x(self) -> tuple[float, float] | None:
        """The x range the user zoomed to (epoch seconds on a date scale), or None."""
        xs = self.x_scale
        if xs.min is None or xs.max is None:
            return None
        if isinstance(xs.min, dt.datetime):
            return (xs.min.timestamp(), xs.max.timestamp())
        return (float(xs.min), float(xs.max))

    def fit_y(self, model: ChartModel, visible: tuple[float, float] | None) -> None:
        """The y axes follow an x zoom: the extent of the visible points (5 % padding);
        automatic again when the zoom is reset. Pinned ranges (ignore outliers) stay."""
        if model.ignore_outliers:
            return
        axes = [(s, side) for s, side in ((self.y_scale, "left"), (self.y_right, "right")) if s]
        if visible is None:
            for scale, _ in axes:
                scale.min = scale.max = None
            return
        sides = model.axis_sides()
        views = model.views()
        for scale, side in axes:
            values = _visible_y([v for v in views if sides.get(v.key[1], "left") == side], visible)
            if not values.size:
                continue
            lo, hi = float(values.min()), float(values.max())
            if model.y_scale == "log":
                scale.min, scale.max = lo / 1.1, hi * 1.1
            else:
                pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 1.0
                scale.min, scale.max = lo - pad, hi + pad


def _visible_y(views: list[SeriesView], visible: tuple[float, float]) -> np.ndarray:
    """The finite y values (raw and smoothed) of ``views`` inside the x range ``visible``."""
    shown = []
    for v in views:
        for x, y in ((v.x, v.y), (v.smooth_x, v.smooth_y)):
            if x is None or y is None or not x.size:
                continue
            if x.dtype.kind == "M":
                x = x.astype("datetime64[ms]").astype(np.int64) / 1e3
            shown.append(y[(x >= visible[0]) & (x <= visible[1]) & np.isfinite(y)])
    return np.concatenate(shown) if shown else np.zeros(0)


def _draw_layer(layer: Layer, views: list[SeriesView], smoothing_on: bool) -> None:
    """Raw lines (faint behind the smoothed ones when smoothing is on) and smoothed lines."""
    views = [v for v in views if v.x.size]
    colours = [faint(v.color) if smoothing_on else (v.color, 1.0) for v in views]
    set_lines(
        layer.raw,
        [v.x for v in views],
        [v.y for v in views],
        colors=[c for c, _ in colours],
        labels=[v.label for v in views],
        opacities=[o for _, o in colours],
    )
    sx, sy, colors, labels = [], [], [], []
    for v in views:
        if smoothing_on and v.smooth_x is not None and v.smooth_y is not None and v.smooth_x.size:
            sx.append(v.smooth_x)
            sy.append(v.smooth_y)
            colors.append(v.color)
            labels.append(v.label)
    set_lines(layer.smooth, sx, sy, colors=colors, labels=labels)


def _draw_bands(band: bq.Lines, views: list[SeriesView], log: bool) -> None:
    """One closed polygon per sampled series: lows forwards, highs backwards.
    Buckets without a drawable extent are left out (a gap would open the
    polygon, and an open sub-path is filled as if closed by a chord)."""
    xs, ys, colors = [], [], []
    for v in views:
        if v.band_x is None or v.band_low is None or v.band_high is None or not v.band_x.size:
            continue
        ok = np.isfinite(v.band_low) & np.isfinite(v.band_high)
        if log:
            ok &= (v.band_low > 0) & (v.band_high > 0)
        x = v.band_x[ok]
        if not x.size:
            continue
        xs.append(np.concatenate([x, x[::-1]]))
        ys.append(np.concatenate([v.band_low[ok], v.band_high[ok][::-1]]))
        colors.append(v.color)
    set_lines(band, xs, ys, colors=colors, fill_colors=colors, fill_opacities=[0.15] * len(colors))


def compact_ticks(
    axes: list[bq.Axis], views: list[SeriesView], linear_y: bool, zoomed: bool
) -> None:
    """About 4 round x ticks (a narrow chart's default ticks overlap); the
    default ticks again while the user has zoomed."""
    xs = [x for x in (v.x[np.isfinite(v.x)] for v in views) if x.size]
    if not xs or zoomed:
        axes[0].tick_values = None
        return
    axes[0].tick_values = nice_ticks(
        float(min(x.min() for x in xs)), float(max(x.max() for x in xs))
    )
    ys = [y for y in (v.y[np.isfinite(v.y)] for v in views) if y.size]
    if ys and linear_y:  # about 4 round y ticks in a small chart too
        axes[1].tick_values = nice_ticks(
            float(min(y.min() for y in ys)), float(max(y.max() for y in ys))
        )
