"""Where the query API reads from: the server (REST + Arrow) or local spools (offline).

Both sources answer the same questions with plain dicts and Arrow tables in the
shapes of docs/api.md, so :mod:`.api` has one code path.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from . import _offline_runs as offline_runs
from ._frames import LONG_SCHEMA
from ._http import API, Connection, encode_segment
from ._spool import PENDING, SYNCED, read_timed_ops
from ._wire import ColumnarBatch, decode_columnar, decode_float
from .core.arrow import SYSTEM_SCHEMA, TIMESTAMP, dictionary_array, numpy_array
from .core.errors import NotFound

PAGE = 1000


@dataclass(frozen=True)
class Points:
    """Points as columns: run and metric codes (``metric`` indexes ``names``)."""

    run: np.ndarray
    metric: np.ndarray
    step: np.ndarray
    time: np.ndarray  # µs since the epoch
    value: np.ndarray
    names: list[str]


def _point_order(
    run: np.ndarray, metric: np.ndarray, step: np.ndarray, time: np.ndarray
) -> np.ndarray:
    """Indices ordering points by run, metric, step and time. Points come logged in
    step order, so a stable sort by series usually settles it."""
    order = np.argsort(run.astype(np.int64) << 32 | metric, kind="stable")
    s, t, g = step[order], time[order], (run[order].astype(np.int64) << 32) | metric[order]
    same = g[1:] == g[:-1]
    if np.all(~same | (s[1:] > s[:-1]) | ((s[1:] == s[:-1]) & (t[1:] >= t[:-1]))):
        return order
    return np.lexsort((time, step, metric, run))


class Source(Protocol):
    def projects(self) -> list[dict[str, Any]]: ...
    def runs(self, params: dict[str, Any]) -> list[dict[str, Any]]: ...
    def run(self, run_id: str) -> dict[str, Any]: ...
    def metric_names(self, run_id: str) -> list[dict[str, Any]]: ...
    def history(
        self,
        run_ids: list[str],
        names: list[str] | None,
        start_step: int | None,
        end_step: int | None,
    ) -> pa.Table: ...
    def sampled(
        self, run_id: str, name: str, samples: int, start_step: int | None, end_step: int | None
    ) -> dict[str, Any]: ...
    def system(self, run_id: str, types: list[str] | None) -> pa.Table: ...


class ServerSource:
    """Reads through the REST API; large results come as Arrow IPC."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def projects(self) -> list[dict[str, Any]]:
        return self.conn.get_json(API + "projects")["projects"]

    def runs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        limit = params.pop("limit", None)
        cursor = None
        while True:
            page = self.conn.get_json(
                API + "runs",
                **params,
                cursor=cursor,
                limit=min(PAGE, limit - len(out)) if limit else PAGE,
            )
            out.extend(page["runs"])
            cursor = page.get("next_cursor")
            if not cursor or (limit and len(out) >= limit):
                return out

    def run(self, run_id: str) -> dict[str, Any]:
        return self.conn.get_json(f"{API}runs/{run_id}")

    def metric_names(self, run_id: str) -> list[dict[str, Any]]:
        return self.conn.get_json(f"{API}runs/{run_id}/metric-names")["metrics"]

    def history(
        self,
        run_ids: list[str],
        names: list[str] | None,
        start_step: int | None,
        end_step: int | None,
    ) -> pa.Table:
        body: dict[str, Any] = {"run_ids": run_ids}
        for key, val in (("names", names), ("start_step", start_step), ("end_step", end_step)):
            if val is not None:
                body[key] = val
        table = self.conn.post_arrow(API + "history", body)
        return table if table.num_rows else LONG_SCHEMA.empty_table()

    def sampled(
        self, run_id: str, name: str, samples: int, start_step: int | None, end_step: int | None
    ) -> dict[str, Any]:
        return self.conn.get_json(
            f"{API}runs/{run_id}/metrics/{encode_segment(name)}",
            samples=samples,
            start_step=start_step,
            end_step=end_step,
        )

    def system(self, run_id: str, types: list[str] | None) -> pa.Table:
        return self.conn.get_arrow(
            f"{API}runs/{run_id}/system-metrics", types=",".join(types) if types else None
        )


class OfflineSource:
    """Reads the spool files under ``root`` (runs logged with no server, synced or not)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._runs: dict[str, dict[str, Any]] = {}
        self._points: dict[str, list[Any]] = {}
        self._system: dict[str, list[dict[str, Any]]] = {}
        for run_dir in sorted((root / "runs").glob("*")):
            self._load(run_dir)

    def _load(self, run_dir: Path) -> None:
        rid = run_dir.name
        for fname in (SYNCED, PENDING):
            path = run_dir / fname
            if not path.exists():
                continue
            for kind, body, t in read_timed_ops(path):
                if kind == "create":
                    if rid in self._runs:
                        offline_runs.resume(self._runs[rid], body, t)
                    else:
                        self._runs[rid] = offline_runs.created(rid, body, t)
                elif kind == "patch" and rid in self._runs:
                    offline_runs.patch(self._runs[rid], body, t)
                elif kind == "metrics":
                    self._points.setdefault(rid, []).append(decode_columnar(body))
                elif kind == "system":
                    self._system.setdefault(rid, []).extend(body.get("metrics", []))

    def projects(self) -> list[dict[str, Any]]:
        counts: dict[str, list[int]] = {}
        for r in self._runs.values():
            c = counts.setdefault(r["project"], [0, 0])
            c[0] += 1
            c[1] += r["state"] == "running"
        return [
            {"name": p, "run_count": n, "running": running, "last_created_at": None}
            for p, (n, running) in sorted(counts.items())
        ]

    def runs(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        out = list(self._runs.values())
        if params.get("project"):
            out = [r for r in out if r["project"] == params["project"]]
        if params.get("state"):
            states = set(",".join(params["state"]).split(","))
            out = [r for r in out if r["state"] in states]
        for tag in params.get("tag") or []:
            out = [r for r in out if tag in r["tags"]]
        out = out[: params["limit"]] if params.get("limit") else out
        return [offline_runs.wire(r) for r in out]

    def run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._runs:
            raise NotFound(404, f"run {run_id} not found under {self.root}")
        return offline_runs.wire(self._runs[run_id])

    def metric_names(self, run_id: str) -> list[dict[str, Any]]:
        points = self._columns([run_id], None, None, None)
        counts = np.bincount(points.metric, minlength=len(points.names))
        last = np.full(len(points.names), np.iinfo(np.int64).min)
        np.maximum.at(last, points.metric, points.step)
        return [
            {"name": name, "count": int(counts[i]), "last_step": int(last[i])}
            for i, name in enumerate(points.names)
            if counts[i]
        ]

    def history(
        self,
        run_ids: list[str],
        names: list[str] | None,
        start_step: int | None,
        end_step: int | None,
    ) -> pa.Table:
        p = self._columns(run_ids, names, start_step, end_step)
        if not len(p.step):
            return LONG_SCHEMA.empty_table()
        return pa.table(
            [
                dictionary_array(p.run, list(dict.fromkeys(run_ids))),
                dictionary_array(p.metric, p.names),
                numpy_array(p.step, pa.int64()),
                numpy_array(p.time, TIMESTAMP),
                numpy_array(p.value, pa.float64()),
            ],
            names=LONG_SCHEMA.names,
        )

    def _columns(
        self,
        run_ids: list[str],
        names: list[str] | None,
        start_step: int | None,
        end_step: int | None,
    ) -> Points:
        """The points of ``run_ids`` (in that order), each run's ordered by metric
        name, step and time; metric codes index the sorted names."""
        batches = [
            (i, b) for i, rid in enumerate(dict.fromkeys(run_ids)) for b in self._batches(rid)
        ]
        labels = sorted({n for _, b in batches for n in b.names})
        code = {n: i for i, n in enumerate(labels)}
        empty: np.ndarray = np.empty(0, np.int64)
        run = np.concatenate([np.full(len(b), i, np.int32) for i, b in batches] or [empty])
        metric = np.concatenate(
            [np.array([code[n] for n in b.names], np.int32)[b.k] for _, b in batches] or [empty]
        )
        step = np.concatenate([b.s for _, b in batches] or [empty]).astype(np.int64)
        time = np.concatenate([np.rint(b.t * 1e6) for _, b in batches] or [empty])
        value = np.concatenate([b.v for _, b in batches] or [empty.astype(np.float64)])
        keep = np.ones(len(step), dtype=bool)
        if names is not None:
            keep &= np.isin(metric, [code[n] for n in names if n in code])
        if start_step is not None:
            keep &= step >= start_step
        if end_step is not None:
            keep &= step <= end_step
        cols = [c[keep] for c in (run, metric, step, time.astype(np.int64), value)]
        order = _point_order(*cols[:4])
        r, m, s, t, v = (c[order] for c in cols)
        return Points(r, m, s, t, v, names=labels)

    def _batches(self, run_id: str) -> list[ColumnarBatch]:
        self.run(run_id)
        return self._points.get(run_id, [])

    def sampled(
        self, run_id: str, name: str, samples: int, start_step: int | None, end_step: int | None
    ) -> dict[str, Any]:
        t = self.history([run_id], [name], start_step, end_step)
        return {
            "steps": t.column("step").to_numpy(),
            "times": t.column("time").cast(pa.int64()).to_numpy() / 1e6,
            "values": t.column("value").to_numpy(),
            "sampled": False,
            "total_points": t.num_rows,
        }

    def system(self, run_id: str, types: list[str] | None) -> pa.Table:
        self.run(run_id)
        rows = [r for r in self._system.get(run_id, []) if not types or r["metric_type"] in types]
        times = np.array(
            [np.datetime64(r["time"].rstrip("Z"), "us").astype(np.int64) for r in rows],
            dtype=np.int64,
        )
        return pa.table(
            {
                "metric_type": [r["metric_type"] for r in rows],
                "time": pa.array(times, TIMESTAMP),
                "value": [decode_float(r["value"]) for r in rows],
                "device": [r.get("device") for r in rows],
                "node": [r.get("node") for r in rows],
            },
            schema=SYSTEM_SCHEMA,
        )


def parse_run_id(value: Any) -> str:
    """A run id from a string (as given to ``init(id=...)``), UUID, ``Run`` or ``ApiRun``."""
    from ._lifecycle import run_uuid

    rid = getattr(value, "id", value)
    return run_uuid(rid if isinstance(rid, (str, uuid.UUID)) else str(rid))
