"""The pandas query API: ``wl.Api()``.

api = wl.Api()                         # the server found by discovery, else local spools
api.runs("mnist", filters=["config.lr>=0.01"], order="summary.loss")
run = api.run(run_id)
run.history()                          # every point, wide: step, time, one column per metric
run.history(samples=1000)              # M4-downsampled; df.attrs["sampled"] says so
api.histories([id1, id2], ["loss"])    # many runs, one request
run.media("samples"), run.histograms("gradients/fc.weight"), run.table("preds")
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from ._discovery import find_connection
from ._frames import LONG_SCHEMA, long_frame, runs_frame, wide_frame, wide_frames, with_x
from ._http import Connection
from ._sources import OfflineSource, ServerSource, Source, parse_run_id
from ._spool import default_root
from ._wire import decode_values
from .core.arrow import TIMESTAMP
from .core.errors import NotFound, UsageError
from .core.run_filters import select_runs

Filters = str | Iterable[str] | Mapping[str, Any] | None


def _filter_params(filters: Filters) -> list[str]:
    if filters is None:
        return []
    if isinstance(filters, str):
        return [filters]
    if isinstance(filters, Mapping):  # values as JSON: "1" stays a string, True a boolean
        return [f"{k}={orjson.dumps(v).decode()}" for k, v in filters.items()]
    out = list(filters)
    for i, f in enumerate(out):
        if not isinstance(f, str):
            raise UsageError(f"filters[{i}] must be a string like 'config.lr>=0.01', got {f!r}")
    return out


def typed_ids(runs: Iterable[Any]) -> dict[str, str]:
    """Run ids (UUID strings, in order, once each) → what the user typed for them."""
    out: dict[str, str] = {}
    for r in runs:
        typed = getattr(r, "id", r)
        out.setdefault(parse_run_id(r), str(typed))
    return out


@contextmanager
def named_as_typed(ids: Mapping[str, str]) -> Iterator[None]:
    """A 404 for a run names the id as the user typed it (``'does-not-exist'``), with
    the UUID it stands for, rather than only that UUID."""
    try:
        yield
    except NotFound as e:
        message = str(e)
        for rid, typed in ids.items():
            if rid in message:
                also = "" if typed.lower() == rid else f" (stored as {rid})"
                err = NotFound(e.status, f"run {typed!r} not found{also}", e.errors)
                err.args = (err.message,)
                raise err from None
        raise


class Api:
    """Query runs and their metrics as pandas DataFrames.

    With ``url``/``connection`` (or a server found by discovery) it reads from the
    server; with none, or ``offline=True``, from the local spools under ``dir``.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        connection: Connection | None = None,
        dir: str | os.PathLike[str] | None = None,
        offline: bool = False,
    ) -> None:
        if connection is None and url is not None:
            connection = Connection(url, token or "")
        if connection is None and not offline:
            connection = find_connection()
        self.connection = None if offline else connection
        self._src: Source = (
            ServerSource(self.connection)
            if self.connection is not None
            else OfflineSource(default_root(dir))
        )

    @property
    def offline(self) -> bool:
        return self.connection is None

    def __repr__(self) -> str:
        where = self.connection.base_url if self.connection else f"offline {self._src.root}"  # type: ignore[attr-defined]
        return f"<wanllm Api {where}>"

    # ------------------------------------------------------------- runs
    def projects(self) -> pd.DataFrame:
        """One row per project: name, run_count, running, last_created_at."""
        df = pd.DataFrame(
            self._src.projects(), columns=["name", "run_count", "running", "last_created_at"]
        )
        df["last_created_at"] = pd.to_datetime(df["last_created_at"], utc=True, format="ISO8601")
        return df

    def runs(
        self,
        project: str | None = None,
        filters: Filters = None,
        order: str = "-created_at",
        *,
        state: str | Iterable[str] | None = None,
        tags: Iterable[str] | None = None,
        search: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """One row per run with ``config.*`` and ``summary.*`` columns.

        ``filters``: a query of the sidebar's language (``"state:finished tag:cli OR
        config.lr>=0.01"``, docs/filters.md), a list of them (all must hold), or a dict
        of equalities; ``order``: a field, ``-`` for descending (``"summary.loss"``).
        Offline (local spools) the same filters, search and order apply.
        """
        where: dict[str, Any] = {
            "project": project,
            "state": [state] if isinstance(state, str) else (list(state) if state else None),
            "tag": list(tags) if tags else None,
        }
        where = {k: v for k, v in where.items() if v is not None}
        if self.offline:
            rows = select_runs(self._src.runs(where), _filter_params(filters), search, order, limit)
            return runs_frame(rows)
        params = {
            "filter": _filter_params(filters) or None,
            "sort": order,
            "search": search,
            "limit": limit,
        }
        return runs_frame(self._src.runs(where | {k: v for k, v in params.items() if v}))

    def run(self, run_id: Any) -> ApiRun:
        """A handle on one run (its id, or the string given to ``init(id=...)``)."""
        ids = typed_ids([run_id])
        with named_as_typed(ids):
            return ApiRun(self, self._src.run(next(iter(ids))))

    # ------------------------------------------------------------- points
    def histories(
        self,
        runs: Any,
        keys: Iterable[str] | None = None,
        *,
        long: bool = False,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> pd.DataFrame:
        """Every point of ``keys`` (all metrics when None) of many runs in one request.

        ``runs``: ids, ``Run``/``ApiRun`` objects, or a runs DataFrame (its ``id`` column).
        Wide (``run_id, step, time, <metric>...``) or, with ``long=True``,
        ``run_id, metric, step, time, value``.
        """
        if isinstance(runs, pd.DataFrame):
            runs = runs["id"].tolist()
        elif isinstance(runs, (str, bytes)) or not isinstance(runs, Iterable):
            runs = [runs]
        typed = typed_ids(runs)
        names = list(keys) if keys is not None else None
        with named_as_typed(typed):
            table = self._src.history(list(typed), names, start_step, end_step)
        return long_frame(table) if long else wide_frames(table, names)


class ApiRun:
    """A stored run: attributes of the ``Run`` JSON plus history queries."""

    def __init__(self, api: Api, data: dict[str, Any]) -> None:
        self._api, self._src = api, api._src
        self.data = data
        self.id: str = data["id"]
        self.name: str = data.get("name") or self.id[:8]
        self.project: str = data.get("project", "")
        self.state: str = data.get("state", "")
        self.config: dict[str, Any] = data.get("config") or {}
        self.summary: dict[str, Any] = data.get("summary") or {}
        self.tags: list[str] = data.get("tags") or []
        self.notes: str = data.get("notes") or ""

    def __repr__(self) -> str:
        return f"<wanllm ApiRun {self.name!r} id={self.id} state={self.state}>"

    def metric_names(self) -> list[str]:
        """The names of the metrics this run has logged."""
        return [m["name"] for m in self._src.metric_names(self.id)]

    def history(
        self,
        keys: Iterable[str] | None = None,
        x: str = "step",
        samples: int | None = None,
        *,
        long: bool = False,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> pd.DataFrame:
        """Points of ``keys`` (all metrics when None) as a DataFrame.

        Every point by default. ``samples=N`` asks the server for its M4-downsampled
        form (≤ ~4N points per metric, extrema kept); ``df.attrs["sampled"]`` then
        says whether anything was left out. Wide form: ``step``, ``time``, one column
        per metric, rows ordered by ``x`` (``"step"``, ``"time"`` or a metric such as
        ``"epoch"``); ``long=True``: ``metric, step, time, value``.
        """
        names = list(keys) if keys is not None else None
        attrs: dict[str, Any] = {"run_id": self.id, "sampled": False}
        if samples is None:
            table = self._src.history([self.id], names, start_step, end_step)
        else:
            table, attrs = self._sampled(names, samples, start_step, end_step)
        df = long_frame(table, with_run=False) if long else with_x(wide_frame(table, names), x)
        df.attrs.update(attrs)
        return df

    def _sampled(
        self, names: list[str] | None, samples: int, start_step: int | None, end_step: int | None
    ) -> tuple[pa.Table, dict[str, Any]]:
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise UsageError(f"samples must be a positive integer, got {samples!r}")
        names = names if names is not None else self.metric_names()
        parts, sampled, totals = [], [], {}
        for name in names:
            s = self._src.sampled(self.id, name, samples, start_step, end_step)
            n = len(s["steps"])
            totals[name] = int(s.get("total_points", n))
            if s.get("sampled"):
                sampled.append(name)
            parts.append(
                pa.table(
                    {
                        "run_id": [self.id] * n,
                        "metric_name": [name] * n,
                        "step": pa.array(np.asarray(s["steps"], dtype=np.int64)),
                        "time": pa.array(
                            np.round(np.asarray(s["times"], dtype=np.float64) * 1e6).astype(
                                np.int64
                            ),
                            TIMESTAMP,
                        ),
                        "value": pa.array(decode_values(s["values"])),
                    },
                    schema=LONG_SCHEMA,
                )
            )
        table = pa.concat_tables(parts) if parts else LONG_SCHEMA.empty_table()
        return table, {
            "run_id": self.id,
            "sampled": bool(sampled),
            "samples": samples,
            "sampled_metrics": sampled,
            "total_points": totals,
        }

    def scan_history(
        self, keys: Iterable[str] | None = None, page_size: int = 100_000
    ) -> Iterator[dict[str, Any]]:
        """Every row (``{"_step", "_timestamp", <metric>: value}``), fetched in pages of
        about ``page_size`` points by step range, so memory stays bounded."""
        infos = self._src.metric_names(self.id)
        names = list(keys) if keys is not None else [m["name"] for m in infos]
        if not infos or not names:
            return
        last = max(int(m["last_step"]) for m in infos)
        width = max(1, page_size // max(len(names), 1))
        for lo in range(0, last + 1, width):  # the first page also holds any negative steps
            table = self._src.history([self.id], names, lo if lo else None, lo + width - 1)
            if table.num_rows == 0:
                continue
            df = wide_frame(table, names)
            times = df["time"].astype("int64").to_numpy() / 1e6
            values = df[names].to_numpy()
            for i, step in enumerate(df["step"].tolist()):
                row: dict[str, Any] = {"_step": step, "_timestamp": float(times[i])}
                for j, name in enumerate(names):
                    v = values[i, j]
                    if v == v:
                        row[name] = float(v)
                yield row

    # ------------------------------------------------------------- media
    def media_keys(self) -> pd.DataFrame:
        """The run's media keys: ``key, kind, steps, first_step, last_step, last_time``."""
        from . import _media_read

        return _media_read.media_keys(self._api, self.id)

    def media(
        self, key: str, *, start_step: int | None = None, end_step: int | None = None
    ) -> pd.DataFrame:
        """Images logged under ``key``: ``step, index`` (place in the list logged at
        that step), ``time, caption, width, height, digest`` and ``image``, whose
        ``to_numpy()`` / ``to_pil()`` fetch the PNG on first use."""
        from . import _media_read

        return _media_read.images(self._api, self.id, key, start_step, end_step)

    def histograms(
        self,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int | None = None,
    ) -> pd.DataFrame:
        """Histograms logged under ``key``: ``step, time, edges, counts`` (arrays),
        every step of the range; with ``max_steps`` at most that many, evenly chosen
        by the server (``df.attrs["steps"]`` says how many there are)."""
        from . import _media_read

        return _media_read.histograms(self._api, self.id, key, start_step, end_step, max_steps)

    def table(self, key: str, step: int | None = None) -> pd.DataFrame:
        """The ``wl.Table`` logged under ``key`` at ``step`` (the latest when None)."""
        from . import _media_read

        return _media_read.table(self._api, self.id, key, step)

    # ------------------------------------------------------------- media panels
    def images(self, key: str, **kwargs: Any) -> Any:
        """The image panel of ``key`` (``wanllm_jupyter.widgets.images``)."""
        from .widgets import images

        return images(self.id, key, connection=self._api.connection, **kwargs)

    def distributions(self, key: str, **kwargs: Any) -> Any:
        """The histogram panel of ``key`` (``wanllm_jupyter.widgets.distributions``)."""
        from .widgets import distributions

        return distributions(self.id, key, connection=self._api.connection, **kwargs)

    def table_panel(self, key: str, **kwargs: Any) -> Any:
        """The table panel of ``key`` (``wanllm_jupyter.widgets.table_panel``)."""
        from .widgets import table_panel

        return table_panel(self.id, key, connection=self._api.connection, **kwargs)

    def system_metrics(
        self, types: Iterable[str] | None = None, *, long: bool = False
    ) -> pd.DataFrame:
        """System metrics: wide (``time`` + one column per metric type) or, with
        ``long=True``, ``metric_type, time, value, device, node``."""
        table = self._src.system(self.id, list(types) if types else None)
        df = table.to_pandas()
        if long or df.empty:
            return df
        wide = df.pivot_table(index="time", columns="metric_type", values="value", aggfunc="mean")
        wide.columns.name = None
        return wide.reset_index()
