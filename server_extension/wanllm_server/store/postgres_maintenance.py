"""PostgreSQL system-metric reads and retention."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
import numpy as np

from . import postgres_blocks as blocks
from .base import Retention, SystemSeries
from .postgres_ingest import Points, derived_args, upsert_derived
from .postgres_reads import PointRead, read_series

DAY_US = 86_400_000_000


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


async def rebuild_series(conn: asyncpg.Connection, rid: uuid.UUID, name: str) -> int:
    """Seal a series' tail and recompute its summary and tiers from its points."""
    await conn.execute(
        "SELECT 1 FROM metric_summaries WHERE run_id = $1 AND metric_name = $2 FOR UPDATE",
        rid, name,
    )  # fmt: skip
    await blocks.lock_series(conn, [(rid, name)])
    await blocks.seal(conn, [(rid, name)], force=True)
    raw = await read_series(conn, PointRead(rid, name))
    for table in ("metric_summaries", "metric_tier_blocks"):
        await conn.execute(f"DELETE FROM {table} WHERE run_id = $1 AND metric_name = $2", rid, name)
    if len(raw):
        group = np.zeros(len(raw), np.int64)
        derived = derived_args(Points([(rid, name)], group, raw.steps, raw.times, raw.values))
        derived.encoded = blocks.tiers_of([(rid, name)], group, raw.steps, raw.times, raw.values)
        await upsert_derived(conn, derived, claim=None, run_ids=[rid], live=[])
    return len(raw)


async def _drop_before(conn: asyncpg.Connection, table: str, cutoff: int, timescale: bool) -> int:
    """Delete rows with time < cutoff: whole chunks first on TimescaleDB, then the
    rest; return the points removed (a block's ``n``, else one a row)."""
    points = "count(*)" if table == "system_metrics" else "sum(n)"
    removed = await conn.fetchval(
        f"SELECT coalesce({points}, 0) FROM {table} WHERE time < $1", cutoff
    )
    if timescale:
        await conn.execute(f"SELECT drop_chunks('{table}', older_than => $1::timestamptz)", cutoff)
    await conn.execute(f"DELETE FROM {table} WHERE time < $1", cutoff)
    return int(removed)


async def apply_retention(
    conn: asyncpg.Connection, r: Retention, now: int, *, timescale: bool
) -> dict[str, int]:
    """Drop points older than the windows and rebuild what summarised them."""
    removed = {"metrics": 0, "system_metrics": 0}
    if r.metrics_days > 0:
        cutoff = now - r.metrics_days * DAY_US
        affected = await conn.fetch(
            "SELECT run_id, metric_name FROM metric_summaries WHERE count > 0 AND first_time < $1"
            ' ORDER BY run_id, metric_name COLLATE "C"',  # the writers' lock order
            cutoff,
        )
        removed["metrics"] = 0
        # seals of these series wait for us (or are skipped), before we touch their rows
        await blocks.lock_series(conn, [(r["run_id"], r["metric_name"]) for r in affected])
        for table in ("metric_blocks", "metric_tail"):
            removed["metrics"] += await blocks.trim_before(conn, table, cutoff)
            removed["metrics"] += await _drop_before(
                conn, table, cutoff, timescale and table == "metric_blocks"
            )
        for row in affected:
            await rebuild_series(conn, row["run_id"], row["metric_name"])
        await conn.execute("DELETE FROM ingest_batches WHERE created_at < $1", cutoff)
    if r.system_metrics_days > 0:
        cutoff = now - r.system_metrics_days * DAY_US
        removed["system_metrics"] = await _drop_before(conn, "system_metrics", cutoff, timescale)
    return removed
