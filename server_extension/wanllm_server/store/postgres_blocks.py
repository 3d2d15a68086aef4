"""PostgreSQL's packed rows (``sql/postgres/0008_packed_blocks.sql``): point
blocks and tier rows (as row tuples, binary COPY data or statement parameters),
and sealing a series' open tail.

A batch writes, per series, its points sorted by (step, time) as one packed
row (:mod:`.blocks`): into ``metric_blocks`` with their tier partials (one
``metric_tier_blocks`` row per level) when it holds at least
:data:`SMALL_BLOCK` points, else into ``metric_tail`` without tiers. Every
:data:`SEAL_WRITES` batches of a series (``metric_summaries.open_writes``) its
tail is sealed, by the writer that found it due, right after its batch
committed (:func:`seal_due`; in the batch's transaction when it has one):
once it holds ``SMALL_BLOCK`` points it moves to ``metric_blocks`` with its
tier partials, else it is merged into one tail row; tier rows under
:data:`SMALL_TIER` partials are merged per (level, bucket) meanwhile. A run's
tails are sealed when it ends. The tail is its own (plain, vacuumed) table, so
the blocks' hypertable is append-only. Readers add the tail's points to the
tiers (:mod:`.postgres_reads`). Sealing is a DELETE ... RETURNING and a COPY per
table in one transaction (a crash keeps either the tail or the seal) under the
series' seal lock (:data:`SEAL_LOCK`), so one seal runs a series at a time and
no writer waits for it.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from .. import offload
from . import aggregates as agg
from .blocks import decode_blocks, encode_block
from .blocks_batch import decode_partials_rows, encode_partials_rows
from .postgres_copy import Row, copy_rows

BLOCK_POINTS = 65_536  # points per block at most
SMALL_BLOCK = 512  # blocks with fewer points are the open tail
SMALL_TIER = 32  # tier rows with fewer partials are merged at seals
SEAL_WRITES = 32  # batches of a series between seals
SLOW_SECONDS = 1.0  # seals and seal-lock waits longer than this are logged (warning)
BLOCK_COLUMNS = ["time", "run_id", "metric_name", "n", "min_step", "max_step", "max_time",
                 "steps", "times", "vals", "metadata"]  # fmt: skip
BLOCK_KINDS = ("ts", "uuid", "text", "i4", "i8", "i8", "ts", "bytes", "bytes", "bytes", "jsonb")
TIER_COLUMNS = ["run_id", "metric_name", "level", "n", "min_bucket", "max_bucket", "data"]
TIER_KINDS = ("uuid", "text", "i2", "i4", "i8", "i8", "bytes")
Key = tuple[uuid.UUID, str]
Metadata = list[dict[str, Any] | None] | None
log = logging.getLogger(__name__)


def _segments(*keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of equal consecutive keys."""
    n = len(keys[0])
    if n == 0:
        return []
    starts = agg.segment_starts(*keys).tolist()
    return list(zip(starts, [*starts[1:], n], strict=True))


def block_rows(
    keys: Sequence[Key],
    group: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: Metadata,
) -> list[Row]:
    """Rows (:data:`BLOCK_COLUMNS`) of blocks of points sorted by (group, step,
    time); series ``g`` is ``keys[g]``."""
    rows: list[Row] = []
    for s0, e0 in _segments(group):
        rid, name = keys[int(group[s0])]
        for s in range(s0, e0, BLOCK_POINTS):
            e = min(s + BLOCK_POINTS, e0)
            meta = None
            if md is not None:
                meta = [[i - s, m] for i in range(s, e) if (m := md[i]) is not None] or None
            bt = tm[s:e]
            rows.append((int(bt.min()), rid, name, e - s, int(st[s]), int(st[e - 1]),
                         int(bt.max()), *encode_block(st[s:e], bt, v[s:e]), meta))  # fmt: skip
    return rows


def tier_rows(keys: Sequence[Key], t: agg.TierRows) -> list[Row]:
    """Rows (:data:`TIER_COLUMNS`) of tier partials, one per (series, level); ``t``
    ordered by (group, level, bucket) as :func:`.aggregates.tier_rows` makes them."""
    segments = _segments(t.group, t.level)
    if not segments:
        return []
    data = encode_partials_rows(t.partials, np.array([s for s, _ in segments], np.int64))
    bucket = t.partials["bucket"].tolist()
    rows: list[Row] = []
    for (s, e), packed in zip(segments, data, strict=True):
        rid, name = keys[int(t.group[s])]
        rows.append((rid, name, int(t.level[s]), e - s, bucket[s], bucket[e - 1], packed))
    return rows


@dataclass(slots=True)
class Encoded:
    """Rows of sealed blocks, of the open tail (both :data:`BLOCK_COLUMNS`) and of
    tier partials (:data:`TIER_COLUMNS`)."""

    blocks: list[Row] = field(default_factory=list)
    tail: list[Row] = field(default_factory=list)
    tiers: list[Row] = field(default_factory=list)


def _sorted(
    group: np.ndarray, steps: np.ndarray, times: np.ndarray, values: np.ndarray, md: Metadata
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Metadata]:
    order = agg.sort_order(group, steps, times)
    md = None if md is None else [md[i] for i in order.tolist()]
    return group[order], steps[order], times[order], values[order], md


def _split(
    keys: Sequence[Key],
    gs: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: Metadata,
    sealed: np.ndarray,
    old_tiers: np.ndarray | None = None,
) -> Encoded:
    """Sorted points as sealed blocks + their tier rows (the series where
    ``sealed[group]``) and tail rows (the others)."""
    out: list[list[Row]] = []
    mask = sealed[gs]
    for sel in (mask, ~mask):
        if not sel.any():
            out.append([])
            continue
        m = md if md is None or sel.all() else [md[i] for i in np.flatnonzero(sel).tolist()]
        out.append(block_rows(keys, gs[sel], st[sel], tm[sel], v[sel], m))
    t = agg.tier_rows(gs[mask], st[mask], tm[mask], v[mask], presorted=True)
    if old_tiers is not None and len(old_tiers):
        t = agg.merge_tier_rows(agg.TierRows(
            np.concatenate([t.group, old_tiers["group"]]),
            np.concatenate([t.level, old_tiers["level"]]),
            agg.concat_partials([t.partials, old_tiers["partial"]]),
        ))  # fmt: skip
    return Encoded(out[0], out[1], tier_rows(keys, t))


def encode_points(
    keys: Sequence[Key],
    group: np.ndarray,
    steps: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    metadata: Metadata,
) -> Encoded:
    """Blocks, tail and tier rows of a batch's points of series ``keys[group]``."""
    if len(values) == 0:
        return Encoded()
    sealed = np.bincount(group, minlength=len(keys)) >= SMALL_BLOCK
    return _split(keys, *_sorted(group, steps, times, values, metadata), sealed)


def tiers_of(keys: Sequence[Key], group: np.ndarray, st: np.ndarray, tm: np.ndarray,
             v: np.ndarray) -> Encoded:  # fmt: skip
    """Tier rows of all the points of series ``keys[group]`` (any order)."""
    return Encoded(tiers=tier_rows(keys, agg.tier_rows(group, st, tm, v)))


async def copy_encoded(conn: asyncpg.Connection, e: Encoded) -> None:
    """COPY of ``e``'s rows into their tables (:func:`.postgres_copy.copy_rows`)."""
    for table, columns, kinds, rows in (
        ("metric_blocks", BLOCK_COLUMNS, BLOCK_KINDS, e.blocks),
        ("metric_tail", BLOCK_COLUMNS, BLOCK_KINDS, e.tail),
        ("metric_tier_blocks", TIER_COLUMNS, TIER_KINDS, e.tiers),
    ):
        if rows:
            await copy_rows(conn, table, columns, kinds, rows)


_SERIES = "(run_id, metric_name) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"


def _decode_rows(
    keys: list[Key], rows: list[asyncpg.Record]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Metadata]:
    """Group (index into ``keys``), steps, times, values and metadata of the
    points of block rows."""
    index = {k: i for i, k in enumerate(keys)}
    group = np.repeat(
        np.array([index[(r["run_id"], r["metric_name"])] for r in rows], np.int64),
        [r["n"] for r in rows],
    )
    st, tm, v = decode_blocks([(r["steps"], r["times"], r["vals"], r["n"]) for r in rows])
    md: Metadata = None
    if any(r["metadata"] for r in rows):
        md, offset = [None] * len(v), 0
        for r in rows:
            for i, m in r["metadata"] or ():
                md[offset + i] = m
            offset += r["n"]
    return group, st, tm, v, md


def _old_tiers(keys: list[Key], rows: list[asyncpg.Record]) -> np.ndarray:
    """The partials of tier rows with their series and level."""
    index = {k: i for i, k in enumerate(keys)}
    counts = [r["n"] for r in rows]
    out = np.empty(sum(counts), [("group", np.int64), ("level", np.int64),
                                 ("partial", agg.PARTIAL_DTYPE)])  # fmt: skip
    out["group"] = np.repeat(
        np.array([index[(r["run_id"], r["metric_name"])] for r in rows], np.int64), counts
    )
    out["level"] = np.repeat(np.array([r["level"] for r in rows], np.int64), counts)
    out["partial"] = decode_partials_rows([(r["data"], r["n"]) for r in rows])
    return out


_TAIL_COLUMNS = "run_id, metric_name, n, steps, times, vals, metadata"


def _resealed(
    keys: list[Key], tail: list[asyncpg.Record], tiers: list[asyncpg.Record], force: bool
) -> Encoded:
    """The rows replacing ``tail`` and the small ``tiers`` rows (CPU work: run off
    the event loop)."""
    group, st, tm, v, md = _decode_rows(keys, tail)
    sealed = (np.bincount(group, minlength=len(keys)) >= SMALL_BLOCK) | force
    return _split(keys, *_sorted(group, st, tm, v, md), sealed, _old_tiers(keys, tiers))


async def seal(conn: asyncpg.Connection, keys: list[Key], *, force: bool = False) -> None:
    """Seal the tails of series ``keys`` (all of them when ``force``, else those
    of at least SMALL_BLOCK points; the others become one tail row) and merge
    their small tier rows, in the caller's transaction. The caller holds their
    seal locks (:func:`lock_series`)."""
    if not keys:
        return
    t0 = time.perf_counter()
    rids, names = [k[0] for k in keys], [k[1] for k in keys]
    tail = await conn.fetch(
        f"DELETE FROM metric_tail WHERE {_SERIES} RETURNING {_TAIL_COLUMNS}", rids, names
    )
    tiers = await conn.fetch(
        f"DELETE FROM metric_tier_blocks WHERE {_SERIES} AND n < $3 "
        "RETURNING run_id, metric_name, level, n, data",
        rids, names, SMALL_TIER,
    )  # fmt: skip
    points = sum(r["n"] for r in tail) + sum(r["n"] for r in tiers)
    encoded = await offload.maybe(points, _resealed, keys, tail, tiers, force)
    await copy_encoded(conn, encoded)
    if (took := time.perf_counter() - t0) > SLOW_SECONDS:
        log.warning("seal of %d series (%d points) took %.2f s", len(keys), points, took)


# A series' seal lock: a transaction-level advisory lock (class SEAL_LOCK, key the
# hash of the series), taken by seals only. Writers never wait on a seal: they
# take no advisory lock, and a seal locks no row a writer touches (it deletes
# tail and small tier rows, which writers only insert).
SEAL_LOCK = 0x5EA1
_HASH = "hashtext(u.r::text || '/' || u.m)"
_TRY_LOCK = f"""
WITH found AS MATERIALIZED (  -- the runs first (a run being deleted or ended waits for us)
    SELECT id FROM runs WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE
)
SELECT u.r AS run_id, u.m AS metric_name, pg_try_advisory_xact_lock({SEAL_LOCK}, {_HASH}) AS got
FROM unnest($1::uuid[], $2::text[]) AS u(r, m) WHERE u.r IN (SELECT id FROM found)
"""
_LOCK = f"""
SELECT count(pg_advisory_xact_lock({SEAL_LOCK}, h)) FROM (
    SELECT DISTINCT {_HASH} AS h FROM unnest($1::uuid[], $2::text[]) AS u(r, m) ORDER BY h
) s
"""


async def lock_series(conn: asyncpg.Connection, keys: Sequence[Key]) -> None:
    """Take the seal locks of series ``keys`` until the transaction ends, waiting
    for seals under way (in hash order: two callers cannot deadlock)."""
    t0 = time.perf_counter()
    await conn.execute(_LOCK, [k[0] for k in keys], [k[1] for k in keys])
    if (took := time.perf_counter() - t0) > SLOW_SECONDS:
        log.warning("waited %.2f s for the seal locks of %d series", took, len(keys))


def _lost_race(e: asyncpg.PostgresError) -> bool:
    """A deadlock or serialization failure: the seal is rolled back and left to a
    later write or to the run's end."""
    return isinstance(e, asyncpg.DeadlockDetectedError | asyncpg.SerializationError)


async def seal_due(conn: asyncpg.Connection, keys: list[Key]) -> list[Key]:
    """Seal, in a transaction of its own, the tails of series ``keys`` (their
    writer found them due, after its batch committed). Series whose seal lock
    another seal holds, or whose run was deleted, are skipped: nobody waits.
    Return the series sealed."""
    try:
        async with conn.transaction():
            rows = await conn.fetch(_TRY_LOCK, [k[0] for k in keys], [k[1] for k in keys])
            sealed = [(r["run_id"], r["metric_name"]) for r in rows if r["got"]]
            await seal(conn, sealed)
    except asyncpg.PostgresError as e:
        if not _lost_race(e):
            raise
        log.warning("seal of %d series rolled back (%s); left for later", len(keys), e)
        return []
    return sealed


async def seal_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    """Seal every tail of a run (it ended: its tail would wait for nothing), in
    the caller's transaction, which holds the run's row locked."""
    rows = await conn.fetch("SELECT metric_name FROM metric_summaries WHERE run_id = $1", run_id)
    keys = [(run_id, r["metric_name"]) for r in rows]
    await lock_series(conn, keys)
    await seal(conn, keys, force=True)


async def trim_before(conn: asyncpg.Connection, table: str, cutoff: int) -> int:
    """Drop the points older than ``cutoff`` from rows of ``table`` (blocks or
    tail) that also hold newer ones, so every row starting before it ends before
    it; return how many points were dropped."""
    rows = await conn.fetch(
        f"DELETE FROM {table} WHERE time < $1 AND max_time >= $1 RETURNING {_TAIL_COLUMNS}",
        cutoff,
    )
    if not rows:
        return 0
    keys = sorted({(r["run_id"], r["metric_name"]) for r in rows}, key=lambda k: (k[0].bytes, k[1]))
    gs, st, tm, v, md = _sorted(*_decode_rows(keys, list(rows)))
    keep = tm >= cutoff
    if md is not None:
        md = [md[i] for i in np.flatnonzero(keep).tolist()]
    kept = block_rows(keys, gs[keep], st[keep], tm[keep], v[keep], md)
    await copy_encoded(
        conn, Encoded(blocks=kept) if table == "metric_blocks" else Encoded(tail=kept)
    )
    return len(keep) - int(keep.sum())
