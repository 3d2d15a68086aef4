"""Run comparison: runs overlaid, or grouped by a config key with a mean/median
line and a min–max, ±std or ±stderr band (docs/chart-math.md#cross-run-aggregation)."""

from __future__ import annotations

from typing import Any

import bqplot as bq
import ipywidgets as W
import numpy as np

from .._http import Connection
from ..core import smoothing as sm
from ..core.errors import NotFound, UsageError
from ._chart_html import CSS
from ._format import X_TICK_FORMAT, Y_TICK_FORMAT
from ._html import esc
from ._lifetime import ShownInCells, close_all, close_tree, owned_by_cell
from ._runs import as_run_list, is_borrowed, run_id_of
from ._source import Source, open_source, with_notice
from ._style import PALETTE
from .chart import MetricChart, chart

AGGS = ("mean", "median")
BANDS = ("minmax", "std", "stderr")
BAND_LABELS = {"minmax": "min–max", "std": "±1 std", "stderr": "±1 stderr"}
MISSING = object()


def config_value(config: dict[str, Any], key: str) -> Any:
    """``config[key]``, following dots into nested dicts (``optimizer.lr``)."""
    if key in config:
        return config[key]
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return MISSING
        node = node[part]
    return node


class Comparison(ShownInCells, W.VBox):
    """Grouped comparison of one metric. Build it with :func:`compare`."""

    def __init__(
        self,
        source: Source,
        run_ids: list[str],
        metric: str,
        group_by: str,
        *,
        agg: str = "mean",
        band: str = "minmax",
        buckets: int = 200,
    ) -> None:
        if agg not in AGGS:
            raise UsageError(f"agg must be one of {AGGS}, got {agg!r}")
        if band not in BANDS:
            raise UsageError(f"band must be one of {BANDS}, got {band!r}")
        self.source, self.metric, self.group_by, self.buckets = source, metric, group_by, buckets
        self.groups: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for rid in run_ids:
            run = source.run(rid)
            value = config_value(run.get("config") or {}, group_by)
            label = f"{group_by}={'(unset)' if value is MISSING else value}"
            try:
                s = source.series(rid, metric)
            except NotFound:  # this run never logged the metric
                continue
            self.groups.setdefault(label, []).append((s.steps.astype(float), s.values))
        self.agg = W.Dropdown(
            options=AGGS,
            value=agg,
            description="line",
            layout=W.Layout(width="160px"),
            style={"description_width": "32px"},
        )
        self.band = W.Dropdown(
            options=[(BAND_LABELS[b], b) for b in BANDS],
            value=band,
            description="band",
            layout=W.Layout(width="170px"),
            style={"description_width": "36px"},
        )
        self.figure = bq.Figure(
            animation_duration=0,
            legend_location="top-right",
            display_toolbar=False,
            fig_margin={"top": 16, "bottom": 42, "left": 64, "right": 16},
            legend_style={"fill": "var(--jp-layout-color1)", "stroke": "var(--jp-border-color1)"},
            legend_text={"fill": "var(--jp-ui-font-color1)", "font-size": "12px"},
            layout=W.Layout(width="100%", height="380px", min_width="0"),
        )
        self.agg.observe(lambda _: self._draw(), names="value")
        self.band.observe(lambda _: self._draw(), names="value")
        title = W.HTML(
            f'<span class="wl-title">{esc(metric)} by {esc(group_by)}'
            f'</span> <span class="wl-muted">({len(run_ids)} runs, '
            f"{len(self.groups)} groups)</span>"
        )
        super().__init__([W.HTML(CSS), title, W.HBox([self.agg, self.band]), self.figure])
        self.add_class("wl-chart")
        self._draw()

    def close(self) -> None:
        """Close the comparison and every widget in it."""
        close_tree(self)
        super().close()

    def aggregates(self) -> dict[str, sm.Aggregate]:
        """Per group label, the aggregate line, band and n per bucket."""
        return {
            label: sm.aggregate(
                runs, line=self.agg.value, band=self.band.value, buckets=self.buckets
            )
            for label, runs in sorted(self.groups.items())
        }

    def to_dataframe(self) -> Any:
        import pandas as pd

        frames = [
            pd.DataFrame(
                {
                    "group": label,
                    "step": a.x,
                    "line": a.line,
                    "lower": a.lower,
                    "upper": a.upper,
                    "n": a.n,
                }
            )
            for label, a in self.aggregates().items()
        ]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def _draw(self) -> None:
        xs, ys = bq.LinearScale(), bq.LinearScale()
        scales = {"x": xs, "y": ys}
        tooltip = bq.Tooltip(fields=["name", "y"], labels=["", self.agg.value], formats=["", ".6g"])
        bands, lines, hovers = [], [], []
        for i, (label, a) in enumerate(self.aggregates().items()):
            color = PALETTE[i % len(PALETTE)]
            n_runs = len(self.groups[label])
            bands.append(
                bq.Lines(
                    x=[a.x, a.x],
                    y=[a.lower, a.upper],
                    scales=scales,
                    fill="between",
                    fill_colors=[color],
                    fill_opacities=[0.18],
                    colors=[color],
                    opacities=[0, 0],
                )
            )
            lines.append(
                bq.Lines(
                    x=a.x,
                    y=a.line,
                    scales=scales,
                    colors=[color],
                    stroke_width=2,
                    labels=[f"{label} (n={n_runs})"],
                    display_legend=True,
                )
            )
            hovers.append(
                bq.Scatter(
                    x=a.x,
                    y=a.line,
                    scales=scales,
                    colors=["rgba(0,0,0,0)"],
                    stroke="rgba(0,0,0,0)",
                    default_size=24,
                    names=[
                        f"{label} — step {int(x)} (n={n})"
                        for x, n in zip(a.x.tolist(), a.n.tolist(), strict=False)
                    ],
                    display_names=False,
                    tooltip=tooltip,
                )
            )
        old = [*self.figure.marks, *self.figure.axes]
        with self.figure.hold_sync():
            self.figure.marks = bands + lines + hovers
            self.figure.axes = [
                bq.Axis(scale=xs, label="step", grid_lines="solid", tick_format=X_TICK_FORMAT),
                bq.Axis(
                    scale=ys,
                    orientation="vertical",
                    tick_format=Y_TICK_FORMAT,
                    label=self.metric,
                    grid_lines="solid",
                    label_offset="48px",
                ),
            ]
            # no pan/zoom interaction: the wheel scrolls the page and the hover tooltips
            # of the points are not covered by the interaction's event rectangle
        close_all(old)  # the replaced marks, axes and scales


def compare(
    runs: Any,
    metric: str,
    group_by: str | None = None,
    *,
    agg: str = "mean",
    band: str = "minmax",
    connection: Connection | None = None,
    **chart_kwargs: Any,
) -> MetricChart | Comparison:
    """Compare ``metric`` across ``runs``: overlaid (a live :func:`chart`), or,
    with ``group_by`` (a config key, dots for nesting), one ``agg`` line
    (mean|median) and ``band`` (minmax|std|stderr) per group value."""
    run_list = as_run_list(runs)
    if not run_list:
        raise UsageError("compare needs at least one run")
    if group_by is None:
        return chart(run_list, [metric], connection=connection, **chart_kwargs)
    conn, source = open_source(run_list, connection)  # offline: local data
    comparison = Comparison(
        source, [run_id_of(r) for r in run_list], metric, group_by, agg=agg, band=band
    )
    if conn is not None and not is_borrowed(conn, run_list, connection):
        conn.close()  # every point was read: the comparison is not live
    with_notice(comparison, source)
    return owned_by_cell(comparison)
