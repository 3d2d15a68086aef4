"""The run workspace (the seed's WorkspacePage) as a widget: header with the
run's overview, metric selector, main chart, one chart per metric, wall-time
chart, system metrics, then one section per media key (images, histograms, tables)."""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import ipywidgets as W

from .._http import Connection
from ._chart_html import CSS
from ._html import esc
from ._io_loop import IOLoop
from ._lifetime import ShownInCells, close_all, close_tree, owned_by_cell
from ._live import LiveHub
from ._media_sections import MediaSections
from ._model import ChartModel
from ._overview import overview_html
from ._runs import is_borrowed, run_id_of
from ._source import MetricSource, OfflineMetricSource, epoch_seconds, open_source, with_notice
from ._style import state_badge
from .chart import MetricChart
from .system import system_section

AUTO_REFRESH_SECONDS = 5.0
MAX_DEFAULT_METRICS = 8
FIRST_METRIC = """import wanllm_jupyter as wl
run = wl.init(project="my-project")
wl.log({"loss": 0.42})"""


def _pill(text: str) -> str:
    """A tag or branch pill in the theme's colours."""
    return (
        '<span style="background:var(--jp-layout-color2);color:var(--jp-ui-font-color1);'
        "border:1px solid var(--jp-border-color2);border-radius:9px;padding:1px 8px;"
        f'font-size:11px;margin-right:4px">{esc(text)}</span>'
    )


class Workspace(ShownInCells, W.VBox):
    """Everything about one run. Build it with :func:`workspace`."""

    def __init__(
        self,
        conn: Connection | None,
        run_id: str,
        *,
        live: bool = True,
        source: MetricSource | OfflineMetricSource | None = None,
        owns_connection: bool = False,
    ) -> None:
        """``conn`` None with an offline ``source``: the local data, not live.
        ``owns_connection``: close ``conn`` with the workspace."""
        self.conn, self.run_id, self.live = conn, run_id, live and conn is not None
        self._owns_connection = owns_connection
        self.source = source if source is not None else MetricSource(conn)  # type: ignore[arg-type]
        self.run = self.source.run(run_id)
        self.names = [m["name"] for m in self.source.metric_names(run_id)]
        self._lock = threading.Lock()
        self._timer: concurrent.futures.Future[None] | None = None
        self.header = W.HTML()
        self.selector = W.TagsInput(
            value=self.names[:MAX_DEFAULT_METRICS],
            allowed_tags=self.names,
            allow_duplicates=False,
            layout=W.Layout(flex="1"),
        )
        self.auto = W.ToggleButton(
            value=False,
            description="auto-refresh 5 s",
            icon="clock-o",
            layout=W.Layout(width="auto"),
        )
        self.refresh_button = W.Button(
            description="Refresh", icon="refresh", layout=W.Layout(width="auto")
        )
        self.body = W.VBox()
        self.charts: list[MetricChart] = []
        self.system = W.VBox()
        self.media = MediaSections(conn, run_id, live=self.live)
        self.selector.observe(lambda _: self._build_charts(), names="value")
        self.auto.observe(lambda c: self._auto(c["new"]), names="value")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__(
            [
                W.HTML(CSS),
                self.header,
                W.HBox(
                    [
                        W.HTML("<b>Metrics</b>", layout=W.Layout(width="60px")),
                        self.selector,
                        self.auto,
                        self.refresh_button,
                    ],
                    layout=W.Layout(align_items="center"),
                ),
                self.body,
                self.media,
            ],
            layout=W.Layout(gap="8px"),
        )
        self.add_class("wl-chart")
        self._draw_header()
        self._build_charts()
        if self.live and conn is not None and self.run.get("state") == "running":
            LiveHub.get().subscribe(conn, run_id, self)

    # ---------------------------------------------------------------- header
    def _draw_header(self) -> None:
        r = self.run
        git = r.get("git") or {}
        parts = [
            f'<span style="font-size:18px;font-weight:600;margin-right:10px">'
            f"{esc(r.get('name') or r['id'][:8])}</span>",
            state_badge(str(r.get("state"))),
            " ",
        ]
        if git.get("branch"):
            parts.append(_pill(f"⎇ {git['branch']}"))
        parts += [_pill(t) for t in r.get("tags") or []]
        meta = esc(f"{r.get('project')} · {r['id']} · created {r.get('created_at', '')}")
        notes = r.get("notes")
        notes_html = (
            f'<div class="wl-notes" style="white-space:pre-wrap;margin-top:4px">{esc(notes)}</div>'
            if notes
            else ""
        )
        self.header.value = (
            f'<div style="display:flex;align-items:center;flex-wrap:wrap">'
            f'{"".join(parts)}</div><div class="wl-muted" style="font-size:11px">'
            f"{meta}</div>{notes_html}{overview_html(r)}"
        )

    # ---------------------------------------------------------------- charts
    def _chart(
        self, metrics: list[str], *, height: str = "260px", compact: bool = False, **kwargs: Any
    ) -> MetricChart:
        model = ChartModel(self.source, [self.run_id], metrics, **kwargs)  # kernel-wide colours
        return MetricChart(self.conn, model, live=self.live, height=height, compact=compact)

    def _build_charts(self) -> None:
        for c in self.charts:
            c.close()
        close_all(w for w in self.body.children if w is not self.system)  # grid, empty states
        selected = list(self.selector.value)
        if not self.names:
            self.charts = []
            self.body.children = [
                W.HTML(
                    '<div class="wl-empty"><b>No metrics logged yet.</b> Log a first metric with:'
                    f'<pre style="text-align:left;display:inline-block;margin:8px auto">'
                    f"{esc(FIRST_METRIC)}</pre><br>It shows up here live.</div>"
                )
            ]
            return
        if not selected:
            self.charts = []
            self.body.children = [W.HTML('<div class="wl-empty">Select metrics above.</div>')]
            return
        main = self._chart(selected, height="380px")
        singles = [self._chart([m], compact=True) for m in selected]
        wall = self._chart(selected, x="wall_time", height="300px")
        main.title.value = "All selected metrics"
        wall.title.value = "Over wall-clock time"
        self.charts = [main, *singles, wall]
        grid = W.GridBox(
            singles,
            layout=W.Layout(
                grid_template_columns="repeat(auto-fit, minmax(min(100%, 340px), 1fr))",
                grid_gap="8px",
            ),
        )
        self._draw_system()
        self.body.children = [main, grid, wall, self.system]

    def _draw_system(self) -> None:
        start = epoch_seconds(self.run.get("created_at")) or 0.0
        old = self.system.children
        self.system.children = system_section(self.source.system_metrics(self.run_id), start)
        close_all(old)

    # ---------------------------------------------------------------- refresh
    def refresh(self) -> None:
        """Re-read the run, discover new metrics and re-query every chart."""
        self.run = self.source.run(self.run_id)
        self._draw_header()
        self.media.refresh()
        names = [m["name"] for m in self.source.metric_names(self.run_id)]
        if names != self.names:
            self._add_names(names)
        else:
            for c in self.charts:
                c.refresh()
            self._draw_system()

    def _add_names(self, names: list[str]) -> None:
        with self._lock:
            new = [n for n in names if n not in self.names]
            if not new:
                return
            had_none = not self.names
            self.names = self.names + new
        self.selector.allowed_tags = self.names
        if had_none or len(self.selector.value) < MAX_DEFAULT_METRICS:
            room = MAX_DEFAULT_METRICS - len(self.selector.value)
            self.selector.value = list(self.selector.value) + new[:room]  # rebuilds the charts

    def _auto(self, on: bool) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if on:

            def tick() -> None:
                self.refresh()
                self._auto(self.auto.value)

            self._timer = IOLoop.get().later(AUTO_REFRESH_SECONDS, tick)

    # ---------------------------------------------------------------- live
    # called on the I/O loop: building charts and re-reading the server go to its worker
    def on_points(self, run_id: str, points: dict[str, Any]) -> None:
        if any(n not in self.names for n in points):
            IOLoop.get().later(0, lambda: self._add_names(list(points)))

    def on_media(self, run_id: str, body: dict[str, Any]) -> None:
        if body.get("key") not in self.media.infos:  # a new key: a new section
            IOLoop.get().later(0, self.media.refresh)

    def on_run(self, run: dict[str, Any]) -> None:
        self.run = run
        self._draw_header()

    def on_gap(self, run_id: str) -> None:
        IOLoop.get().later(0, self.refresh)

    def close(self) -> None:
        """Stop live updates and auto-refresh and close every widget of the workspace."""
        if self.conn is not None:
            LiveHub.get().unsubscribe(self.conn, self.run_id, self)
        self._auto(False)
        for c in self.charts:
            c.close()
        close_tree(self)
        super().close()
        if self._owns_connection and self.conn is not None:
            self.conn.close()


def workspace(run: Any, *, live: bool = True, connection: Connection | None = None) -> Workspace:
    """The workspace of ``run`` (a ``Run``, run dict or run id)."""
    conn, source = open_source([run], connection)  # offline: local data, not live
    owns = conn is not None and not is_borrowed(conn, [run], connection)
    widget = Workspace(conn, run_id_of(run), live=live, source=source, owns_connection=owns)
    with_notice(widget, source)
    return owned_by_cell(widget)
