"""PostgreSQL backend (asyncpg pool): TimescaleDB when the extension is loaded
in the database, plain PostgreSQL (ordinary tables) otherwise.

Writes: one statement per batch (:mod:`.postgres_ingest`, packed blocks,
:mod:`.postgres_blocks`). Reads: blocks decoded by numpy
(:mod:`.postgres_reads`); latest and stats from the per-series summary table;
downsampling from the packed M4 tier rows.
Connections: :mod:`.postgres_pools` (failures surface as :class:`StoreUnavailable`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from . import aggregates as agg
from . import media_postgres as media
from . import postgres_chart as chart
from . import postgres_ingest as ingest
from . import postgres_reads as reads
from .base import (
    Downsampled,
    HistoryChunk,
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
    check_chunk_points,
    check_history_limit,
)
from .batches import now_us
from .blocks import concat_series
from .cursor import encode_cursor
from .generation import GENERATION_SQL, generation_token
from .migrations import SchemaState
from .postgres_blocks import seal_run
from .postgres_maintenance import apply_retention, system_metrics
from .postgres_pools import UNAVAILABLE, Pools
from .postgres_runs import RUN_COLUMNS, count_sql, page_sql, run_from_record
from .postgres_schema import migrate
from .run_rules import apply_run_update, check_run_update, new_run, resume_run

_SUMMARY_COLS = (
    "count, finite_count, mean, m2, min_value, max_value, first_time, last_time, first_step, "
    "last_step, latest_step, latest_time, latest_value"
)


def _key(run_id: uuid.UUID | str) -> uuid.UUID:
    if isinstance(run_id, uuid.UUID):
        return run_id
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        raise InvalidQuery(f"not a UUID: {str(run_id)[:64]!r}") from None


class PostgresStore(media.PostgresMedia, Store):
    """Runs and metrics in PostgreSQL/TimescaleDB.

    ``timescaledb``: None uses the extension when the server has it
    (``CREATE EXTENSION IF NOT EXISTS``); False never creates it (plain
    tables, unless the database already has the extension); True requires it.
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_pool: int = 5,
        max_pool: int = 20,
        timescaledb: bool | None = None,
        command_timeout: float = 60.0,
    ) -> None:
        self.dsn = dsn
        self._pools = Pools(dsn, min_pool, max_pool, command_timeout)
        self._want_timescaledb = timescaledb
        self._schema: SchemaState | None = None
        self.backend = "postgresql"

    # ----------------------------------------------------------------- plumbing
    def _conn(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection; connection failures -> StoreUnavailable."""
        return self._pools.conn()

    def _read_conn(self) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A connection for point reads (:mod:`.postgres_pools`)."""
        return self._pools.read_conn()

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._conn() as conn, conn.transaction():
            yield conn

    async def open(self) -> None:
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
        except UNAVAILABLE as e:
            raise StoreUnavailable(f"postgresql: cannot connect: {e}") from e
        try:
            self._schema = await migrate(conn, want_timescaledb=self._want_timescaledb)
        except UNAVAILABLE as e:
            raise StoreUnavailable(f"postgresql: {e}") from e
        finally:
            await conn.close()
        self.backend = "postgresql" if self._schema.mode == "plain" else "timescaledb"
        await self._pools.open()

    async def close(self) -> None:
        await self._pools.close()

    async def info(self) -> dict[str, Any]:
        async with self._conn() as conn:
            version = await conn.fetchval("SHOW server_version")
            ts = await conn.fetchval(
                "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
            )
        assert self._schema is not None
        return {
            "backend": self.backend,
            "server_version": version,
            "timescaledb_version": ts,
            "license": None if self._schema.mode == "plain" else self._schema.mode,
            "schema_version": self._schema.versions.get("postgres", 0),
            "schema_versions": self._schema.versions,  # per component (postgres, timescale)
            "mode": self._schema.mode,
            "pool": self._pools.info(),
        }  # fmt: skip

    # ----------------------------------------------------------------- runs
    async def _fetch_run(self, conn: asyncpg.Connection, rid: uuid.UUID, lock: bool = False) -> Run:
        row = await conn.fetchrow(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1{' FOR UPDATE' if lock else ''}", rid
        )
        if row is None:
            raise RunNotFound(rid)
        return run_from_record(row)

    async def _save_run(self, conn: asyncpg.Connection, run: Run) -> None:
        g = run.git
        await conn.execute(
            f"INSERT INTO runs ({RUN_COLUMNS}) VALUES "
            "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) "
            "ON CONFLICT (id) DO UPDATE SET (" + RUN_COLUMNS.replace("id, ", "", 1) + ") = ("
            + ", ".join("excluded." + c.strip() for c in RUN_COLUMNS.split(",")[1:]) + ")",
            run.id, run.project, run.name, run.state, run.config, run.summary, run.tags, run.notes,
            g.branch, g.commit, g.dirty, g.remote, run.host, run.metadata, run.exit_code,
            run.created_at, run.updated_at, run.heartbeat_at, run.finished_at,
        )  # fmt: skip

    async def create_run(self, spec: RunCreate) -> tuple[Run, bool]:
        now = now_us()
        async with self._tx() as conn:
            if spec.id is not None:
                try:
                    run = await self._fetch_run(conn, _key(spec.id), lock=True)
                except RunNotFound:
                    pass
                else:
                    resume_run(run, spec, now)
                    await self._save_run(conn, run)
                    return run, True
            run = new_run(spec, _key(spec.id) if spec.id is not None else None, now)
            await self._save_run(conn, run)
            return run, False

    async def get_run(self, run_id: uuid.UUID) -> Run:
        async with self._conn() as conn:
            return await self._fetch_run(conn, _key(run_id))

    async def update_run(self, run_id: uuid.UUID, update: RunUpdate) -> Run:
        check_run_update(update)
        async with self._tx() as conn:
            run = await self._fetch_run(conn, _key(run_id), lock=True)
            was_running = run.state == "running"
            apply_run_update(run, update, now_us())
            await self._save_run(conn, run)
            if was_running and run.state != "running":
                await seal_run(conn, run.id)
            return run

    async def delete_run(self, run_id: uuid.UUID) -> None:
        rid = _key(run_id)
        async with self._tx() as conn:
            if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1 FOR UPDATE", rid) is None:
                raise RunNotFound(rid)
            for table in ("metric_blocks", "metric_tail", "metric_tier_blocks", "system_metrics",
                          "metric_summaries"):  # fmt: skip
                await conn.execute(f"DELETE FROM {table} WHERE run_id = $1", rid)
            digests = await media.delete_run_media(conn, rid)
            await conn.execute("DELETE FROM runs WHERE id = $1", rid)
            await media.release(conn, digests)

    async def list_runs(self, query: RunQuery) -> RunPage:
        sql, params = page_sql(query)
        csql, cparams = count_sql(query)
        async with self._conn() as conn:
            rows = await conn.fetch(sql, *params)
            total = await conn.fetchval(csql, *cparams)
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = None
        if more:
            key = rows[-1]["sort_key"]
            cursor = encode_cursor(query.sort, [key is None, key, str(rows[-1]["id"])])
        return RunPage([run_from_record(r) for r in rows], cursor, total)

    async def list_projects(self) -> list[ProjectInfo]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT project, count(*), count(*) FILTER (WHERE state = 'running'), "
                "max(created_at) FROM runs GROUP BY project ORDER BY project"
            )
        return [ProjectInfo(*r) for r in rows]

    async def metric_names(self, run_id: uuid.UUID) -> list[MetricInfo]:
        rid = _key(run_id)
        async with self._conn() as conn:
            await self._require_run(conn, rid)
            rows = await conn.fetch(
                "SELECT metric_name, count, last_step, last_time FROM metric_summaries "
                "WHERE run_id = $1 AND count > 0 ORDER BY metric_name",
                rid,
            )
        return [MetricInfo(*r) for r in rows]

    async def project_metric_names(self, project: str) -> list[ProjectMetric]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT s.metric_name, count(*) FROM metric_summaries s "
                "JOIN runs r ON r.id = s.run_id WHERE r.project = $1 AND s.count > 0 "
                "GROUP BY s.metric_name ORDER BY s.metric_name",
                project,
            )
        return [ProjectMetric(*r) for r in rows]

    async def mark_crashed(self, heartbeat_before: int) -> list[Run]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"UPDATE runs SET state = 'crashed', updated_at = $1, "
                f"finished_at = coalesce(heartbeat_at, created_at) "
                f"WHERE state = 'running' AND coalesce(heartbeat_at, created_at) < $2 "
                f"RETURNING {RUN_COLUMNS}",
                now_us(), heartbeat_before,
            )  # fmt: skip
        return sorted((run_from_record(r) for r in rows), key=lambda r: r.created_at)

    async def cache_generation(self, run_id: uuid.UUID) -> str | None:
        async with self._conn() as conn:
            return generation_token(await conn.fetchrow(GENERATION_SQL.format("$1"), _key(run_id)))

    # ----------------------------------------------------------------- writes
    async def write_metrics(self, batch: MetricBatch) -> WriteResult:
        """Write a batch; its auto steps are replaced by the stored steps once committed."""
        async with self._conn() as conn:
            try:
                steps, seq = await ingest.write_metrics(conn, batch)
            except ingest.Duplicate:
                return WriteResult(0, True, await ingest.replayed_live_seq(conn, batch.batch_id))
        batch.steps = steps
        return WriteResult(len(batch), False, seq)

    async def write_system_metrics(self, batch: SystemMetricBatch) -> WriteResult:
        try:
            async with self._tx() as conn:
                await ingest.write_system_metrics(conn, batch)
        except ingest.Duplicate:
            return WriteResult(0, True)
        return WriteResult(len(batch), False)

    # ----------------------------------------------------------------- reads
    @staticmethod
    async def _require_run(conn: asyncpg.Connection, rid: uuid.UUID) -> None:
        if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1", rid) is None:
            raise RunNotFound(rid)

    async def _summary(self, conn: asyncpg.Connection, rid: uuid.UUID, name: str) -> agg.Summary:
        row = await conn.fetchrow(
            f"SELECT {_SUMMARY_COLS} FROM metric_summaries WHERE run_id = $1 AND metric_name = $2",
            rid, name,
        )  # fmt: skip
        summary = reads.summary_from_record(row) if row is not None else None
        if summary is None:
            await self._require_run(conn, rid)
            raise MetricNotFound(rid, name)
        return summary

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
        rid = _key(run_id)
        filters = {"start_time": start_time, "end_time": end_time}
        async with (
            self._read_conn() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            s = await self._summary(conn, rid, name)
            if limit is None and s.count >= reads.PARALLEL_POINTS:
                queries = reads.series_queries(rid, name, s, start_step, end_step, **filters)
                snapshot = await reads.export_snapshot(conn)
                reading = reads.read_ranges(self._read_conn, snapshot, ((None, q) for q in queries))
                return concat_series([p async for _, p in reading])
            query = reads.PointRead(
                rid, name, start_step, end_step, start_time, end_time, limit, in_summary=True
            )
            return await reads.read_series(conn, query)

    async def downsample(
        self,
        run_id: uuid.UUID,
        name: str,
        buckets: int,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> Downsampled:
        rid = _key(run_id)
        async with self._read_conn() as conn:  # each statement reads one snapshot
            s = await self._summary(conn, rid, name)
            start = s.first_step if start_step is None else start_step
            end = s.last_step if end_step is None else end_step
            return await chart.downsample(conn, rid, name, buckets, start, end, s.count)

    async def latest(self, run_id: uuid.UUID, name: str) -> Point:
        async with self._read_conn() as conn:
            s = await self._summary(conn, _key(run_id), name)
        return Point(s.latest_step, s.latest_time, s.latest_value)

    async def stats(self, run_id: uuid.UUID, name: str) -> Stats:
        async with self._read_conn() as conn:
            s = await self._summary(conn, _key(run_id), name)
        return s.to_stats(name)

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
        rids = [_key(r) for r in run_ids]
        try:
            async with (
                self._read_conn() as conn,
                conn.transaction(isolation="repeatable_read", readonly=True),
            ):
                snapshot = await reads.export_snapshot(conn)
                queries: list[tuple[tuple[uuid.UUID, str], reads.PointRead]] = []
                for rid in rids:
                    await self._require_run(conn, rid)
                    rows = await conn.fetch(
                        f"SELECT metric_name, {_SUMMARY_COLS} FROM metric_summaries"
                        " WHERE run_id = $1 AND count > 0 AND"
                        " ($2::text[] IS NULL OR metric_name = ANY($2::text[]))"
                        " ORDER BY metric_name",
                        rid, None if names is None else list(names),
                    )  # fmt: skip
                    for row in rows:
                        name, s = row["metric_name"], reads.summary_from_record(row)
                        assert s is not None
                        queries += [
                            ((rid, name), q)
                            for q in reads.series_queries(rid, name, s, start_step, end_step)
                        ]
                reading = reads.read_ranges(self._read_conn, snapshot, queries)
                async for (rid, name), part in reads.rechunk(reading, chunk_points):
                    yield HistoryChunk(rid, name, part)
        except UNAVAILABLE as e:
            raise StoreUnavailable(f"postgresql: {type(e).__name__}: {e}") from e

    async def system_metrics(
        self,
        run_id: uuid.UUID,
        *,
        types: Sequence[str] | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[SystemSeries]:
        rid = _key(run_id)
        async with self._conn() as conn:
            await self._require_run(conn, rid)
            return await system_metrics(conn, rid, types, start_time, end_time, limit)

    # ----------------------------------------------------------------- maintenance
    async def apply_retention(self, retention: Retention, now: int) -> dict[str, int]:
        async with self._tx() as conn:
            removed = await apply_retention(
                conn, retention, now, timescale=self.backend == "timescaledb"
            )
            days = retention.metrics_days
            cutoff = now - days * 86_400_000_000
            removed["media"] = await media.apply_retention(conn, cutoff) if days > 0 else 0
            return removed
