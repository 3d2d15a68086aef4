"""The PostgreSQL read path for metric points: binary COPY out, parsed by numpy.

Query values are inlined as literals (COPY takes no bind parameters); only
UUIDs, integers and quoted strings are ever inlined.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, TypeVar

import asyncpg
import numpy as np

from . import aggregates as agg
from . import m4
from .base import Downsampled, Series
from .postgres_copy import decode_fixed, strip_copy

_POINT_KINDS = ("i8", "ts", "f8")  # step, time, value
# Reads run PARALLEL_READS at a time on connections sharing one snapshot: the
# server's per-row scan and COPY output, not the client, bound one connection. A
# series of at least PARALLEL_POINTS points is itself split into step ranges;
# smaller series of a bulk read run side by side.
PARALLEL_POINTS = 200_000
PARALLEL_READS = 4
SEGMENT_POINTS = 1_000_000  # at most ~this many points per range (memory bound)
K = TypeVar("K")
_TIER_SELECT = ", ".join(agg.PARTIAL_FIELDS)
_TIER_KINDS = tuple("f8" if agg.PARTIAL_DTYPE[f].kind == "f" else "i8" for f in agg.PARTIAL_FIELDS)


def summary_from_record(r: asyncpg.Record) -> agg.Summary | None:
    """A ``metric_summaries`` row as an aggregates Summary (None when empty)."""
    if not r["count"]:
        return None
    nan = math.nan
    return agg.Summary(
        count=r["count"],
        finite_count=r["finite_count"],
        mean=nan if r["mean"] is None else r["mean"],
        m2=r["m2"] or 0.0,
        min_value=nan if r["min_value"] is None else r["min_value"],
        max_value=nan if r["max_value"] is None else r["max_value"],
        first_time=r["first_time"],
        last_time=r["last_time"],
        first_step=r["first_step"],
        last_step=r["last_step"],
        latest_step=r["latest_step"],
        latest_time=r["latest_time"],
        latest_value=r["latest_value"],
    )


def lit(value: uuid.UUID | int | str) -> str:
    """A safe SQL literal for a UUID, an int or a string."""
    if isinstance(value, uuid.UUID):
        return f"'{value}'::uuid"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL in string literal")
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"cannot inline {type(value).__name__}")


def _time_lit(us: int) -> str:
    return f"(timestamptz 'epoch' + {int(us)} * interval '1 microsecond')"


def concat_series(parts: list[Series]) -> Series:
    if not parts:
        return Series(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    return Series(
        *(np.concatenate([getattr(s, f) for s in parts]) for f in ("steps", "times", "values"))
    )


def points_query(
    run_id: uuid.UUID,
    name: str,
    *,
    start_step: int | None = None,
    end_step: int | None = None,
    start_time: int | None = None,
    end_time: int | None = None,
    limit: int | None = None,
) -> str:
    """SELECT step, time, value of one series ordered by (step, time)."""
    conds = [f"run_id = {lit(run_id)}", f"metric_name = {lit(name)}"]
    if start_step is not None:
        conds.append(f"step >= {lit(start_step)}")
    if end_step is not None:
        conds.append(f"step <= {lit(end_step)}")
    if start_time is not None:
        conds.append(f"time >= {_time_lit(start_time)}")
    if end_time is not None:
        conds.append(f"time <= {_time_lit(end_time)}")
    sql = f"SELECT step, time, value FROM metrics WHERE {' AND '.join(conds)} ORDER BY step, time"
    return sql + (f" LIMIT {lit(limit)}" if limit is not None else "")


async def copy_rows(
    conn: asyncpg.Connection, query: str, kinds: tuple[str, ...]
) -> list[np.ndarray]:
    """Run ``query`` through binary COPY and return its columns."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    await conn.copy_from_query(query, output=sink, format="binary")
    return decode_fixed(strip_copy(b"".join(chunks)), kinds)


async def read_series(conn: asyncpg.Connection, query: str) -> Series:
    steps, times, values = await copy_rows(conn, query, _POINT_KINDS)
    return Series(steps, times, values)


def step_ranges(lo: int, hi: int, points: int) -> list[tuple[int, int]]:
    """Split the step range [lo, hi] holding ``points`` points into parallel read
    ranges (equal widths; a multiple of PARALLEL_READS of them)."""
    if hi < lo:
        return []
    parts = PARALLEL_READS * max(1, -(-points // (PARALLEL_READS * SEGMENT_POINTS)))
    edges = [lo + (hi - lo + 1) * i // parts for i in range(parts + 1)]
    return [(a, b - 1) for a, b in itertools.pairwise(edges) if b > a]


def series_queries(
    run_id: uuid.UUID,
    name: str,
    s: agg.Summary,
    start_step: int | None,
    end_step: int | None,
    **filters: int | None,
) -> list[str]:
    """The point queries of one series within a step window: step ranges when the
    series has at least PARALLEL_POINTS points, else one query."""
    lo = s.first_step if start_step is None else max(start_step, s.first_step)
    hi = s.last_step if end_step is None else min(end_step, s.last_step)
    ranges = step_ranges(lo, hi, s.count) if s.count >= PARALLEL_POINTS else [(lo, hi)]
    return [points_query(run_id, name, start_step=a, end_step=b, **filters) for a, b in ranges]


@contextlib.asynccontextmanager
async def snapshot_reader(
    acquire: Callable[[], Any], snapshot: str
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection reading in the exported ``snapshot`` (read-only)."""
    async with acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SET TRANSACTION SNAPSHOT {lit(snapshot)}")
        yield conn


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The snapshot of ``conn``'s (repeatable read) transaction, for other connections."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))


async def read_ranges(
    acquire: Callable[[], Any],
    snapshot: str,
    queries: Iterable[tuple[K, str]],
) -> AsyncIterator[tuple[K, Series]]:
    """``(key, result)`` of each keyed query, in order, with up to PARALLEL_READS
    queries in flight (a finished read is held until the ones before it are taken)
    on connections sharing ``snapshot``."""

    async def one(query: str) -> Series:
        async with snapshot_reader(acquire, snapshot) as conn:
            return await read_series(conn, query)

    todo = iter(queries)
    window: collections.deque[tuple[K, asyncio.Task[Series]]] = collections.deque()

    def start() -> None:
        for key, query in itertools.islice(todo, PARALLEL_READS - len(window)):
            window.append((key, asyncio.ensure_future(one(query))))

    try:
        start()
        while window:
            key, task = window[0]
            part = await task
            window.popleft()
            start()
            yield key, part
    finally:
        for _, task in window:
            task.cancel()
        await asyncio.gather(*(task for _, task in window), return_exceptions=True)


async def read_tiers(
    conn: asyncpg.Connection, run_id: uuid.UUID, name: str, level: int, lo: int, hi: int
) -> np.ndarray:
    """Tier partials (:data:`aggregates.PARTIAL_DTYPE`) of one level and bucket range."""
    cols = await copy_rows(
        conn,
        f"SELECT {_TIER_SELECT} FROM metric_tiers WHERE run_id = {lit(run_id)} AND "
        f"metric_name = {lit(name)} AND level = {lit(level)} AND "
        f"bucket BETWEEN {lit(lo)} AND {lit(hi)}",
        _TIER_KINDS,
    )
    out = np.empty(len(cols[0]), agg.PARTIAL_DTYPE)
    for f, col in zip(agg.PARTIAL_FIELDS, cols, strict=False):
        out[f] = col
    return out


async def downsample(
    conn: asyncpg.Connection,
    run_id: uuid.UUID,
    name: str,
    buckets: int,
    start: int,
    end: int,
    series_count: int,
) -> Downsampled:
    """M4 over ``[start, end]`` from tiers plus raw edges (see :mod:`.m4`);
    ``series_count`` (all points of the series) short-cuts small series to raw."""
    plan = m4.plan_downsample(start, end, buckets)
    max_unsampled = 4 * buckets
    if plan.level is None or series_count <= max_unsampled:
        raw = await read_series(conn, points_query(run_id, name, start_step=start, end_step=end))
        return m4.m4_from_raw(raw, plan.width, max_unsampled=max_unsampled)
    lo, hi = plan.tier_buckets  # type: ignore[misc]
    tiers = await read_tiers(conn, run_id, name, plan.level, lo, hi)
    edges = [
        await read_series(conn, points_query(run_id, name, start_step=a, end_step=b))
        for a, b in plan.edges
    ]
    edge = concat_series(edges)
    result = m4.m4_from_tiers(tiers, plan, edge)
    if result.total_points <= max_unsampled:
        raw = await read_series(conn, points_query(run_id, name, start_step=start, end_step=end))
        return m4.unsampled(result, raw)
    return result


async def rechunk(
    parts: AsyncIterator[tuple[K, Series]], chunk_points: int
) -> AsyncIterator[tuple[K, Series]]:
    """The points of consecutive ``parts`` with the same key, in order, as Series
    of at most ``chunk_points`` (only a key's last one shorter); empty keys are skipped."""
    key: Any = None
    pending: list[Series] = []
    held = 0
    async for k, part in parts:
        if k != key and held:
            yield key, concat_series(pending)
            pending, held = [], 0
        key = k
        pending.append(part)
        held += len(part)
        while held >= chunk_points:
            cat = concat_series(pending)
            yield key, _slice(cat, 0, chunk_points)
            pending, held = [_slice(cat, chunk_points, held)], held - chunk_points
    if held:
        yield key, concat_series(pending)


def _slice(s: Series, a: int, b: int) -> Series:
    return Series(s.steps[a:b], s.times[a:b], s.values[a:b])
