"""Embedded SQLite backend (the default): one file, WAL, columnar point blocks.

All sqlite3 work runs off the event loop: writes on one dedicated writer
thread (one connection, ``BEGIN IMMEDIATE`` transactions), reads on a small
pool of reader threads (one connection each; WAL lets them read while the
writer writes). Points are stored in packed blocks sorted by (step, time), with
step/time bounds for pruning: a series' recent batches in an open tail, sealed
into blocks with packed M4 tier partials (:mod:`.sqlite_blocks`), plus a
mergeable per-series summary (:mod:`.aggregates`), so latest/stats are O(1)
and downsampling O(buckets).

This module holds the plumbing (connections, threads, transactions); the work
is in :mod:`.sqlite_runs` (runs), :mod:`.sqlite_ingest` (writes),
:mod:`.sqlite_blocks` (the block/tier engine), :mod:`.sqlite_reads`,
:mod:`.sqlite_maintenance` (retention) and :mod:`.sqlite_schema` (migrations).
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

from . import media_sqlite as media
from . import sqlite_blocks as blocks
from . import sqlite_ingest as ingest
from . import sqlite_maintenance as maintenance
from . import sqlite_reads as reads
from . import sqlite_runs as runs
from . import sqlite_schema as schema
from .base import (
    Downsampled,
    HistoryChunk,
    MetricBatch,
    MetricInfo,
    Point,
    ProjectInfo,
    ProjectMetric,
    Retention,
    Run,
    RunCreate,
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
    check_chunk_points,
    check_history_limit,
)
from .batches import now_us
from .generation import GENERATION_SQL, generation_token

T = TypeVar("T")
# WAL + synchronous=NORMAL: a commit is in the WAL (OS page cache) when it returns, so it
# survives a crash of the server process (not of the OS). Checkpoints (the only fsyncs)
# run every CHECKPOINT_PAGES pages of WAL rather than SQLite's default 1,000: fewer,
# larger checkpoints inside ingest commits (~30% more ingest throughput here).
CHECKPOINT_PAGES = 10_000
DAY_US = 86_400_000_000


class SQLiteStore(media.SQLiteMedia, Store):
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
        await self._run(self._writer, schema.migrate)
        await self._run(self._writer, maintenance.pack_pending)

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
            v = c.execute(
                "SELECT max(version) FROM wanllm_schema_version WHERE component = 'sqlite'"
            ).fetchone()[0]
            return {
                "backend": self.backend,
                "path": str(self.path),
                "sqlite_version": sqlite3.sqlite_version,
                "schema_version": v,
            }

        return await self._read(q)

    # ----------------------------------------------------------------- runs
    async def create_run(self, spec: RunCreate) -> tuple[Run, bool]:
        return await self._write(runs.create_run, spec)

    async def get_run(self, run_id: uuid.UUID) -> Run:
        return await self._read(runs.get_run, runs.run_key(run_id))

    async def update_run(self, run_id: uuid.UUID, update: RunUpdate) -> Run:
        def w(c: sqlite3.Connection, key: str) -> Run:
            run = runs.update_run(c, key, update)
            if run.state != "running":
                blocks.seal_run(c, key)
            return run

        return await self._write(w, runs.run_key(run_id))

    async def delete_run(self, run_id: uuid.UUID) -> None:
        def w(c: sqlite3.Connection, key: str) -> None:
            digests = media.delete_run_media(c, key)
            runs.delete_run(c, key)
            media.release(c, digests)

        await self._write(w, runs.run_key(run_id))

    async def list_runs(self, query: RunQuery) -> RunPage:
        return await self._read(runs.list_runs, query)

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
            runs.require_run(c, key)
            rows = c.execute(
                "SELECT name, count, last_step, last_time FROM metric_series WHERE run_id = ? "
                "ORDER BY name",
                (key,),
            )
            return [MetricInfo(*r) for r in rows]

        return await self._read(q, runs.run_key(run_id))

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
                f"RETURNING {runs.RUN_COLUMNS}",
                (now_us(), heartbeat_before),
            ).fetchall()
            crashed = sorted((runs.run_from_row(r) for r in rows), key=lambda r: r.created_at)
            for run in crashed:
                blocks.seal_run(c, runs.run_key(run.id))
            return crashed

        return await self._write(w)

    async def cache_generation(self, run_id: uuid.UUID) -> str | None:
        def q(c: sqlite3.Connection, key: str) -> str | None:
            return generation_token(c.execute(GENERATION_SQL.format("?"), (key,)).fetchone())

        return await self._read(q, runs.run_key(run_id))

    # ----------------------------------------------------------------- writes
    async def write_metrics(self, batch: MetricBatch) -> WriteResult:
        return await self._write(ingest.write_metrics, batch)

    async def write_system_metrics(self, batch: SystemMetricBatch) -> WriteResult:
        return await self._write(ingest.write_system, batch)

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
        check_history_limit(limit)

        def q(c: sqlite3.Connection) -> Series:
            sid = reads.series_id(c, runs.run_key(run_id), name)
            s = reads.read_points(c, sid, start_step, end_step, start_time, end_time)
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
        return await self._read(
            reads.downsample, runs.run_key(run_id), name, buckets, start_step, end_step
        )

    async def latest(self, run_id: uuid.UUID, name: str) -> Point:
        def q(c: sqlite3.Connection) -> Point:
            s = reads.summary(c, reads.series_id(c, runs.run_key(run_id), name))
            return Point(s.latest_step, s.latest_time, s.latest_value)

        return await self._read(q)

    async def stats(self, run_id: uuid.UUID, name: str) -> Stats:
        def q(c: sqlite3.Connection) -> Stats:
            return reads.summary(c, reads.series_id(c, runs.run_key(run_id), name)).to_stats(name)

        return await self._read(q)

    async def bulk_history(
        self,
        run_ids: Sequence[uuid.UUID],
        names: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        chunk_points: int = 100_000,
    ) -> AsyncIterator[HistoryChunk]:
        check_chunk_points(chunk_points)
        for run_id in run_ids:
            key = runs.run_key(run_id)
            series = await self._read(reads.series_of_run, key, names)
            for sid, name in series:
                # one thread hop per chunk: the plan (step ranges) comes with the first chunk
                s, plan = await self._read(
                    reads.first_chunk, sid, start_step, end_step, chunk_points
                )
                while True:
                    for i in range(0, len(s), chunk_points):
                        j = i + chunk_points
                        part = Series(s.steps[i:j], s.times[i:j], s.values[i:j])
                        yield HistoryChunk(uuid.UUID(key), name, part)
                    if not plan:
                        break
                    s = await self._read(reads.read_points, sid, *plan.pop(0))

    async def system_metrics(
        self,
        run_id: uuid.UUID,
        *,
        types: Sequence[str] | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[SystemSeries]:
        return await self._read(
            reads.system_metrics, runs.run_key(run_id), types, start_time, end_time, limit
        )

    # ----------------------------------------------------------------- maintenance
    async def apply_retention(self, retention: Retention, now: int) -> dict[str, int]:
        def w(c: sqlite3.Connection) -> dict[str, int]:
            removed = maintenance.apply_retention(c, retention, now)
            days = retention.metrics_days
            removed["media"] = media.apply_retention(c, now - days * DAY_US) if days > 0 else 0
            return removed

        return await self._write(w)


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
