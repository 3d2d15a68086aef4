"""Embedded SQLite backend (the default): one file, WAL, columnar point blocks.

All sqlite3 work runs off the event loop: writes on one dedicated writer
thread (one connection, ``BEGIN IMMEDIATE`` transactions), reads on a small
pool of reader threads (one connection each; WAL lets them read while the
writer writes). Points are stored as one block per (series, batch) — numpy
arrays as BLOBs, sorted by (step, time), with step/time bounds for pruning —
plus append-only M4 tier partials and a mergeable per-series summary
(:mod:`.aggregates`), so latest/stats are O(1) and downsampling O(buckets).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import orjson

from . import aggregates as agg
from .base import (
    Downsampled,
    HistoryChunk,
    HourlyRollup,
    InvalidQuery,
    MetricBatch,
    MetricInfo,
    MetricNotFound,
    Point,
    ProjectInfo,
    ProjectMetric,
    Retention,
    Run,
    RunCreate,
    RunNotFound,
    RunPage,
    RunQuery,
    RunUpdate,
    Series,
    Stats,
    Store,
    StoreUnavailable,
    SystemMetricBatch,
    SystemSeries,
    WriteResult,
)
from .batches import now_us
from .cursor import encode_cursor
from .generation import GENERATION_SQL, generation_token
from .migrations import migrations
from .run_rules import apply_run_update, check_run_update, new_run, resume_run
from .sqlite_runs import RUN_COLUMNS, page_sql, run_from_row, run_to_params

T = TypeVar("T")
US_PER_DAY = 86_400_000_000
US_PER_HOUR = 3_600_000_000
BLOCK_POINTS = 65_536  # points per block when a series is rebuilt
# WAL + synchronous=NORMAL: a commit is in the WAL (OS page cache) when it returns, so it
# survives a crash of the server process (not of the OS). Checkpoints (the only fsyncs)
# run every CHECKPOINT_PAGES pages of WAL rather than SQLite's default 1,000: fewer,
# larger checkpoints inside ingest commits (~30% more ingest throughput here).
CHECKPOINT_PAGES = 10_000
SMALL_ROW = 1024  # tier rows with fewer partials are "small"
SMALL_BLOCK = 256  # blocks with fewer points are "small"
COMPACT_ROWS = 64  # small rows per series (and tier level) before they are merged
COMPACT_EVERY = 16  # check a series for compaction every this many writes
_SERIES_COLS = (
    "count, finite_count, mean, m2, min_value, max_value, first_time, last_time, first_step, "
    "last_step, latest_step, latest_time, latest_bits"
)
_EMPTY = Series(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def _from_bits(b: int) -> float:
    return float(np.int64(b).view(np.float64))


def _nan(x: float | None) -> float:
    return float("nan") if x is None else x


def _sql_real(x: float) -> float | None:
    return None if x != x else x


def _summary_from_row(r: Sequence[Any]) -> agg.Summary:
    return agg.Summary(
        r[0], r[1], _nan(r[2]), _nan(r[3]), _nan(r[4]), _nan(r[5]), r[6], r[7], r[8], r[9],
        r[10], r[11], _from_bits(r[12]),
    )  # fmt: skip


def _summary_params(s: agg.Summary) -> tuple[Any, ...]:
    return (
        s.count, s.finite_count, _sql_real(s.mean), _sql_real(s.m2), _sql_real(s.min_value),
        _sql_real(s.max_value), s.first_time, s.last_time, s.first_step, s.last_step,
        s.latest_step, s.latest_time, _bits(s.latest_value),
    )  # fmt: skip


def _key(run_id: uuid.UUID | str) -> str:
    try:
        return str(run_id if isinstance(run_id, uuid.UUID) else uuid.UUID(str(run_id)))
    except ValueError:
        raise InvalidQuery(f"not a UUID: {str(run_id)[:64]!r}") from None


def _sorted_series(steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> Series:
    if len(steps) > 1:
        d = np.diff(steps)
        if not ((d > 0) | ((d == 0) & (np.diff(times) >= 0))).all():
            o = np.lexsort((times, steps))
            steps, times, values = steps[o], times[o], values[o]
    return Series(steps, times, values)


class SQLiteStore(Store):
    """The embedded store; ``path`` is the database file (created if missing)."""

    backend = "sqlite"

    def __init__(self, path: str | Path, *, readers: int = 2) -> None:
        self.path = Path(path)
        self._readers_n = readers
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None

    # ----------------------------------------------------------------- plumbing
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA cache_size=-65536")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def _run(self, pool: ThreadPoolExecutor | None, fn: Callable[..., T], *args: Any) -> T:
        if pool is None:
            raise StoreUnavailable("store is not open")

        def call() -> T:
            try:
                return fn(self._conn(), *args)
            except sqlite3.OperationalError as e:
                raise StoreUnavailable(f"sqlite: {e}") from e

        return await asyncio.get_running_loop().run_in_executor(pool, call)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._writer, _transaction(fn), *args)

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._run(self._readers, _snapshot(fn), *args)

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="wanllm-sqlite-writer")
        self._readers = ThreadPoolExecutor(
            self._readers_n, thread_name_prefix="wanllm-sqlite-reader"
        )
        await self._run(self._writer, _migrate)

    async def close(self) -> None:
        for pool in (self._writer, self._readers):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._readers = None
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        self._local = threading.local()

    async def info(self) -> dict[str, Any]:
        def q(c: sqlite3.Connection) -> dict[str, Any]:
            v = c.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            return {
                "backend": self.backend,
                "path": str(self.path),
                "sqlite_version": sqlite3.sqlite_version,
                "schema_version": v,
            }

        return await self._read(q)

    # ----------------------------------------------------------------- runs
    async def create_run(self, spec: RunCreate) -> tuple[Run, bool]:
        return await self._write(_create_run, spec)

    async def get_run(self, run_id: uuid.UUID) -> Run:
        return await self._read(_get_run, _key(run_id))

    async def update_run(self, run_id: uuid.UUID, update: RunUpdate) -> Run:
        return await self._write(_update_run, _key(run_id), update)

    async def delete_run(self, run_id: uuid.UUID) -> None:
        await self._write(_delete_run, _key(run_id))

    async def list_runs(self, query: RunQuery) -> RunPage:
        return await self._read(_list_runs, query)

    async def list_projects(self) -> list[ProjectInfo]:
        def q(c: sqlite3.Connection) -> list[ProjectInfo]:
            rows = c.execute(
                "SELECT project, count(*), sum(state = 'running'), max(created_at) FROM runs "
                "GROUP BY project ORDER BY project"
            )
            return [ProjectInfo(*r) for r in rows]

        return await self._read(q)

    async def metric_names(self, run_id: uuid.UUID) -> list[MetricInfo]:
        def q(c: sqlite3.Connection, key: str) -> list[MetricInfo]:
            _require_run(c, key)
            rows = c.execute(
                "SELECT name, count, last_step, last_time FROM metric_series WHERE run_id = ? "
                "ORDER BY name",
                (key,),
            )
            return [MetricInfo(*r) for r in rows]

        return await self._read(q, _key(run_id))

    async def project_metric_names(self, project: str) -> list[ProjectMetric]:
        def q(c: sqlite3.Connection) -> list[ProjectMetric]:
            rows = c.execute(
                "SELECT s.name, count(*) FROM metric_series s JOIN runs r ON r.id = s.run_id "
                "WHERE r.project = ? AND s.count > 0 GROUP BY s.name ORDER BY s.name",
                (project,),
            )
            return [ProjectMetric(*r) for r in rows]

        return await self._read(q)

    async def mark_crashed(self, heartbeat_before: int) -> list[Run]:
        def w(c: sqlite3.Connection) -> list[Run]:
            rows = c.execute(
                f"UPDATE runs SET state = 'crashed', updated_at = ?1, "
                f"finished_at = coalesce(heartbeat_at, created_at) "
                f"WHERE state = 'running' AND coalesce(heartbeat_at, created_at) < ?2 "
                f"RETURNING {RUN_COLUMNS}",
                (now_us(), heartbeat_before),
            ).fetchall()
            return sorted((run_from_row(r) for r in rows), key=lambda r: r.created_at)

        return await self._write(w)

    async def cache_generation(self, run_id: uuid.UUID) -> str | None:
        def q(c: sqlite3.Connection, key: str) -> str | None:
            return generation_token(c.execute(GENERATION_SQL.format("?"), (key,)).fetchone())

        return await self._read(q, _key(run_id))

    # ----------------------------------------------------------------- writes
    async def write_metrics(self, batch: MetricBatch) -> WriteResult:
        return await self._write(_write_metrics, batch)

    async def write_system_metrics(self, batch: SystemMetricBatch) -> WriteResult:
        return await self._write(_write_system, batch)

    # ----------------------------------------------------------------- reads
    async def history(
        self,
        run_id: uuid.UUID,
        name: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> Series:
        if limit is not None and limit < 0:
            raise InvalidQuery(f"limit must be >= 0, got {limit}")

        def q(c: sqlite3.Connection) -> Series:
            sid = _series_id(c, _key(run_id), name)
            s = _read_points(c, sid, start_step, end_step, start_time, end_time)
            return (
                s if limit is None else Series(s.steps[:limit], s.times[:limit], s.values[:limit])
            )

        return await self._read(q)

    async def downsample(
        self,
        run_id: uuid.UUID,
        name: str,
        buckets: int,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> Downsampled:
        return await self._read(_downsample, _key(run_id), name, buckets, start_step, end_step)

    async def latest(self, run_id: uuid.UUID, name: str) -> Point:
        def q(c: sqlite3.Connection) -> Point:
            s = _summary(c, _series_id(c, _key(run_id), name))
            return Point(s.latest_step, s.latest_time, s.latest_value)

        return await self._read(q)

    async def stats(self, run_id: uuid.UUID, name: str) -> Stats:
        def q(c: sqlite3.Connection) -> Stats:
            return _summary(c, _series_id(c, _key(run_id), name)).to_stats(name)

        return await self._read(q)

    async def bulk_history(  # type: ignore[override]
        self,
        run_ids: Sequence[uuid.UUID],
        names: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        chunk_points: int = 100_000,
    ) -> AsyncIterator[HistoryChunk]:
        if chunk_points < 1:
            raise InvalidQuery(f"chunk_points must be >= 1, got {chunk_points}")
        for run_id in run_ids:
            key = _key(run_id)
            series = await self._read(_series_of_run, key, names)
            for sid, name in series:
                # one thread hop per chunk: the plan comes with the first chunk's points
                s, plan = await self._read(_first_chunk, sid, start_step, end_step, chunk_points)
                while True:
                    for i in range(0, len(s), chunk_points):
                        j = i + chunk_points
                        part = Series(s.steps[i:j], s.times[i:j], s.values[i:j])
                        yield HistoryChunk(uuid.UUID(key), name, part)
                    if not plan:
                        break
                    s = await self._read(_read_blocks, plan.pop(0), start_step, end_step)

    async def system_metrics(
        self,
        run_id: uuid.UUID,
        *,
        types: Sequence[str] | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[SystemSeries]:
        return await self._read(_system_metrics, _key(run_id), types, start_time, end_time, limit)

    # ----------------------------------------------------------------- maintenance
    async def hourly_rollups(
        self,
        run_id: uuid.UUID,
        names: Sequence[str] | None = None,
        *,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> list[HourlyRollup]:
        return await self._read(_hourly_rollups, _key(run_id), names, start_time, end_time)

    async def apply_retention(self, retention: Retention, now: int) -> dict[str, int]:
        return await self._write(_apply_retention, retention, now)


# ===================================================================== sync helpers
def _transaction(fn: Callable[..., T]) -> Callable[..., T]:
    def run(c: sqlite3.Connection, *args: Any) -> T:
        c.execute("BEGIN IMMEDIATE")
        try:
            out = fn(c, *args)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return out

    return run


def _snapshot(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a read in one transaction so its queries see one snapshot."""

    def run(c: sqlite3.Connection, *args: Any) -> T:
        c.execute("BEGIN")
        try:
            return fn(c, *args)
        finally:
            c.execute("COMMIT")

    return run


def _migrate(c: sqlite3.Connection) -> None:
    c.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at INTEGER NOT NULL)"
    )
    done = {r[0] for r in c.execute("SELECT version FROM schema_version")}
    for m in migrations("sqlite"):
        if m.version in done:
            continue
        c.execute("BEGIN IMMEDIATE")
        try:
            for stmt in _statements(m.sql):
                c.execute(stmt)
            c.execute(
                "INSERT OR IGNORE INTO schema_version VALUES (?, ?, ?)",
                (m.version, m.name, now_us()),
            )
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")


def _statements(sql: str) -> list[str]:
    """Split a migration script into complete statements."""
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf)
            buf = ""
    if buf.strip() and not all(
        ln.strip().startswith("--") or not ln.strip() for ln in buf.splitlines()
    ):
        raise ValueError(f"incomplete SQL statement in migration: {buf[:80]!r}")
    return out


# --------------------------------------------------------------------- runs
def _require_run(c: sqlite3.Connection, key: str) -> None:
    if c.execute("SELECT 1 FROM runs WHERE id = ?", (key,)).fetchone() is None:
        raise RunNotFound(key)


def _get_run(c: sqlite3.Connection, key: str) -> Run:
    row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise RunNotFound(key)
    return run_from_row(row)


def _save_run(c: sqlite3.Connection, run: Run) -> None:
    marks = ",".join("?" * 19)
    # An upsert, not INSERT OR REPLACE: REPLACE deletes the row first, which cascades
    # to the run's metrics.
    sets = ", ".join(f"{col} = excluded.{col}" for col in RUN_COLUMNS.split(", ")[1:])
    c.execute(
        f"INSERT INTO runs ({RUN_COLUMNS}) VALUES ({marks}) ON CONFLICT(id) DO UPDATE SET {sets}",
        run_to_params(run),
    )


def _create_run(c: sqlite3.Connection, spec: RunCreate) -> tuple[Run, bool]:
    now = now_us()
    if spec.id is not None:
        key = _key(spec.id)
        row = c.execute(f"SELECT {RUN_COLUMNS} FROM runs WHERE id = ?", (key,)).fetchone()
        if row is not None:
            run = run_from_row(row)
            resume_run(run, spec, now)
            _save_run(c, run)
            return run, True
    run = new_run(spec, uuid.UUID(_key(spec.id)) if spec.id is not None else None, now)
    _save_run(c, run)
    return run, False


def _update_run(c: sqlite3.Connection, key: str, u: RunUpdate) -> Run:
    check_run_update(u)
    run = _get_run(c, key)
    apply_run_update(run, u, now_us())
    _save_run(c, run)
    return run


def _delete_run(c: sqlite3.Connection, key: str) -> None:
    if c.execute("DELETE FROM runs WHERE id = ?", (key,)).rowcount == 0:
        raise RunNotFound(key)


def _list_runs(c: sqlite3.Connection, q: RunQuery) -> RunPage:
    sql, params, count_sql, count_params = page_sql(q)
    rows = c.execute(sql, params).fetchall()
    total = c.execute(count_sql, count_params).fetchone()[0]
    more = len(rows) > q.limit
    rows = rows[: q.limit]
    cursor = None
    if more:
        last = rows[-1]
        cursor = encode_cursor(q.sort, [last[-1] is None, last[-1], last[0]])
    return RunPage([run_from_row(r) for r in rows], cursor, total)


# --------------------------------------------------------------------- metric writes
def _check_batch(c: sqlite3.Connection, batch_id: str, kind: str, points: int) -> bool:
    """Record the batch id; False when it was seen before."""
    cur = c.execute(
        "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?)", (batch_id, kind, points, now_us())
    )
    return cur.rowcount == 1


def _check_runs(c: sqlite3.Connection, run_ids: Sequence[uuid.UUID]) -> list[str]:
    keys = [str(r) for r in run_ids]
    found = {
        r[0]
        for r in c.execute(f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(keys))})", keys)
    }
    for k in keys:
        if k not in found:
            raise RunNotFound(k)
    return keys


def _assign_auto_steps(
    steps: np.ndarray, auto: np.ndarray, group: np.ndarray, last: dict[int, int]
) -> np.ndarray:
    """Auto-steps: the series' greatest step so far + 1, in batch order."""
    steps = steps.copy()
    for g in np.unique(group[auto]).tolist():
        idx = np.flatnonzero(group == g)
        a = auto[idx]
        cur = last.get(g, -1)
        if a.all():
            steps[idx] = cur + 1 + np.arange(len(idx))
            continue
        for i, is_auto in zip(idx.tolist(), a.tolist(), strict=False):
            if is_auto:
                cur += 1
                steps[i] = cur
            else:
                cur = max(cur, int(steps[i]))
    return steps


def _live_seq(c: sqlite3.Connection, batch_id: str, run_keys: list[str]) -> dict[str, int]:
    """Take each run's next live sequence number for the batch (and record it)."""
    out = {}
    for key in sorted(run_keys):
        (seq,) = c.execute(
            "INSERT INTO run_live_seq (run_id, seq) VALUES (?, 1) "
            "ON CONFLICT (run_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
            (key,),
        ).fetchone()
        c.execute("INSERT INTO batch_live_seq VALUES (?, ?, ?)", (batch_id, key, seq))
        out[key] = int(seq)
    return out


def _replayed_seq(c: sqlite3.Connection, batch_id: str) -> dict[str, int]:
    """The live sequence numbers a batch took when it was first committed."""
    rows = c.execute("SELECT run_id, seq FROM batch_live_seq WHERE batch_id = ?", (batch_id,))
    return {str(run_id): int(seq) for run_id, seq in rows}


def _write_metrics(c: sqlite3.Connection, b: MetricBatch) -> WriteResult:
    n = len(b)
    if not _check_batch(c, b.batch_id, "metrics", n):
        return WriteResult(0, True, _replayed_seq(c, b.batch_id))
    if n == 0:
        return WriteResult(0, False)
    run_keys = _check_runs(c, b.run_ids)
    code = b.run_idx.astype(np.int64) * len(b.names) + b.name_idx
    uniq, group = np.unique(code, return_inverse=True)
    pairs = [(run_keys[int(u) // len(b.names)], b.names[int(u) % len(b.names)]) for u in uniq]
    existing: dict[int, tuple[int, agg.Summary]] = {}
    existing_writes: dict[int, int] = {}
    for g, (rk, name) in enumerate(pairs):
        row = c.execute(
            f"SELECT id, writes, {_SERIES_COLS} FROM metric_series WHERE run_id = ? AND name = ?",
            (rk, name),
        ).fetchone()
        if row is not None:
            existing[g] = (row[0], _summary_from_row(row[2:]))
            existing_writes[g] = row[1]
    steps = b.steps
    if b.auto_step is not None and b.auto_step.any():
        last = {g: s.last_step for g, (_, s) in existing.items()}
        steps = _assign_auto_steps(steps, b.auto_step, group, last)
    summaries = agg.summarize_groups(group, steps, b.times, b.values)
    ids: list[int] = []
    compact: list[int] = []
    for g, (rk, name) in enumerate(pairs):
        if g in existing:
            sid, old = existing[g]
            merged = agg.merge_summary(old, summaries[g])
            c.execute(
                f"UPDATE metric_series SET ({_SERIES_COLS}) = ({','.join('?' * 13)}), "
                "writes = writes + 1 WHERE id = ?",
                (*_summary_params(merged), sid),
            )
            if (existing_writes[g] + 1) % COMPACT_EVERY == 0:
                compact.append(sid)
        else:
            cur = c.execute(
                f"INSERT INTO metric_series (run_id, name, {_SERIES_COLS}) "
                f"VALUES (?, ?, {','.join('?' * 13)})",
                (rk, name, *_summary_params(summaries[g])),
            )
            sid = int(cur.lastrowid)  # type: ignore[arg-type]
        ids.append(sid)
    order = agg.sort_order(group, steps, b.times)
    gs, st, tm, v = group[order], steps[order], b.times[order], b.values[order]
    md = [b.metadata[i] for i in order.tolist()] if b.metadata is not None else None
    _insert_blocks(c, ids, gs, st, tm, v, md)
    _insert_tiers(c, ids, agg.tier_rows(gs, st, tm, v, presorted=True))
    for sid in compact:
        _maybe_compact(c, sid)
    b.steps = steps  # the live feed publishes the stored steps
    return WriteResult(n, False, _live_seq(c, b.batch_id, run_keys))


def _insert_blocks(
    c: sqlite3.Connection,
    ids: Sequence[int],
    gs: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: list[dict[str, Any] | None] | None,
) -> None:
    """Insert points sorted by (group, step, time) as one block per group."""
    starts = np.flatnonzero(np.concatenate(([True], gs[1:] != gs[:-1]))).tolist()
    ends = [*starts[1:], len(gs)]
    rows = []
    for s, e in zip(starts, ends, strict=False):
        meta = None
        if md is not None:
            items = [[i - s, m] for i in range(s, e) if (m := md[i]) is not None]
            meta = orjson.dumps(items).decode() if items else None
        bt = tm[s:e]
        rows.append(
            (ids[int(gs[s])], e - s, int(st[s]), int(st[e - 1]), int(bt.min()), int(bt.max()),
             st[s:e].tobytes(), bt.tobytes(), v[s:e].tobytes(), meta)
        )  # fmt: skip
    c.executemany(
        "INSERT INTO metric_blocks (series_id, n, min_step, max_step, min_time, max_time, steps, "
        "times, vals, metadata) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def _insert_tiers(c: sqlite3.Connection, ids: Sequence[int], tr: agg.TierRows) -> None:
    if len(tr) == 0:
        return
    starts = np.flatnonzero(
        np.concatenate(([True], (tr.group[1:] != tr.group[:-1]) | (tr.level[1:] != tr.level[:-1])))
    ).tolist()
    ends = [*starts[1:], len(tr)]
    rows = []
    for s, e in zip(starts, ends, strict=False):
        p = tr.partials[s:e]
        b = p["bucket"]
        rows.append(
            (ids[int(tr.group[s])], int(tr.level[s]), e - s, int(b[0]), int(b[-1]), p.tobytes())
        )
    c.executemany(
        "INSERT INTO metric_tiers (series_id, level, n, min_bucket, max_bucket, data) "
        "VALUES (?,?,?,?,?,?)",
        rows,
    )


def _maybe_compact(c: sqlite3.Connection, sid: int) -> None:
    """Keep reads O(rows): merge small tier rows and small blocks of a series
    once more than ``COMPACT_ROWS`` of them pile up (LSM-style: merged rows
    grow large and are left alone)."""
    levels = [
        lv
        for lv, cnt in c.execute(
            "SELECT level, count(*) FROM metric_tiers WHERE series_id = ? AND n < ? GROUP BY level",
            (sid, SMALL_ROW),
        )
        if cnt > COMPACT_ROWS
    ]
    for lv in levels:
        rows = c.execute(
            "SELECT id, data FROM metric_tiers WHERE series_id = ? AND level = ? AND n < ?",
            (sid, lv, SMALL_ROW),
        ).fetchall()
        parts = agg.partials_from_blobs([r[1] for r in rows])
        merged = agg.merge_partials((parts["bucket"],), parts)[1]
        _delete_ids(c, "metric_tiers", [r[0] for r in rows])
        n = len(merged)
        _insert_tiers(
            c, [sid], agg.TierRows(np.zeros(n, np.int64), np.full(n, lv, np.int64), merged)
        )
    small = c.execute(
        "SELECT count(*) FROM metric_blocks WHERE series_id = ? AND n < ?", (sid, SMALL_BLOCK)
    ).fetchone()[0]
    if small > COMPACT_ROWS:
        rows = c.execute(
            "SELECT id, steps, times, vals, metadata FROM metric_blocks WHERE series_id = ? AND n < ?",
            (sid, SMALL_BLOCK),
        ).fetchall()
        st, tm, v, md = _decode_with_metadata([r[1:] for r in rows])
        _delete_ids(c, "metric_blocks", [r[0] for r in rows])
        order = np.lexsort((tm, st))
        md = None if md is None else [md[i] for i in order.tolist()]
        _insert_blocks(c, [sid], np.zeros(len(v), np.int64), st[order], tm[order], v[order], md)


def _delete_ids(c: sqlite3.Connection, table: str, ids: list[int]) -> None:
    c.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])


def _decode_with_metadata(
    rows: Sequence[tuple[bytes, bytes, bytes, str | None]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any] | None] | None]:
    """Concatenate blocks' points, and their metadata (None when none has any)."""
    st, tm, v = _decode([r[:3] for r in rows])
    md: list[dict[str, Any] | None] | None = None
    if any(r[3] for r in rows):
        md, offset = [None] * len(v), 0
        for r in rows:
            for i, m in orjson.loads(r[3]) if r[3] else ():
                md[offset + i] = m
            offset += len(r[0]) // 8
    return st, tm, v, md


def _rebuild_series(c: sqlite3.Connection, sid: int) -> int:
    """Rewrite a series' blocks, tiers and summary from its stored points
    (after retention). Returns the points left; an emptied series is deleted."""
    rows = c.execute(
        "SELECT steps, times, vals, metadata FROM metric_blocks WHERE series_id = ?", (sid,)
    ).fetchall()
    st, tm, v, md = _decode_with_metadata(rows)
    c.execute("DELETE FROM metric_blocks WHERE series_id = ?", (sid,))
    c.execute("DELETE FROM metric_tiers WHERE series_id = ?", (sid,))
    if len(v) == 0:
        c.execute("DELETE FROM metric_series WHERE id = ?", (sid,))
        return 0
    order = np.lexsort((tm, st))
    st, tm, v = st[order], tm[order], v[order]
    md = None if md is None else [md[i] for i in order.tolist()]
    for s in range(0, len(v), BLOCK_POINTS):
        e = min(s + BLOCK_POINTS, len(v))
        _insert_blocks(
            c, [sid], np.zeros(e - s, np.int64), st[s:e], tm[s:e], v[s:e], md and md[s:e]
        )
    zeros = np.zeros(len(v), np.int64)
    _insert_tiers(c, [sid], agg.merge_tier_rows(agg.tier_rows(zeros, st, tm, v, presorted=True)))
    summary = agg.summarize(Series(st, tm, v))
    assert summary is not None
    c.execute(
        f"UPDATE metric_series SET ({_SERIES_COLS}) = ({','.join('?' * 13)}) WHERE id = ?",
        (*_summary_params(summary), sid),
    )
    return len(v)


def _write_system(c: sqlite3.Connection, b: SystemMetricBatch) -> WriteResult:
    n = len(b)
    if not _check_batch(c, b.batch_id, "system", n):
        return WriteResult(0, True)
    if n == 0:
        return WriteResult(0, False)
    keys = _check_runs(c, b.run_ids)
    none = [None] * n
    devices, nodes, meta = b.devices or none, b.nodes or none, b.metadata or none
    rows = zip(
        (keys[i] for i in b.run_idx.tolist()),
        (b.types[i] for i in b.type_idx.tolist()),
        b.times.tolist(),
        (_sql_real(x) for x in b.values.tolist()),
        b.values.view(np.int64).tolist(),
        devices,
        nodes,
        (None if m is None else orjson.dumps(m).decode() for m in meta),
        strict=False,
    )
    c.executemany("INSERT INTO system_metrics VALUES (?,?,?,?,?,?,?,?)", rows)
    return WriteResult(n, False)


# --------------------------------------------------------------------- metric reads
def _series_id(c: sqlite3.Connection, key: str, name: str) -> int:
    row = c.execute(
        "SELECT id FROM metric_series WHERE run_id = ? AND name = ?", (key, name)
    ).fetchone()
    if row is None:
        _require_run(c, key)
        raise MetricNotFound(key, name)
    return int(row[0])


def _summary(c: sqlite3.Connection, sid: int) -> agg.Summary:
    row = c.execute(f"SELECT {_SERIES_COLS} FROM metric_series WHERE id = ?", (sid,)).fetchone()
    return _summary_from_row(row)


def _decode(rows: list[tuple[bytes, bytes, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not rows:
        return _EMPTY.steps, _EMPTY.times, _EMPTY.values
    st = np.concatenate([np.frombuffer(r[0], np.int64) for r in rows])
    tm = np.concatenate([np.frombuffer(r[1], np.int64) for r in rows])
    v = np.concatenate([np.frombuffer(r[2], np.float64) for r in rows])
    return st, tm, v


def _filter(
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    start_step: int | None,
    end_step: int | None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> Series:
    mask = None
    for arr, lo, hi in ((st, start_step, end_step), (tm, start_time, end_time)):
        for bound, cmp in ((lo, np.greater_equal), (hi, np.less_equal)):
            if bound is not None and len(arr) and not cmp(arr, bound).all():
                m = cmp(arr, bound)
                mask = m if mask is None else mask & m
    if mask is not None:
        st, tm, v = st[mask], tm[mask], v[mask]
    return _sorted_series(st, tm, v)


def _bounds(lo: int | None, hi: int | None) -> tuple[int, int]:
    return (
        -(2**63) if lo is None else max(lo, -(2**63)),
        2**63 - 1 if hi is None else min(hi, 2**63 - 1),
    )


def _read_points(
    c: sqlite3.Connection,
    sid: int,
    start_step: int | None,
    end_step: int | None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> Series:
    lo, hi = _bounds(start_step, end_step)
    tlo, thi = _bounds(start_time, end_time)
    rows = c.execute(
        "SELECT steps, times, vals FROM metric_blocks WHERE series_id = ? AND min_step <= ? "
        "AND max_step >= ? AND min_time <= ? AND max_time >= ? ORDER BY min_step, id",
        (sid, hi, lo, thi, tlo),
    ).fetchall()
    return _filter(*_decode(rows), start_step, end_step, start_time, end_time)


def _downsample(
    c: sqlite3.Connection, key: str, name: str, buckets: int, start: int | None, end: int | None
) -> Downsampled:
    sid = _series_id(c, key, name)
    s = _summary(c, sid)
    start = s.first_step if start is None else start
    end = s.last_step if end is None else end
    plan = agg.plan_downsample(start, end, buckets)
    small = 4 * buckets
    if plan.level is None or s.count <= small:
        return agg.m4_from_raw(_read_points(c, sid, start, end), plan.width, max_unsampled=small)
    lo, hi = plan.tier_buckets  # type: ignore[misc]
    rows = c.execute(
        "SELECT data FROM metric_tiers WHERE series_id = ? AND level = ? AND min_bucket <= ? "
        "AND max_bucket >= ?",
        (sid, plan.level, hi, lo),
    ).fetchall()
    tiers = agg.partials_from_blobs([r[0] for r in rows])
    edges = [_read_points(c, sid, a, b) for a, b in plan.edges]
    edge = Series(
        *(
            np.concatenate([getattr(e, f) for e in edges] or [getattr(_EMPTY, f)])
            for f in ("steps", "times", "values")
        )
    )
    result = agg.m4_from_tiers(tiers, plan, edge)
    if result.total_points <= small:
        return agg.unsampled(result, _read_points(c, sid, start, end))
    return result


def _series_of_run(
    c: sqlite3.Connection, key: str, names: Sequence[str] | None
) -> list[tuple[int, str]]:
    _require_run(c, key)
    rows = c.execute("SELECT id, name FROM metric_series WHERE run_id = ? ORDER BY name", (key,))
    wanted = None if names is None else set(names)
    return [(sid, n) for sid, n in rows if wanted is None or n in wanted]


def _block_chunks(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> list[list[int]]:
    """Group a series' blocks into chunks that can be sorted independently:
    blocks with overlapping step ranges stay together."""
    lo, hi = _bounds(start, end)
    rows = c.execute(
        "SELECT id, n, min_step, max_step FROM metric_blocks WHERE series_id = ? AND min_step <= ? "
        "AND max_step >= ? ORDER BY min_step, id",
        (sid, hi, lo),
    ).fetchall()
    chunks: list[list[int]] = []
    size, reach = 0, None
    for bid, n, mn, mx in rows:
        overlaps = reach is not None and mn <= reach
        if chunks and (overlaps or size + n <= chunk_points):
            chunks[-1].append(bid)
            size += n
        else:
            chunks.append([bid])
            size = n
        reach = mx if reach is None else max(reach, mx)
    return chunks


def _first_chunk(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> tuple[Series, list[list[int]]]:
    """The first chunk's points of a series and the block ids of the other chunks."""
    plan = _block_chunks(c, sid, start, end, chunk_points)
    if not plan:
        return _EMPTY, []
    return _read_blocks(c, plan[0], start, end), plan[1:]


def _read_blocks(
    c: sqlite3.Connection, ids: list[int], start: int | None, end: int | None
) -> Series:
    rows = c.execute(
        f"SELECT steps, times, vals FROM metric_blocks WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return _filter(*_decode(rows), start, end)


def _system_metrics(
    c: sqlite3.Connection,
    key: str,
    types: Sequence[str] | None,
    start: int | None,
    end: int | None,
    limit: int | None,
) -> list[SystemSeries]:
    _require_run(c, key)
    tlo, thi = _bounds(start, end)
    sql = "SELECT metric_type, time, value_bits, device, node FROM system_metrics WHERE run_id = ? AND time BETWEEN ? AND ?"
    params: list[Any] = [key, tlo, thi]
    if types is not None:
        sql += f" AND metric_type IN ({','.join('?' * len(types))})"
        params += list(types)
    out: dict[str, list[tuple[Any, ...]]] = {}
    for r in c.execute(sql + " ORDER BY metric_type, time", params):
        out.setdefault(r[0], []).append(r)
    result = []
    for mtype, rows in out.items():
        rows = rows[:limit] if limit is not None else rows
        result.append(
            SystemSeries(
                uuid.UUID(key),
                mtype,
                np.array([r[1] for r in rows], np.int64),
                np.array([r[2] for r in rows], np.int64).view(np.float64),
                [r[3] for r in rows],
                [r[4] for r in rows],
            )
        )
    return result


def _hourly_rollups(
    c: sqlite3.Connection, key: str, names: Sequence[str] | None, start: int | None, end: int | None
) -> list[HourlyRollup]:
    out: list[HourlyRollup] = []
    for sid, name in _series_of_run(c, key, names):
        s = _read_points(c, sid, None, None, start, end)
        if not len(s):
            continue
        hours = s.times // US_PER_HOUR
        o = np.argsort(hours, kind="stable")
        h, v = hours[o], s.values[o]
        starts = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
        summ = agg.summarize_groups(
            np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(h)))), h, h, v
        )
        for i, st in enumerate(starts.tolist()):
            stats = summ[i].to_stats(name)
            out.append(
                HourlyRollup(int(h[st]) * US_PER_HOUR, name, stats.count, stats.avg_value, stats.min_value,
                             stats.max_value, stats.std_dev)
            )  # fmt: skip
    return out


def _apply_retention(c: sqlite3.Connection, r: Retention, now: int) -> dict[str, int]:
    removed = {"metrics": 0, "system_metrics": 0}
    if r.metrics_days > 0:
        cutoff = now - r.metrics_days * US_PER_DAY
        affected = [
            sid
            for (sid,) in c.execute(
                "SELECT DISTINCT series_id FROM metric_blocks WHERE min_time < ?", (cutoff,)
            )
        ]
        for sid in affected:
            before = c.execute(
                "SELECT sum(n) FROM metric_blocks WHERE series_id = ?", (sid,)
            ).fetchone()[0]
            rows = c.execute(
                "SELECT id, steps, times, vals, metadata FROM metric_blocks WHERE series_id = ? AND min_time < ?",
                (sid, cutoff),
            ).fetchall()
            for bid, bs, bt, bv, meta in rows:
                tm = np.frombuffer(bt, np.int64)
                keep = tm >= cutoff
                if keep.any():
                    idx = np.flatnonzero(keep)
                    md = None
                    if meta:
                        old = dict((i, m) for i, m in orjson.loads(meta))
                        items = [[j, old[i]] for j, i in enumerate(idx.tolist()) if i in old]
                        md = orjson.dumps(items).decode() if items else None
                    st = np.frombuffer(bs, np.int64)[keep]
                    c.execute(
                        "UPDATE metric_blocks SET n = ?, min_step = ?, max_step = ?, min_time = ?, "
                        "max_time = ?, steps = ?, times = ?, vals = ?, metadata = ? WHERE id = ?",
                        (len(idx), int(st.min()), int(st.max()), int(tm[keep].min()), int(tm[keep].max()),
                         st.tobytes(), tm[keep].tobytes(), np.frombuffer(bv, np.float64)[keep].tobytes(), md, bid),
                    )  # fmt: skip
                else:
                    c.execute("DELETE FROM metric_blocks WHERE id = ?", (bid,))
            removed["metrics"] += before - _rebuild_series(c, sid)
    if r.system_metrics_days > 0:
        cutoff = now - r.system_metrics_days * US_PER_DAY
        removed["system_metrics"] = c.execute(
            "DELETE FROM system_metrics WHERE time < ?", (cutoff,)
        ).rowcount
    return removed
