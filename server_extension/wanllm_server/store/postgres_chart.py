"""The PostgreSQL chart query: M4 (:mod:`.m4`) of one series' step range.

One statement reads everything a tier plan needs, in one snapshot: the tier
rows of the chosen level, the blocks overlapping the edge ranges and the
tail's rows. The blocks' hypertable is searched only within the series' time
range (its summary's first and last time, in the same statement), so
TimescaleDB skips the chunks of other runs at run time.
"""

from __future__ import annotations

import functools
import uuid

import asyncpg
import numpy as np

from .. import offload
from . import m4
from .base import Downsampled, Series
from .blocks import concat_series
from .blocks_batch import decode_partials_rows
from .postgres_reads import (
    IN_SERIES_TIMES,
    SERIES,
    PointRead,
    block_points,
    cut_values,
    read_series,
)

TIER, BLOCK, TAIL = 0, 1, 2  # the kinds of a chart statement's rows


@functools.cache
def chart_sql(edges: int) -> str:
    """Rows ``(kind, n, a, b, c, skip)``: tier rows of level $3 overlapping
    buckets [$4, $5] (``a`` their data), tail rows overlapping [$6, $7] and
    blocks overlapping ``edges`` step ranges (parameters from $8, in pairs; ``a``,
    ``b``, ``c``: steps, times, values). Blocks are cut to the steps from the
    first to the last of the edges they overlap (:func:`.postgres_reads.cut_values`),
    the points before counted in ``skip``: an edge is at most one output bucket,
    a block can be thousands of points."""
    tiers = (
        f"SELECT {TIER}::int2 AS kind, n, data AS a, NULL::bytea AS b, NULL::bytea AS c,"
        f" 0::int8 AS skip FROM metric_tier_blocks WHERE {SERIES} AND level = $3"
        " AND min_bucket <= $5 AND max_bucket >= $4"
    )
    tail = (
        f"SELECT {TAIL}::int2, n, steps, times, vals, 0::int8 FROM metric_tail"
        f" WHERE {SERIES} AND min_step <= $7 AND max_step >= $6"
    )
    if not edges:
        return f"{tiers} UNION ALL {tail}"
    over = [f"min_step <= ${2 * i + 9} AND max_step >= ${2 * i + 8}" for i in range(edges)]
    first = ", ".join(f"CASE WHEN {o} THEN ${2 * i + 8} END" for i, o in enumerate(over))
    last = ", ".join(f"CASE WHEN {o} THEN ${2 * i + 9} END" for i, o in enumerate(over))
    vals, skip = cut_values(f"least({first})", f"greatest({last})")
    blocks = (
        f"SELECT {BLOCK}::int2, n, steps, times, {vals}, {skip}"
        f" FROM metric_blocks WHERE {SERIES} AND ({' OR '.join(f'({o})' for o in over)})"
        f"{IN_SERIES_TIMES}"
    )
    return f"{tiers} UNION ALL {tail} UNION ALL {blocks}"


def decode_chart_rows(
    rows: list[asyncpg.Record], plan: m4.DownsamplePlan
) -> tuple[np.ndarray, Series]:
    """The tier partials and the raw points M4 adds to them: the blocks' points
    within the edge ranges and the tail's within the plan's range (the tiers
    cover sealed blocks only)."""
    tiers = decode_partials_rows([(r[2], r[1]) for r in rows if r[0] == TIER])
    parts = []
    for kind, ranges in ((BLOCK, plan.edges), (TAIL, ((plan.start_step, plan.end_step),))):
        s = block_points([(r[2], r[3], r[4], r[1], r[5]) for r in rows if r[0] == kind])
        keep = np.zeros(len(s), bool)
        for a, b in ranges:
            keep |= (s.steps >= a) & (s.steps <= b)
        parts.append(Series(s.steps[keep], s.times[keep], s.values[keep]))
    return tiers, concat_series(parts)


async def downsample(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    name: str,
    buckets: int,
    start: int,
    end: int,
    series_count: int,
) -> Downsampled:
    """M4 over ``[start, end]`` from tiers plus raw edges plus the tail's points
    (see :mod:`.m4`); ``series_count`` (all points of the series) short-cuts
    small series to raw."""
    plan = m4.plan_downsample(start, end, buckets)
    max_unsampled = 4 * buckets
    if plan.level is None or series_count <= max_unsampled:
        raw = await read_series(conn, PointRead(run_id, name, start, end, in_summary=True))
        m4_raw = functools.partial(m4.m4_from_raw, max_unsampled=max_unsampled)
        return await offload.maybe(len(raw), m4_raw, raw, plan.width)
    lo, hi = plan.tier_buckets  # type: ignore[misc]
    edges = [x for edge in plan.edges for x in edge]
    rows = await conn.fetch(
        chart_sql(len(plan.edges)), run_id, name, plan.level, lo, hi, start, end, *edges
    )
    points = sum(len(r[4]) // 8 for r in rows if r[0] != TIER)
    result = await offload.maybe(points, _from_rows, rows, plan)
    if result.total_points <= max_unsampled:
        raw = await read_series(conn, PointRead(run_id, name, start, end, in_summary=True))
        return m4.unsampled(result, raw)
    return result


def _from_rows(rows: list[asyncpg.Record], plan: m4.DownsamplePlan) -> Downsampled:
    tiers, edge_points = decode_chart_rows(rows, plan)
    return m4.m4_from_tiers(tiers, plan, edge_points)
