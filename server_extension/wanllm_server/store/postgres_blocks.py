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
once it holds ``SMALL_BLOCK``
points it moves to ``metric_blocks`` with its tier partials, else it is merged
into one tail row; tier rows under :data:`SMALL_TIER` partials are merged per
(level, bucket) meanwhile. A run's tails are sealed when it ends. The tail is
its own (plain, vacuumed) table, so the blocks' hypertable is append-only.
Readers add the tail's points to the tiers
(:mod:`.postgres_reads`). Sealing is a DELETE ... RETURNING and a COPY per
table in one transaction (a crash keeps either the tail or the seal), with the
series' summary row locked, so one writer seals a series at a time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from .. import offload
from . import aggregates as agg
from .blocks import decode_blocks, encode_block, encode_partials
from .blocks_batch import decode_partials_rows
from .postgres_copy import Row, copy_rows

BLOCK_POINTS = 65_536  # points per block at most
SMALL_BLOCK = 512  # blocks with fewer points are the open tail
SMALL_TIER = 32  # tier rows with fewer partials are merged at seals
SEAL_WRITES = 32  # batches of a series between seals
BLOCK_COLUMNS = ["time", "run_id", "metric_name", "n", "min_step", "max_step", "max_time",
                 "steps", "times", "vals", "metadata"]  # fmt: skip
BLOCK_KINDS = ("ts", "uuid", "text", "i4", "i8", "i8", "ts", "bytes", "bytes", "bytes", "jsonb")
TIER_COLUMNS = ["run_id", "metric_name", "level", "n", "min_bucket", "max_bucket", "data"]
TIER_KINDS = ("uuid", "text", "i2", "i4", "i8", "i8", "bytes")
Key = tuple[uuid.UUID, str]
Metadata = list[dict[str, Any] | None] | None


def _segments(*keys: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of the runs of equal consecutive keys."""
    n = len(keys[0])
    if n == 0:
        return []
    change = np.zeros(n, bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    starts = np.flatnonzero(change).tolist()
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
    rows: list[Row] = []
    for s, e in _segments(t.group, t.level):
        rid, name = keys[int(t.group[s])]
        p = t.partials[s:e]
        rows.append((rid, name, int(t.level[s]), e - s, int(p["bucket"].min()),
                     int(p["bucket"].max()), encode_partials(p)))  # fmt: skip
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
) -> tuple[Encoded, list[int]]:
    """The rows replacing ``tail`` and the small ``tiers`` rows, and per series
    whether a tail row stays open (CPU work: run off the event loop)."""
    group, st, tm, v, md = _decode_rows(keys, tail)
    counts = np.bincount(group, minlength=len(keys))
    sealed = (counts >= SMALL_BLOCK) | force
    encoded = _split(keys, *_sorted(group, st, tm, v, md), sealed, _old_tiers(keys, tiers))
    return encoded, ((counts > 0) & ~sealed).astype(np.int32).tolist()


async def seal(conn: asyncpg.Connection, keys: list[Key], *, force: bool = False) -> None:
    """Seal the tails of series ``keys`` (all of them when ``force``, else those
    of at least SMALL_BLOCK points; the others become one tail row) and merge
    their small tier rows. The caller holds their summary rows locked."""
    if not keys:
        return
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
    encoded, open_rows = await offload.maybe(points, _resealed, keys, tail, tiers, force)
    await copy_encoded(conn, encoded)
    await conn.execute(
        "UPDATE metric_summaries s SET open_writes = u.o"
        " FROM unnest($1::uuid[], $2::text[], $3::int4[]) AS u(r, m, o)"
        " WHERE s.run_id = u.r AND s.metric_name = u.m",
        rids, names, open_rows,
    )  # fmt: skip


async def seal_due(conn: asyncpg.Connection, keys: list[Key]) -> None:
    """Seal, in a transaction of its own, the tails of those of series ``keys``
    (in lock order) still due once their summary rows are locked (a concurrent
    writer may have sealed them meanwhile)."""
    async with conn.transaction():
        rows = await conn.fetch(
            f"SELECT run_id, metric_name FROM metric_summaries WHERE {_SERIES}"
            ' AND open_writes >= $3 ORDER BY run_id, metric_name COLLATE "C" FOR UPDATE',
            [k[0] for k in keys], [k[1] for k in keys], SEAL_WRITES,
        )  # fmt: skip
        await seal(conn, [(r["run_id"], r["metric_name"]) for r in rows])


async def seal_run(conn: asyncpg.Connection, run_id: uuid.UUID) -> None:
    """Seal every tail of a run (it ended: its tail would wait for nothing)."""
    rows = await conn.fetch(
        "SELECT metric_name FROM metric_summaries WHERE run_id = $1"
        ' ORDER BY metric_name COLLATE "C" FOR UPDATE',  # the writers' lock order
        run_id,
    )
    await seal(conn, [(run_id, r["metric_name"]) for r in rows], force=True)


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
