"""System metrics as small multiples: one compact chart per group and unit
(CPU %, memory %, memory MB, disk, network, GPU, ...), each with an HTML legend
above the plot so that many series (CPU cores, GPUs) never cover the lines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np

from ._format import X_TICK_FORMAT, Y_TICK_FORMAT, padded_range
from ._html import esc
from ._marks import nice_ticks
from ._source import FloatArray, floats
from ._style import PALETTE

GROUPS = ("cpu", "memory", "disk", "network", "gpu")
GROUP_TITLES = {
    "cpu": "CPU",
    "memory": "Memory",
    "disk": "Disk",
    "network": "Network",
    "gpu": "GPU",
}
UNITS = (("percent", "%"), ("_mb", "MB"), ("_gb", "GB"))  # metric-name suffix → unit
LEGEND_ENTRIES = 8  # further series are summarised as "+N more"


@dataclass(slots=True)
class Line:
    label: str
    times: FloatArray  # seconds since the run started
    values: FloatArray


@dataclass(slots=True)
class Panel:
    """One small chart: a metric group in one unit."""

    group: str
    unit: str
    lines: list[Line] = field(default_factory=list)

    @property
    def title(self) -> str:
        name = GROUP_TITLES.get(self.group, self.group)
        return f"{name} ({self.unit})" if self.unit else name


def split_name(metric_type: str) -> tuple[str, str, str]:
    """``"memory.process_rss_mb"`` → ``("memory", "MB", "process rss")``."""
    group, _, rest = metric_type.partition(".")
    unit = ""
    for suffix, name in UNITS:
        if rest.endswith(suffix):
            rest, unit = rest[: -len(suffix)], name
            break
    label = rest.replace(".", " ").replace("_", " ").strip() or "total"
    if label[0].isdigit():  # gpu.0.util_percent → "gpu 0 util"
        label = f"{group} {label}"
    return group, unit, label


def panels(series: Sequence[Mapping[str, Any]], run_start: float) -> list[Panel]:
    """Group ``GET runs/{id}/system-metrics`` series into panels (known groups first,
    percentages before absolute units); times become seconds since ``run_start``."""
    by_key: dict[tuple[str, str], Panel] = {}
    for s in series:
        group, unit, label = split_name(str(s["metric_type"]))
        devices = [d for d in s.get("devices") or [] if d]
        if devices and label == "total":
            label = devices[0]
        elif devices and not any(ch.isdigit() for ch in label):  # "core 0" names cpu0 already
            label = f"{label} [{devices[0]}]"
        panel = by_key.setdefault((group, unit), Panel(group, unit))
        panel.lines.append(Line(label, floats(s["times"]) - run_start, floats(s["values"])))

    def order(p: Panel) -> tuple[int, str, int, str]:
        known = GROUPS.index(p.group) if p.group in GROUPS else len(GROUPS)
        return known, p.group, 0 if p.unit == "%" else 1, p.unit

    out = sorted(by_key.values(), key=order)
    for p in out:
        p.lines.sort(key=lambda line: (line.label != "total", line.label))
    return out


def _legend(panel: Panel) -> str:
    items = [
        f'<span style="white-space:nowrap;margin-right:10px">'
        f'<span style="color:{PALETTE[i % len(PALETTE)]};font-weight:700">━</span> '
        f"{esc(line.label)}</span>"
        for i, line in enumerate(panel.lines[:LEGEND_ENTRIES])
    ]
    if len(panel.lines) > LEGEND_ENTRIES:
        items.append(f'<span class="wl-muted">+{len(panel.lines) - LEGEND_ENTRIES} more</span>')
    return (
        '<div style="font-size:11px;line-height:16px;color:var(--jp-ui-font-color1)">'
        f"{''.join(items)}</div>"
    )


SPARSE_SAMPLES = 3  # fewer samples than this in a line are drawn as dots too


def _x_ticks(panel: Panel) -> np.ndarray | None:
    times = [line.times for line in panel.lines if line.times.size]
    if not times:
        return None
    return nice_ticks(0.0, float(max(t.max() for t in times)))


def panel_widget(panel: Panel, height: str = "190px") -> W.VBox:
    """A titled compact chart of one panel."""
    xs, ys = bq.LinearScale(min=0.0), bq.LinearScale()  # seconds since the run started
    if panel.unit == "%":  # 0–100, or zoomed in when every value is small
        ys.min = 0.0
        top = max(
            (float(np.nanmax(line.values)) for line in panel.lines if line.values.size),
            default=100.0,
        )
        ys.max = 100.0 if top > 50 else max(top * 1.2, 1.0)
    else:  # a flat line (disk used, GB) gets distinct ticks around its value
        flat = padded_range([line.values for line in panel.lines])
        if flat is not None:
            ys.min, ys.max = flat
    marks = [
        bq.Lines(
            x=line.times,
            y=line.values,
            scales={"x": xs, "y": ys},
            colors=[PALETTE[i % len(PALETTE)]],
            # the first line wider: an identical later one (loopback "sent" on "recv")
            # is drawn inside it, and both stay visible
            stroke_width=3.5 if i == 0 and len(panel.lines) > 1 else 1.5,
            labels=[line.label],
            # a line needs two samples (a short run may have one): show the samples as dots
            **({"marker": "circle", "marker_size": 20} if line.times.size < SPARSE_SAMPLES else {}),
        )
        for i, line in enumerate(panel.lines)
    ]
    axes = [
        bq.Axis(
            scale=xs,
            label="seconds since start",
            grid_lines="solid",
            tick_format=X_TICK_FORMAT,
            label_offset="28px",
            tick_values=_x_ticks(panel),
        ),
        bq.Axis(
            scale=ys,
            orientation="vertical",
            tick_format=Y_TICK_FORMAT,
            grid_lines="solid",
        ),
    ]
    fig = bq.Figure(
        marks=marks,
        axes=axes,
        animation_duration=0,
        padding_x=0.0,
        padding_y=0.0 if panel.unit == "%" else 0.05,  # a line along 0 stays visible
        fig_margin={"top": 8, "bottom": 36, "left": 48, "right": 12},
        display_toolbar=False,
        layout=W.Layout(width="100%", height=height, min_width="0"),
    )
    title = W.HTML(
        f'<span class="wl-title" style="font-size:13px">{esc(panel.title)}</span>' + _legend(panel)
    )
    box = W.VBox(
        [title, fig],
        layout=W.Layout(
            border="1px solid var(--jp-border-color2)", padding="6px 6px 0 8px", min_width="0"
        ),
    )
    box.add_class("wl-system-panel")
    return box


EMPTY = (
    '<div class="wl-empty">No system metrics for this run (they are sampled while a run '
    "started with <code>wl.init()</code> is running).</div>"
)


def system_section(series: Sequence[Mapping[str, Any]], run_start: float) -> list[W.Widget]:
    """Title and a three-column grid of panels, or the empty state."""
    title = W.HTML('<span class="wl-title">System metrics</span>')
    if not series:
        return [title, W.HTML(EMPTY)]
    grid = W.GridBox(
        [panel_widget(p) for p in panels(series, run_start)],
        layout=W.Layout(
            grid_template_columns="repeat(auto-fill, minmax(min(100%, 300px), 1fr))",
            grid_gap="8px",
        ),
    )
    return [title, grid]
