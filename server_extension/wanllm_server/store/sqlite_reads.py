"""SQLite reads: a series' points, downsampling, bulk chunks and system metrics."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import aggregates as agg
from . import m4
from .base import Downsampled, MetricNotFound, Series, SystemSeries
from .blocks import EMPTY, bounds, filter_points
from .sqlite_blocks import SERIES_COLS, decode, summary_from_row
from .sqlite_runs import require_run


def series_id(c: sqlite3.Connection, key: str, name: str) -> int:
    row = c.execute(
        "SELECT id FROM metric_series WHERE run_id = ? AND name = ?", (key, name)
    ).fetchone()
    if row is None:
        require_run(c, key)
        raise MetricNotFound(key, name)
    return int(row[0])


def summary(c: sqlite3.Connection, sid: int) -> agg.Summary:
    row = c.execute(f"SELECT {SERIES_COLS} FROM metric_series WHERE id = ?", (sid,)).fetchone()
    return summary_from_row(row)


def read_points(
    c: sqlite3.Connection,
    sid: int,
    start_step: int | None,
    end_step: int | None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> Series:
    lo, hi = bounds(start_step, end_step)
    tlo, thi = bounds(start_time, end_time)
    rows = c.execute(
        "SELECT steps, times, vals FROM metric_blocks WHERE series_id = ? AND min_step <= ? "
        "AND max_step >= ? AND min_time <= ? AND max_time >= ? ORDER BY min_step, id",
        (sid, hi, lo, thi, tlo),
    ).fetchall()
    return filter_points(*decode(rows), start_step, end_step, start_time, end_time)


def downsample(
    c: sqlite3.Connection, key: str, name: str, buckets: int, start: int | None, end: int | None
) -> Downsampled:
    sid = series_id(c, key, name)
    s = summary(c, sid)
    start = s.first_step if start is None else start
    end = s.last_step if end is None else end
    plan = m4.plan_downsample(start, end, buckets)
    small = 4 * buckets
    if plan.level is None or s.count <= small:
        return m4.m4_from_raw(read_points(c, sid, start, end), plan.width, max_unsampled=small)
    lo, hi = plan.tier_buckets  # type: ignore[misc]
    rows = c.execute(
        "SELECT data FROM metric_tiers WHERE series_id = ? AND level = ? AND min_bucket <= ? "
        "AND max_bucket >= ?",
        (sid, plan.level, hi, lo),
    ).fetchall()
    tiers = agg.partials_from_blobs([r[0] for r in rows])
    edges = [read_points(c, sid, a, b) for a, b in plan.edges]
    edge = Series(
        *(
            np.concatenate([getattr(e, f) for e in edges] or [getattr(EMPTY, f)])
            for f in ("steps", "times", "values")
        )
    )
    result = m4.m4_from_tiers(tiers, plan, edge)
    if result.total_points <= small:
        return m4.unsampled(result, read_points(c, sid, start, end))
    return result


def series_of_run(
    c: sqlite3.Connection, key: str, names: Sequence[str] | None
) -> list[tuple[int, str]]:
    require_run(c, key)
    rows = c.execute("SELECT id, name FROM metric_series WHERE run_id = ? ORDER BY name", (key,))
    wanted = None if names is None else set(names)
    return [(sid, n) for sid, n in rows if wanted is None or n in wanted]


def block_chunks(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> list[list[int]]:
    """Group a series' blocks into chunks that can be sorted independently:
    blocks with overlapping step ranges stay together."""
    lo, hi = bounds(start, end)
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


def first_chunk(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> tuple[Series, list[list[int]]]:
    """The first chunk's points of a series and the block ids of the other chunks."""
    plan = block_chunks(c, sid, start, end, chunk_points)
    if not plan:
        return EMPTY, []
    return read_blocks(c, plan[0], start, end), plan[1:]


def read_blocks(
    c: sqlite3.Connection, ids: list[int], start: int | None, end: int | None
) -> Series:
    rows = c.execute(
        f"SELECT steps, times, vals FROM metric_blocks WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    ).fetchall()
    return filter_points(*decode(rows), start, end)


def system_metrics(
    c: sqlite3.Connection,
    key: str,
    types: Sequence[str] | None,
    start: int | None,
    end: int | None,
    limit: int | None,
) -> list[SystemSeries]:
    require_run(c, key)
    tlo, thi = bounds(start, end)
    sql = (
        "SELECT metric_type, time, value_bits, device, node FROM system_metrics "
        "WHERE run_id = ? AND time BETWEEN ? AND ?"
    )
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
