"""The chart's HTML pieces: its stylesheet, status badges, title, legend and
empty state (names are escaped; colours and dash styles are ours)."""

from __future__ import annotations

import ipywidgets as W

from ._html import esc
from ._model import SeriesView

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
.wl-overview > summary { cursor: pointer; font-weight: 600; font-size: 13px; }
.wl-overview-grid { display: grid; gap: 4px 24px; margin-top: 4px;
                    grid-template-columns: repeat(auto-fit, minmax(min(100%, 260px), 1fr)); }
.wl-overview-table { border-collapse: collapse; font-size: 12px; width: 100%; }
.wl-overview-table td { padding: 1px 8px 1px 0; vertical-align: top; overflow-wrap: anywhere;
                        border-bottom: 1px solid var(--jp-border-color3, #eee); }
.wl-overview-table td:first-child { white-space: nowrap; width: 1%; }
</style>
"""
CSS_DASH = {"solid": "solid", "dashed": "dashed", "dotted": "dotted", "dash_dotted": "dashed"}


def badge(text: str, color: str, title: str = "") -> str:
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


def status_html(views: list[SeriesView], live: bool) -> str:
    """The badges beside the title: sampled point count, live or finished."""
    total = sum(v.total_points for v in views)
    drawn = sum(v.x.size for v in views)
    badges = []
    if any(v.sampled for v in views):
        badges.append(
            badge(
                f"sampled {drawn:,} of {total:,} pts",
                "#7f7f7f",
                "M4 downsampled by the server; zoom in for full resolution",
            )
        )
    if live:
        badges.append(badge("● live", "#1f77b4"))
    elif views:
        badges.append(badge("finished", "#2ca02c"))
    return "".join(badges)


def empty_html(metrics: list[str], waiting: bool) -> str:
    """The empty state shown instead of empty axes."""
    names = ", ".join(metrics) or "metrics"
    lead = "Waiting for the first point of" if waiting else "No data for"
    return (
        f'<div class="wl-empty"><b>{lead} {esc(names)}</b><br>'
        "Points appear here as soon as they are logged.</div>"
    )
