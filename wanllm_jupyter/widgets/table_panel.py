"""The table panel: a ``wl.Table`` logged under one key, in the run table's
virtualised widget (``js/widgets/run_table.ts`` in its ``data`` mode): sort by a
column header, filter (``text`` or ``column:text``), select rows and read them
back as ``panel.selected`` (a DataFrame with the logged dtypes). When the key
was logged at several steps a step picker chooses one; while the run logs it
follows the latest step unless another was picked.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as W
import traitlets

from .._http import API, Connection, encode_segment
from ..core.api.media import TableData
from ..core.errors import UsageError
from ._frontends import follow_frontend_subshell
from ._media_panel import MediaPanel, open_panel
from .run_table import STATIC

if TYPE_CHECKING:
    import pandas as pd

MAX_SHOWN_ROWS = 50_000  # rows sent to the browser; .frame / .selected have them all


class DataTable(anywidget.AnyWidget):
    """Rows of cells under ``columns``; ``selected_ids`` are row positions."""

    _esm = STATIC / "run_table.js"
    _css = STATIC / "run_table.css"

    mode = traitlets.Unicode("data").tag(sync=True)
    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)

    def show(self, columns: list[str], data: list[list[Any]]) -> None:
        """Replace the rows (the selection is cleared: it named the old rows)."""
        with self.hold_sync():
            self.selected_ids = []
            self.columns = list(columns)
            self.rows = [{"id": str(i), "cells": row} for i, row in enumerate(data)]


def step_label(step: int, rows: int) -> str:
    return f"step {step} · {rows:,} row{'s' if rows != 1 else ''}"


class TablePanel(MediaPanel):
    """A logged table of one run; build it with :func:`table_panel`."""

    KIND = "table"
    NOUN = "tables"

    def __init__(
        self, conn: Connection, run_ids: list[str], key: str, *, step: int | None = None, **kw: Any
    ) -> None:
        if len(run_ids) != 1:
            raise UsageError(f"a table panel shows one run's table, got {len(run_ids)} runs")
        self.data: TableData | None = None
        self._follow = step is None
        self._wanted = step
        self._setting = threading.local()  # set on the thread that changes the options
        self._frame: tuple[str, pd.DataFrame] | None = None  # (digest, the table shown)
        self._shown: str | None = None  # the digest of the rows in the widget
        self.table = DataTable()
        self.picker = W.Dropdown(options=[], description="step", layout=W.Layout(width="260px"))
        self.picker.observe(self._on_pick, names="value")
        self.note = W.HTML()
        follow_frontend_subshell(self.picker)  # picked while a cell runs (JupyterLab)
        follow_frontend_subshell(self.table)  # selections too
        super().__init__(
            conn, run_ids, key, parts=[W.HBox([self.picker, self.note]), self.table], **kw
        )

    @property
    def step(self) -> int | None:
        """The step shown (None before a table was logged)."""
        return self.data.step if self.data is not None else None

    @property
    def digest(self) -> str | None:
        """The content hash of the table shown."""
        data = self.data
        return next((s.digest for s in data.steps if s.step == data.step), None) if data else None

    @property
    def frame(self) -> pd.DataFrame:
        """The whole table shown, as logged (read as Arrow, with its dtypes)."""
        digest = self.digest
        if self.data is None or digest is None:
            raise UsageError(f"no table logged under {self.key!r} yet")
        if self._frame is None or self._frame[0] != digest:
            path = f"{API}runs/{self.run_ids[0]}/tables/{encode_segment(self.key)}"
            table = self.conn.get_arrow(path, step=self.data.step)
            self._frame = (digest, table.to_pandas())
        return self._frame[1]

    @property
    def selected(self) -> pd.DataFrame:
        """The selected rows, in the logged order, as a DataFrame (see :attr:`frame`)."""
        rows = sorted(int(i) for i in self.table.selected_ids)
        return self.frame.iloc[rows]

    def _on_pick(self, change: dict[str, Any]) -> None:
        if (
            getattr(self._setting, "on", False)
            or change["new"] is None
            or (self.data is not None and change["new"] == self.data.step)
        ):
            return
        self._wanted = int(change["new"])
        self._follow = self.data is not None and self._wanted == self.data.steps[-1].step
        self.refresh()

    # ------------------------------------------------------------ MediaPanel
    def load(self, since: dict[str, int] | None) -> None:
        if (
            since is not None
            and not since
            and self.data is not None
            and (self._follow or self.data.step == self._wanted)
        ):
            return  # nothing new
        step = None if self._follow else self._wanted
        self.data = self.absent_ok(self.source.table, self.run_ids[0], self.key, step)

    def draw(self) -> bool:
        data = self.data
        if data is None:
            return False
        options = [(step_label(s.step, s.rows), s.step) for s in data.steps]
        self._setting.on = True  # (options reset the value: not the user's pick)
        try:  # two messages: with both in one, the browser keeps showing the first option
            if list(self.picker.options) != options:
                self.picker.options = options
            self.picker.value = data.step
        finally:
            self._setting.on = False
        self.picker.layout.display = None if len(options) > 1 else "none"
        shown_rows = data.data[:MAX_SHOWN_ROWS]
        if self._shown != self.digest:
            self.table.show(data.columns, shown_rows)
            self._shown = self.digest
        cut = len(data.data) - len(shown_rows)
        self.note.value = (
            self.muted(
                f"showing the first {MAX_SHOWN_ROWS:,} rows; .frame has all {len(data.data):,}"
            )
            if cut > 0
            else ""
        )
        return True


def table_panel(
    run: Any,
    key: str,
    *,
    step: int | None = None,
    live: bool = True,
    connection: Connection | None = None,
) -> TablePanel | W.HTML:
    """The table logged under ``key`` by ``run`` (``wl.Table``), at ``step`` (None:
    the latest, following new steps while the run logs): sortable, filterable,
    ``panel.selected`` is the selected rows as a DataFrame."""
    return open_panel(TablePanel, run, key, live, connection, step=step)
