"""The run table: a sortable, filterable, virtualised anywidget of runs.

``run_table(project)`` loads the project's runs from the server and keeps their
states live through the ``wanllm/ws/runs`` WebSocket (no polling). Rows picked
in the browser come back as ``table.selected_ids`` and ``table.selected`` (a
pandas DataFrame). The browser half is ``js/widgets/run_table.ts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets
from tornado.websocket import WebSocketClientConnection

from .._http import Connection
from ..core.errors import UsageError
from ..core.run_filters import parse_query, query_test
from ._io_loop import IOLoop
from ._lifetime import ShownInCells, owned_by_cell
from ._messages import Kind, LiveMessage
from ._runs import is_borrowed
from ._socket import follow
from ._source import OFFLINE_NOTICE, OfflineMetricSource, open_source

if TYPE_CHECKING:
    import pandas as pd

STATIC = Path(__file__).resolve().parent.parent / "static"
ROW_FIELDS = (
    "id",
    "project",
    "name",
    "state",
    "tags",
    "notes",
    "host",
    "exit_code",
    "config",
    "summary",
    "created_at",
    "updated_at",
    "heartbeat_at",
    "finished_at",
)
PAGE_LIMIT = 1000


def as_row(run: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a run dict (REST ``Run`` shape) that the table shows."""
    if "id" not in run:
        raise UsageError(f"a run row needs an 'id', got keys {sorted(run)}")
    row = {key: run.get(key) for key in ROW_FIELDS}
    row["id"] = str(row["id"])
    row["tags"] = list(row["tags"] or [])
    row["config"] = dict(row["config"] or {})
    row["summary"] = dict(row["summary"] or {})
    return row


def runs_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One DataFrame row per run: id, project, name, state, times (UTC), duration [s],
    tags, and flattened ``config.*`` / ``summary.*`` columns."""
    import pandas as pd

    rows = list(rows)
    created: list[Any] = [r.get("created_at") for r in rows]  # ISO text or None (NaT)
    finished: list[Any] = [r.get("finished_at") for r in rows]
    base = pd.DataFrame(
        {
            "id": [r["id"] for r in rows],
            "project": [r.get("project") for r in rows],
            "name": [r.get("name") for r in rows],
            "state": [r.get("state") for r in rows],
            "created_at": pd.to_datetime(created, utc=True),
            "finished_at": pd.to_datetime(finished, utc=True),
            "tags": [list(r.get("tags") or []) for r in rows],
        }
    )
    base["duration"] = (base["finished_at"] - base["created_at"]).dt.total_seconds()
    nested = pd.json_normalize(
        [{"config": r.get("config") or {}, "summary": r.get("summary") or {}} for r in rows],
        sep=".",
    )
    nested = nested.drop(columns=[c for c in ("config", "summary") if c in nested.columns])
    return pd.concat([base, nested.reindex(base.index)], axis=1)


class RunTable(ShownInCells, anywidget.AnyWidget):
    """Runs as a table in the notebook; select rows in the browser, read ``.selected``."""

    _esm = STATIC / "run_table.js"
    _css = STATIC / "run_table.css"

    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    columns = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected_ids = traitlets.List(traitlets.Unicode()).tag(sync=True)
    project = traitlets.Unicode(None, allow_none=True).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)  # the filter box (docs/filters.md)

    def __init__(
        self,
        runs: Iterable[Mapping[str, Any]] = (),
        *,
        columns: Iterable[str] = (),
        project: str | None = None,
        connection: Connection | None = None,
        query: str = "",
        owns_connection: bool = False,
        **kwargs: Any,
    ) -> None:
        """``owns_connection``: close ``connection`` with the table."""
        super().__init__(
            rows=[as_row(r) for r in runs],
            columns=list(columns),
            project=project,
            query=query,
            **kwargs,
        )
        self.connection = connection
        self._owns_connection = owns_connection
        self._feed: _RunFeed | None = None

    @traitlets.validate("columns")
    def _check_columns(self, proposal: dict[str, Any]) -> list[str]:
        for column in proposal["value"]:
            if not column.startswith(("config.", "summary.")) or len(column.split(".", 1)[1]) == 0:
                raise UsageError(f"column {column!r} must be 'config.<key>' or 'summary.<key>'")
        return list(proposal["value"])

    @traitlets.validate("query")
    def _check_query(self, proposal: dict[str, Any]) -> str:
        parse_query(proposal["value"])  # a UsageError naming the bad piece
        return str(proposal["value"])

    @property
    def shown(self) -> pd.DataFrame:
        """The runs ``query`` selects (the rows the filter box shows), as a DataFrame."""
        test = query_test(parse_query(self.query))
        return runs_frame(r for r in self.rows if test(r))

    @property
    def selected(self) -> pd.DataFrame:
        """The selected runs as a DataFrame (see :func:`runs_frame`), in table order."""
        chosen = set(self.selected_ids)
        return runs_frame(r for r in self.rows if r["id"] in chosen)

    def refresh(self) -> None:
        """Reload every run of ``project`` from the server."""
        if self.connection is None:
            raise UsageError("this table has no connection to refresh from; use update_runs()")
        self.rows = [as_row(r) for r in _load_runs(self.connection, self.project)]
        present = {r["id"] for r in self.rows}
        self.selected_ids = [i for i in self.selected_ids if i in present]

    def update_runs(self, runs: Iterable[Mapping[str, Any]]) -> None:
        """Insert or replace runs by id (new runs go first, as the newest)."""
        updates = {row["id"]: row for row in map(as_row, runs)}
        if not updates:
            return
        rows = [updates.pop(r["id"], r) for r in self.rows]
        self.rows = [*updates.values(), *rows]

    def remove_runs(self, run_ids: Iterable[str]) -> None:
        """Drop runs (e.g. deleted ones) and their selection."""
        gone = set(run_ids)
        self.rows = [r for r in self.rows if r["id"] not in gone]
        self.selected_ids = [i for i in self.selected_ids if i not in gone]

    def watch(self) -> None:
        """Keep run states live from the server's ``wanllm/ws/runs`` socket."""
        if self.connection is None:
            raise UsageError("this table has no connection to watch")
        if self._feed is None:
            self._feed = _RunFeed(self)

    def close(self) -> None:
        """Stop the live feed and close the table."""
        if self._feed is not None:
            self._feed.stop()
            self._feed = None
        super().close()
        if self._owns_connection and self.connection is not None:
            self.connection.close()


def _load_runs(conn: Connection, project: str | None) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = conn.get_json(
            "wanllm/api/v1/runs",
            project=project,
            sort="-created_at",
            limit=PAGE_LIMIT,
            cursor=cursor,
        )
        runs.extend(page["runs"])
        cursor = page.get("next_cursor")
        if not cursor:
            return runs


class _RunFeed:
    """Applies ``wanllm/ws/runs`` messages to a table, on the widgets' I/O loop
    (:mod:`._io_loop`); reloads the table after a gap or a reconnect."""

    def __init__(self, table: RunTable) -> None:
        self.table = table
        self.io = IOLoop.get()
        self.task = self.io.spawn(self._listen())

    def stop(self) -> None:
        self.task.cancel()

    async def _listen(self) -> None:
        async def session(ws: WebSocketClientConnection, reconnected: bool) -> bool:
            if reconnected:
                await self.io.blocking(self.table.refresh)  # messages may have been missed
            while (raw := await ws.read_message()) is not None:
                await self.io.blocking(self._apply, LiveMessage.parse(raw))
            return False

        assert self.table.connection is not None
        await follow(self.table.connection, "wanllm/ws/runs", "run table's live socket", session)

    def _apply(self, msg: LiveMessage) -> None:
        if msg.kind is Kind.GAP:
            self.table.refresh()
        elif (
            msg.kind is Kind.RUN
            and msg.run
            and (self.table.project is None or msg.run.get("project") == self.table.project)
        ):
            self.table.update_runs([msg.run])


def run_table(
    project: str | None = None,
    *,
    columns: Iterable[str] = (),
    query: str = "",
    connection: Connection | None = None,
    live: bool = True,
) -> RunTable:
    """A table of the runs of ``project`` (all projects when None), kept live unless ``live=False``.

    ``columns``: ``config.<key>`` / ``summary.<key>`` columns (also pickable in the
    table); by default the config keys that vary across the runs and the numeric
    summaries. ``query`` fills the filter box (``"state:finished tag:best OR
    config.lr>=0.01"``, docs/filters.md; ``table.shown`` is what it selects). The server
    is found like everywhere else (``wl.login`` or the Jupyter server the kernel runs
    under) unless ``connection`` is given.
    """
    conn, source = open_source([], connection)
    if isinstance(source, OfflineMetricSource):  # no server: the local runs, not live
        print(OFFLINE_NOTICE.format(root=source.root))
        rows = source.offline.runs({"project": project} if project else {})
        return owned_by_cell(RunTable(rows, columns=columns, project=project, query=query))
    assert conn is not None  # a server source has a connection
    table = RunTable(
        _load_runs(conn, project),
        columns=columns,
        project=project,
        connection=conn,
        query=query,
        owns_connection=not is_borrowed(conn, [], connection),
    )
    if live:
        table.watch()
    return owned_by_cell(table)


runs = run_table
