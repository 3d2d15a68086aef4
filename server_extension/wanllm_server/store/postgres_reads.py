"""The PostgreSQL read path for metric points: packed blocks and tier rows
(:mod:`.postgres_blocks`) decoded by numpy, off the event loop when large.

A read fetches the blocks of a series overlapping its step window and keeps
the points within its bounds, in (step, time) order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg

from .. import offload
from . import aggregates as agg
from .base import Series
from .blocks import (
    EMPTY,
    TAG_CONST,
    bounds,
    concat_series,
    decode_floats,
    decode_ints,
    filter_points,
)

# Reads run PARALLEL_READS at a time on connections sharing one snapshot (their
# decoding in worker threads). A series of at least PARALLEL_POINTS points is
# itself split into step ranges; smaller series of a bulk read run side by side.
PARALLEL_POINTS = 200_000
PARALLEL_READS = 4
SEGMENT_POINTS = 1_000_000  # at most ~this many points per range (memory bound)
K = TypeVar("K")


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


_SNAPSHOT_ID = re.compile(r"[0-9A-F]{1,16}(-[0-9A-F]{1,16}){1,3}")  # pg_export_snapshot()'s form


def snapshot_literal(snapshot: str) -> str:
    """``snapshot`` as the quoted literal ``SET TRANSACTION SNAPSHOT`` takes (a
    utility statement: no bind parameters); ValueError unless it has the form
    ``pg_export_snapshot()`` returns (hex groups joined by ``-``), so nothing
    else reaches the statement's text."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot[:64]!r}")
    return f"'{snapshot}'"


@dataclass(frozen=True, slots=True)
class PointRead:
    """The points of one series within inclusive bounds (None: unbounded), in
    (step, time) order, at most ``limit`` of them. ``in_summary``: the blocks are
    looked for only within the time range of the series' summary (for readers
    that found the summary: other runs' chunks are skipped)."""

    run_id: uuid.UUID
    name: str
    start_step: int | None = None
    end_step: int | None = None
    start_time: int | None = None
    end_time: int | None = None
    limit: int | None = None
    in_summary: bool = False

    def select(self, rows: list[BlockRow]) -> Series:
        s = block_points(rows)
        s = filter_points(
            s.steps, s.times, s.values, self.start_step, self.end_step, self.start_time,
            self.end_time,
        )  # fmt: skip
        if self.limit is not None and len(s) > self.limit:
            s = Series(s.steps[: self.limit], s.times[: self.limit], s.values[: self.limit])
        return s


BlockRow = tuple[bytes, bytes, bytes, int, int]  # steps, times, values, n, points skipped
SERIES = "run_id = $1 AND metric_name = $2"
# Blocks only within the series' time range: TimescaleDB skips other chunks at run time.
IN_SERIES_TIMES = (
    f" AND time >= (SELECT first_time FROM metric_summaries WHERE {SERIES})"
    f" AND time <= (SELECT last_time FROM metric_summaries WHERE {SERIES})"
)
# One point a step: steps a constant column (blocks.TAG_CONST) spanning n steps, raw values.
_DENSE = (
    f"length(steps) = 17 AND get_byte(steps, 0) = {TAG_CONST}"
    " AND max_step::numeric - min_step = n - 1 AND length(vals) = 8 * n"  # numeric: no overflow
)


def cut_values(first: str, last: str) -> tuple[str, str]:
    """SQL of a block's values from step ``first`` to ``last`` (expressions within
    or around the block's steps) when it holds one point a step, else all of
    them; and of the points skipped before them. A read wanting a few points of a
    large block gets those (of an uncompressed TOAST value PostgreSQL reads only
    the chunks holding them)."""
    skip = f"greatest({first}, min_step) - min_step"
    count = f"least({last}, max_step) - min_step - ({skip}) + 1"
    cut = f"substring(vals FROM (8 * ({skip}) + 1)::int FOR (8 * ({count}))::int)"
    return (
        f"CASE WHEN {_DENSE} THEN {cut} ELSE vals END",
        f"CASE WHEN {_DENSE} THEN {skip} ELSE 0 END",
    )


def block_points(rows: Iterable[BlockRow]) -> Series:
    """The points of block rows, all of a row's or those its values were cut to."""
    parts = []
    for steps, times, vals, n, skip in rows:
        k = len(vals) // 8 if len(vals) % 8 == 0 else n  # not raw: never cut
        cut = slice(skip, skip + k)
        parts.append(
            Series(decode_ints(steps, n)[cut], decode_ints(times, n)[cut], decode_floats(vals, k))
        )
    return concat_series(parts) if parts else EMPTY


_VALS, _SKIP = cut_values("$4", "$3")
_BLOCKS = (
    f"SELECT steps, times, {_VALS}, n, {_SKIP}, min_step, max_step FROM metric_blocks"
    f" WHERE {SERIES} AND min_step <= $3 AND max_step >= $4"
)
_TAIL = (
    "SELECT steps, times, vals, n, 0::int8, min_step, max_step FROM metric_tail"
    f" WHERE {SERIES} AND min_step <= $3 AND max_step >= $4"
)
POINTS_SQL = {
    bounded: f"{_BLOCKS}{IN_SERIES_TIMES if bounded else ''} UNION ALL {_TAIL}"
    " ORDER BY min_step, max_step"
    for bounded in (False, True)
}


async def read_series(conn: asyncpg.Connection, q: PointRead) -> Series:
    """The points of ``q`` in sealed blocks and the tail, decoded in a worker
    thread when many."""
    lo, hi = bounds(q.start_step, q.end_step)
    fetched = await conn.fetch(POINTS_SQL[q.in_summary], q.run_id, q.name, hi, lo)
    rows: list[BlockRow] = [(r[0], r[1], r[2], r[3], r[4]) for r in fetched]
    return await offload.maybe(sum(len(r[2]) // 8 for r in rows), q.select, rows)


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
) -> list[PointRead]:
    """The point reads of one series within a step window: step ranges when the
    series has at least PARALLEL_POINTS points, else one read."""
    lo = s.first_step if start_step is None else max(start_step, s.first_step)
    hi = s.last_step if end_step is None else min(end_step, s.last_step)
    ranges = step_ranges(lo, hi, s.count) if s.count >= PARALLEL_POINTS else [(lo, hi)]
    return [PointRead(run_id, name, a, b, **filters, in_summary=True) for a, b in ranges]


@contextlib.asynccontextmanager
async def snapshot_reader(
    acquire: Callable[[], Any], snapshot: str
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection reading in the exported ``snapshot`` (read-only)."""
    async with acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SET TRANSACTION SNAPSHOT {snapshot_literal(snapshot)}")
        yield conn


async def export_snapshot(conn: asyncpg.Connection) -> str:
    """The snapshot of ``conn``'s (repeatable read) transaction, for other connections."""
    return str(await conn.fetchval("SELECT pg_export_snapshot()"))


async def read_ranges(
    acquire: Callable[[], Any],
    snapshot: str,
    queries: Iterable[tuple[K, PointRead]],
) -> AsyncIterator[tuple[K, Series]]:
    """``(key, result)`` of each keyed read, in order, with up to PARALLEL_READS
    queries in flight (a finished read is held until the ones before it are taken)
    on connections sharing ``snapshot``."""

    async def one(query: PointRead) -> Series:
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
