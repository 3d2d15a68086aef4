"""What the image, histogram and table panels share: the runs and the one media key
they show, the live subscription (the run's socket announces each new
``(key, kind, step)``, :class:`~wanllm_jupyter.core.api.live.MediaMessage`),
throttled redraws on the widgets' I/O loop, the title, status, empty state and
inline errors, and closing.

Subclasses implement :meth:`MediaPanel.load` (read from the server; ``since``
maps a run to the first step that changed, or is None for everything) and
:meth:`MediaPanel.draw` (put what was read into widgets). Both run on the I/O
loop's worker, one at a time; neither is ever called from a display, and any
error they raise is drawn in the panel instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import ipywidgets as W

from .._http import Connection
from .._media_source import MediaSource
from ..core.errors import NotFound
from ._chart_html import CSS, badge
from ._html import esc
from ._lifetime import ShownInCells, close_tree, owned_by_cell
from ._live import LiveHub, Redrawer
from ._runs import as_run_list, is_borrowed, run_id_of
from ._source import MetricSource, open_source
from ._style import MUTED

log = logging.getLogger(__name__)
T = TypeVar("T")
REDRAW_POINTS = 40_000  # a panel redraws at most 4 times a second (_live.redraw_interval)
PANEL_CSS = """
<style>
.wl-media .wl-tiles { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-start; }
.wl-media .wl-tile { border: 1px solid var(--jp-border-color2, #e0e0e0); border-radius: 4px;
                     padding: 4px; background: var(--jp-layout-color1, #fff); }
.wl-media .wl-tile img { image-rendering: pixelated; display: block; }
.wl-media .wl-caption { font-size: 11px; line-height: 14px; max-width: 160px;
                        overflow-wrap: anywhere; color: var(--jp-ui-font-color1, #222); }
.wl-media .wl-run-name { font-size: 12px; font-weight: 600; overflow-wrap: anywhere;
                         color: var(--jp-ui-font-color1, #222); }
.wl-media .wl-error { color: var(--jp-error-color1, #d32f2f); font-size: 12px;
                      white-space: pre-wrap; }
</style>
"""


def error_text(exc: BaseException) -> str:
    """One line saying what went wrong (a server error's own message)."""
    return f"{type(exc).__name__}: {exc}"


class MediaPanel(ShownInCells, W.VBox):
    """The live frame of one media ``key`` of ``run_ids``; see the module docstring."""

    KIND: ClassVar[str] = ""  # "image" | "histogram" | "table": the media kind shown
    NOUN: ClassVar[str] = ""  # for the empty state: "no <NOUN> logged under …"

    def __init__(
        self,
        conn: Connection,
        run_ids: list[str],
        key: str,
        *,
        live: bool = True,
        owns_connection: bool = False,
        source: MediaSource | None = None,
        parts: list[W.Widget] | None = None,
    ) -> None:
        """``parts``: the subclass's widgets, shown below the title while there is data."""
        self.conn, self.run_ids, self.key = conn, list(run_ids), key
        self.source = source or MediaSource(conn)
        self._owns_connection = owns_connection
        self._lock = threading.Lock()
        self._work_lock = threading.Lock()  # load + draw, one at a time
        self._since: dict[str, int] | None = None  # None: reload everything
        self._closed = False
        self.runs: dict[str, dict[str, Any]] = {}
        self.live_runs: set[str] = set()
        self.title = W.HTML(f'<span class="wl-title">{esc(key)}</span>')
        self.status = W.HTML()
        self.message = W.HTML()  # the empty state or an error, inline
        self.body = W.VBox(parts or [], layout=W.Layout(min_width="0"))
        super().__init__(
            [
                W.HTML(CSS + PANEL_CSS),
                W.HBox(
                    [self.title, self.status],
                    layout=W.Layout(align_items="center", justify_content="space-between"),
                ),
                self.message,
                self.body,
            ],
            layout=W.Layout(min_width="0", gap="4px"),
        )
        self.add_class("wl-chart")
        self.add_class("wl-media")
        self.add_class(f"wl-media-{self.KIND}")
        self._redrawer = Redrawer(self._work)
        try:
            self._read_runs(live)
        except Exception as exc:  # shown, never raised from a display; nothing more to read
            self.show_error(exc)
            self.body.layout.display = "none"
            return
        self._work()

    # ------------------------------------------------------------ subclasses
    def load(self, since: dict[str, int] | None) -> None:
        """Read what changed from the server (``since``: run id → first changed step)."""
        raise NotImplementedError

    def draw(self) -> bool:
        """Show what was read; False when there is nothing to show yet (empty state)."""
        raise NotImplementedError

    # ------------------------------------------------------------ shared
    def absent_ok(self, read: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """``read(*args, **kwargs)``, or None when the server has nothing under the key (404)."""
        try:
            return read(*args, **kwargs)
        except NotFound:
            return None

    def run_name(self, run_id: str) -> str:
        run = self.runs.get(run_id) or {}
        return str(run.get("name") or run_id[:8])

    def _read_runs(self, live: bool) -> None:
        meta = MetricSource(self.conn)
        readies = []
        for run_id in self.run_ids:
            run = meta.run(run_id)
            self.runs[run_id] = run
            if live and run.get("state") == "running":
                self.live_runs.add(run_id)
                readies.append(LiveHub.get().subscribe(self.conn, run_id, self))
        for ready in readies:  # media logged from now on is announced; the load gets the rest
            ready.wait(2.0)

    def refresh(self) -> None:
        """Re-read everything from the server now."""
        with self._lock:
            self._since = None
        self._redrawer.request()

    def show_error(self, exc: BaseException) -> None:
        log.debug("wanllm: media panel %r failed", self.key, exc_info=exc)
        self.message.value = f'<div class="wl-error">{esc(error_text(exc))}</div>'

    def _work(self) -> int:
        """Load what changed and redraw; paced like a chart of ``REDRAW_POINTS``."""
        with self._work_lock:
            with self._lock:
                if self._closed:
                    return 0
                since, self._since = self._since, {}
            try:
                self.load(since)
                shown = self.draw()
            except Exception as exc:
                with self._lock:
                    self._since = None  # read everything again next time
                self.show_error(exc)
                return REDRAW_POINTS
            self.message.value = "" if shown else self._empty_html()
            self.body.layout.display = None if shown else "none"
            self.status.value = badge("● live", "#1f77b4") if self.live_runs else ""
            return REDRAW_POINTS

    def _empty_html(self) -> str:
        waiting = " yet" if self.live_runs else ""
        hint = "<br>They appear here as soon as they are logged." if self.live_runs else ""
        return (
            f'<div class="wl-empty">No {self.NOUN} logged under <b>{esc(self.key)}</b>'
            f"{waiting}.{hint}</div>"
        )

    def muted(self, text: str) -> str:
        return f'<span style="color:{MUTED};font-size:11px">{esc(text)}</span>'

    # ------------------------------------------------------------ live (Listener)
    def on_media(self, run_id: str, body: dict[str, Any]) -> None:
        if body.get("key") != self.key or body.get("kind") != self.KIND:
            return
        step = body.get("step")
        with self._lock:
            if self._since is not None and isinstance(step, int):
                self._since[run_id] = min(self._since.get(run_id, step), step)
            else:
                self._since = None
        self._redrawer.request()

    def on_points(self, run_id: str, points: dict[str, Any]) -> None:
        pass

    def on_run(self, run: dict[str, Any]) -> None:
        run_id = str(run.get("id"))
        self.runs[run_id] = run
        if run.get("state") != "running" and run_id in self.live_runs:
            self.live_runs.discard(run_id)
            self._redrawer.request()  # the live badge goes

    def on_gap(self, run_id: str) -> None:
        self.refresh()

    def close(self) -> None:
        """Stop live updates and close every widget of the panel."""
        if not hasattr(self, "_redrawer"):  # construction failed: a plain widget's close
            super().close()
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for run_id in self.run_ids:
            LiveHub.get().unsubscribe(self.conn, run_id, self)
        self._redrawer.stop()
        close_tree(self)
        super().close()
        if self._owns_connection:
            self.conn.close()


def open_panel(
    panel: type[MediaPanel],
    runs: Any,
    key: str,
    live: bool,
    connection: Connection | None,
    **kwargs: Any,
) -> Any:
    """``panel`` for ``runs``' ``key`` on the server found like every widget's; a notice
    (never an exception) when there is none."""
    run_list = as_run_list(runs)
    conn, _ = open_source(run_list, connection)
    if conn is None:
        return W.HTML(
            f'<div class="wl-empty">wanllm: no server reachable — {esc(panel.NOUN)} under '
            f"<b>{esc(key)}</b> are read from a server (start one with "
            "<code>wanllm server</code>, or run <code>wanllm sync</code>)</div>"
        )
    widget = panel(
        conn,
        [run_id_of(r) for r in run_list],
        key,
        live=live,
        owns_connection=not is_borrowed(conn, run_list, connection),
        **kwargs,
    )
    return owned_by_cell(widget)
