"""Where the query API reads from: the server (REST + Arrow) or local spools (offline).

Both sources answer the same questions with plain dicts and Arrow tables in the
shapes of docs/api.md, so :mod:`.api` has one code path.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._frames import LONG_SCHEMA, TIMESTAMP
from ._http import API, Connection, encode_segment
from . import _offline_runs as offline_runs
from ._spool import PENDING, SYNCED, read_timed_ops
from ._wire import decode_columnar, decode_float
from .errors import NotFound

SYSTEM_SCHEMA = pa.schema(
    [
        ("metric_type", pa.string()),
        ("time", TIMESTAMP),
        ("value", pa.float64()),
        ("device", pa.string()),
        ("node", pa.string()),
    ]
)
PAGE = 1000


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
        return out[: params["limit"]] if params.get("limit") else out

    def run(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._runs:
            raise NotFound(404, f"run {run_id} not found under {self.root}")
        return self._runs[run_id]

    def metric_names(self, run_id: str) -> list[dict[str, Any]]:
        table = self.history([run_id], None, None, None)
        if table.num_rows == 0:
            return []
        names = table.column("metric_name").to_numpy(zero_copy_only=False)
        steps = table.column("step").to_numpy()
        return [
            {"name": n, "count": int((names == n).sum()), "last_step": int(steps[names == n].max())}
            for n in sorted(set(names))
        ]

    def history(
        self,
        run_ids: list[str],
        names: list[str] | None,
        start_step: int | None,
        end_step: int | None,
    ) -> pa.Table:
        cols: dict[str, list[Any]] = {f: [] for f in LONG_SCHEMA.names}
        for rid in run_ids:
            self.run(rid)
            for b in self._points.get(rid, []):
                cols["run_id"].append(np.full(len(b), rid, dtype=object))
                cols["metric_name"].append(np.asarray(b.names, dtype=object)[b.k])
                cols["step"].append(b.s)
                cols["time"].append(np.round(b.t * 1e6).astype(np.int64))
                cols["value"].append(b.v)
        if not cols["step"]:
            return LONG_SCHEMA.empty_table()
        table = pa.table(
            {k: np.concatenate(v) for k, v in cols.items() if k != "time"}
            | {"time": pa.array(np.concatenate(cols["time"]), TIMESTAMP)}
        )
        table = table.select(LONG_SCHEMA.names).cast(LONG_SCHEMA)
        mask = np.ones(table.num_rows, dtype=bool)
        steps = table.column("step").to_numpy()
        if names is not None:
            mask &= np.isin(table.column("metric_name").to_numpy(zero_copy_only=False), names)
        if start_step is not None:
            mask &= steps >= start_step
        if end_step is not None:
            mask &= steps <= end_step
        table = table.filter(pa.array(mask))
        idx = pc.sort_indices(
            table,
            [
                ("run_id", "ascending"),
                ("metric_name", "ascending"),
                ("step", "ascending"),
                ("time", "ascending"),
            ],
        )
        return table.take(idx)

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
