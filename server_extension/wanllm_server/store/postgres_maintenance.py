"""PostgreSQL system-metric reads, hourly rollups and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import numpy as np

from .base import HourlyRollup, Retention, SystemSeries
from .postgres_ingest import Points, derived_args, upsert_derived
from .postgres_reads import points_query, read_series

HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
_FINITE = "value NOT IN ('NaN'::float8, 'Infinity'::float8, '-Infinity'::float8)"


async def system_metrics(
    conn: asyncpg.Connection,
    rid: uuid.UUID,
    types: Sequence[str] | None,
    start: int | None,
    end: int | None,
    limit: int | None,
) -> list[SystemSeries]:
    """Series per metric type ordered by time; ``limit`` applies per type."""
    rows = await conn.fetch(
        """SELECT metric_type, time, value, device, node FROM (
               SELECT *, row_number() OVER (PARTITION BY metric_type ORDER BY time) AS rn
               FROM system_metrics
               WHERE run_id = $1 AND ($2::text[] IS NULL OR metric_type = ANY($2::text[]))
                 AND ($3::timestamptz IS NULL OR time >= $3)
                 AND ($4::timestamptz IS NULL OR time <= $4)) t
           WHERE $5::bigint IS NULL OR rn <= $5
           ORDER BY metric_type, time""",
        rid, None if types is None else list(types), start, end, limit,
    )  # fmt: skip
    out: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        out.setdefault(r["metric_type"], []).append(r)
    return [
        SystemSeries(
            rid,
            mtype,
            np.array([r["time"] for r in rs], np.int64),
            np.array([r["value"] for r in rs], np.float64),
            [r["device"] for r in rs],
            [r["node"] for r in rs],
        )
        for mtype, rs in out.items()
    ]


async def hourly_rollups(
    conn: asyncpg.Connection,
    rid: uuid.UUID,
    names: Sequence[str] | None,
    start: int | None,
    end: int | None,
    *,
    table: bool,
) -> list[HourlyRollup]:
    """Rollups of points with time in [start, end], by (metric, hour).

    Whole hours come from ``metrics_hourly`` (table or continuous aggregate);
    the hours cut by ``start``/``end`` are aggregated from the raw points.
    """
    lo = None if start is None else -(-start // HOUR_US) * HOUR_US  # first whole hour
    hi = None if end is None else (end + 1) // HOUR_US * HOUR_US  # end of last whole hour
    names_param = None if names is None else list(names)
    stats = (
        "count, mean, min_value, max_value, CASE WHEN finite_count > 1 "
        "THEN sqrt(greatest(m2, 0) / (finite_count - 1)) END"
        if table
        else "count, avg_value, min_value, max_value, std_dev"
    )
    whole = lo is None or hi is None or lo < hi
    rows = []
    if whole:
        rows += await conn.fetch(
            f"SELECT hour, metric_name, {stats} FROM metrics_hourly WHERE run_id = $1"
            " AND ($2::text[] IS NULL OR metric_name = ANY($2::text[]))"
            " AND ($3::timestamptz IS NULL OR hour >= $3)"
            " AND ($4::timestamptz IS NULL OR hour < $4)",
            rid, names_param, lo, hi,
        )  # fmt: skip
    edges: list[tuple[int, int]] = []
    if not whole:
        edges.append((start, end))  # type: ignore[arg-type]
    else:
        if lo is not None and start is not None and start < lo:
            edges.append((start, lo - 1))
        if hi is not None and end is not None and end >= hi:
            edges.append((hi, end))
    for a, b in edges:
        rows += await conn.fetch(
            f"""SELECT floor(extract(epoch FROM time) / 3600)::bigint * {HOUR_US} AS hour,
                       metric_name, count(*),
                       avg(value) FILTER (WHERE {_FINITE}), min(value) FILTER (WHERE {_FINITE}),
                       max(value) FILTER (WHERE {_FINITE}),
                       stddev_samp(value) FILTER (WHERE {_FINITE})
                FROM metrics WHERE run_id = $1 AND time >= $2 AND time <= $3
                  AND ($4::text[] IS NULL OR metric_name = ANY($4::text[]))
                GROUP BY 1, 2""",
            rid, a, b, names_param,
        )  # fmt: skip
    return sorted(
        (HourlyRollup(r[0], r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows),
        key=lambda h: (h.metric_name, h.hour),
    )


async def rebuild_series(
    conn: asyncpg.Connection, rid: uuid.UUID, name: str, *, hourly_table: bool
) -> int:
    """Recompute a series' summary, tiers (and hourly rows) from its raw points."""
    raw = await read_series(conn, points_query(rid, name))
    tables = ["metric_summaries", "metric_tiers"] + (["metrics_hourly"] if hourly_table else [])
    for table in tables:
        await conn.execute(f"DELETE FROM {table} WHERE run_id = $1 AND metric_name = $2", rid, name)
    if len(raw):
        p = Points([(rid, name)], np.zeros(len(raw), np.int64), raw.steps, raw.times, raw.values)
        args = derived_args(p, hourly_table)
        await upsert_derived(conn, args, hourly=hourly_table, claim=None, run_ids=[rid])
    return len(raw)


async def _drop_before(conn: asyncpg.Connection, table: str, cutoff: int, timescale: bool) -> int:
    """Delete rows with time < cutoff: whole chunks first on TimescaleDB, then the rest."""
    removed = await conn.fetchval(f"SELECT count(*) FROM {table} WHERE time < $1", cutoff)
    if timescale:
        await conn.execute(f"SELECT drop_chunks('{table}', older_than => $1::timestamptz)", cutoff)
    await conn.execute(f"DELETE FROM {table} WHERE time < $1", cutoff)
    return int(removed)


async def apply_retention(
    conn: asyncpg.Connection, r: Retention, now: int, *, timescale: bool, hourly_table: bool
) -> dict[str, int]:
    """Drop points older than the windows and rebuild what summarised them."""
    removed = {"metrics": 0, "system_metrics": 0}
    if r.metrics_days > 0:
        cutoff = now - r.metrics_days * DAY_US
        affected = await conn.fetch(
            "SELECT run_id, metric_name FROM metric_summaries WHERE count > 0 AND first_time < $1",
            cutoff,
        )
        removed["metrics"] = await _drop_before(conn, "metrics", cutoff, timescale)
        for row in affected:
            await rebuild_series(conn, row["run_id"], row["metric_name"], hourly_table=hourly_table)
        await conn.execute("DELETE FROM ingest_batches WHERE created_at < $1", cutoff)
    if r.system_metrics_days > 0:
        cutoff = now - r.system_metrics_days * DAY_US
        removed["system_metrics"] = await _drop_before(conn, "system_metrics", cutoff, timescale)
    return removed
