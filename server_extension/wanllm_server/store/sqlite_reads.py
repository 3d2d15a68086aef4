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
from .blocks import EMPTY, bounds, concat_series, decode_blocks, filter_points, outside
from .blocks_batch import decode_partials_rows
from .sqlite_blocks import SERIES_COLS, summary_from_row
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


_POINTS = (
    "SELECT n, steps, times, vals FROM {} WHERE series_id = ?1 AND min_step <= ?2 "
    "AND max_step >= ?3 AND min_time <= ?4 AND max_time >= ?5"
)
_BOTH = f"{_POINTS.format('metric_blocks')} UNION ALL {_POINTS.format('metric_tail')}"


def read_points(
    c: sqlite3.Connection,
    sid: int,
    start_step: int | None,
    end_step: int | None,
    start_time: int | None = None,
    end_time: int | None = None,
    *,
    sql: str = _BOTH,
) -> Series:
    """A series' points within the bounds, sorted (``sql``: from sealed blocks and
    the tail, or from one of them)."""
    lo, hi = bounds(start_step, end_step)
    tlo, thi = bounds(start_time, end_time)
    rows = c.execute(sql, (sid, hi, lo, thi, tlo)).fetchall()
    points = decode_blocks([(r[1], r[2], r[3], r[0]) for r in rows])
    return filter_points(*points, start_step, end_step, start_time, end_time)


def downsample(
    c: sqlite3.Connection, key: str, name: str, buckets: int, start: int | None, end: int | None
) -> Downsampled:
    """M4 over ``[start, end]`` from the tiers plus raw edges (see :mod:`.m4`)
    plus the tail's points (not in the tiers)."""
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
        "SELECT data, n FROM metric_tiers WHERE series_id = ? AND level = ? AND min_bucket <= ? "
        "AND max_bucket >= ?",
        (sid, plan.level, hi, lo),
    ).fetchall()
    edges = [read_points(c, sid, a, b) for a, b in plan.edges]
    tail = read_points(c, sid, start, end, sql=_POINTS.format("metric_tail"))
    edge = concat_series([*edges, outside(tail, plan.edges)])
    result = m4.m4_from_tiers(decode_partials_rows(rows), plan, edge)
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


def chunk_ranges(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> list[tuple[int, int]]:
    """Consecutive step ranges covering ``[start, end]``, each of about
    ``chunk_points`` points or one row's: a range ends where no row (sealed
    block or tail) spans past it, so ranges read in order are in step order."""
    lo, hi = bounds(start, end)
    rows = c.execute(
        "SELECT n, min_step, max_step FROM metric_blocks WHERE series_id = ?1 AND min_step <= ?2 "
        "AND max_step >= ?3 UNION ALL SELECT n, min_step, max_step FROM metric_tail "
        "WHERE series_id = ?1 AND min_step <= ?2 AND max_step >= ?3 ORDER BY min_step",
        (sid, hi, lo),
    ).fetchall()
    out: list[tuple[int, int]] = []
    first, size, reach = lo, 0, lo
    for n, mn, mx in rows:
        if size and mn > reach and size + n > chunk_points:
            out.append((first, reach))
            first, size = reach + 1, 0
        size += n
        reach = max(reach, mx)
    return [*out, (first, hi)] if rows else []


def first_chunk(
    c: sqlite3.Connection, sid: int, start: int | None, end: int | None, chunk_points: int
) -> tuple[Series, list[tuple[int, int]]]:
    """The first chunk's points of a series and the step ranges of the others."""
    plan = chunk_ranges(c, sid, start, end, chunk_points)
    if not plan:
        return EMPTY, []
    return read_points(c, sid, *plan[0]), plan[1:]


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
