"""The chart overlay (``js/widgets/chart_overlay.ts``): hover read-out, drag zoom
and tick thinning, in the browser, for the bqplot figure it sits beside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anywidget
import numpy as np
import traitlets as T
from ipywidgets import Widget, widget_serialization

from ._model import SeriesView

STATIC = Path(__file__).resolve().parent.parent / "static"
READOUT_POINTS = 2000  # points per chart sent for the read-out, shared by its series


class ChartOverlay(anywidget.AnyWidget):
    """Holds what the read-out shows: per series its label, colour, axis side and
    (sub-sampled) points."""

    _esm = STATIC / "chart_overlay.js"
    _css = STATIC / "chart_overlay.css"
    series = T.List(T.Dict()).tag(sync=True)
    x_kind = T.Unicode("number").tag(sync=True)
    x_name = T.Unicode("step").tag(sync=True)
    y_log = T.Bool(False).tag(sync=True)
    x_scale = T.Instance(Widget, allow_none=True).tag(sync=True, **widget_serialization)
    # left out of static HTML exports (html_export.drop_interactive_only)
    interactive_only = T.Bool(True, read_only=True).tag(sync=True)


def _numbers(values: np.ndarray) -> list[float | None]:
    """JSON numbers at 6 significant digits; None where not finite."""
    out = np.round(values.astype(np.float64), 12)
    return [float(f"{v:.6g}") if np.isfinite(v) else None for v in out.tolist()]


def _x(values: np.ndarray) -> list[float | None]:
    """x as plain JSON numbers (datetime64 → epoch milliseconds), full precision."""
    if values.dtype.kind == "M":
        values = values.astype("datetime64[ms]").astype(np.int64)
    return [v if np.isfinite(v) else None for v in values.astype(np.float64).tolist()]


def readout_series(
    views: list[SeriesView], sides: dict[str, str], smoothing_on: bool
) -> list[dict[str, Any]]:
    """The overlay's ``series``: every k-th point of each view (at most
    ``READOUT_POINTS`` in all), the smoothed line alongside when it is drawn."""
    budget = max(100, READOUT_POINTS // max(len(views), 1))
    out = []
    for v in views:
        if not v.x.size:
            continue
        idx = np.arange(0, v.x.size, max(1, -(-v.x.size // budget)))
        item: dict[str, Any] = {
            "label": v.label,
            "color": v.color,
            "side": sides.get(v.key[1], "left"),
            "x": _x(v.x[idx]),
            "y": _numbers(v.y[idx]),
        }
        if smoothing_on and v.smooth_x is not None and v.smooth_x.size:
            sidx = np.arange(0, v.smooth_x.size, max(1, -(-v.smooth_x.size // budget)))
            item["sx"] = _x(v.smooth_x[sidx])
            item["sy"] = _numbers(v.smooth_y[sidx])  # type: ignore[index]
        out.append(item)
    return out
