"""SQLite's block/tier engine (``sql/sqlite/0003_packed_blocks.sql``): points in
packed blocks (:mod:`.blocks`, the codec PostgreSQL uses), packed M4 tier
partials, the per-series summary row, and sealing series' open tails.

A batch writes, per series, its points sorted by (step, time) as one packed
row of ``metric_tail`` (no tiers). A series' tail is sealed in the writing
transaction once it holds :data:`SEAL_POINTS` points, or, every
:data:`SEAL_WRITES` batches of the series, once it holds :data:`SEAL_MIN`
points (else its rows become one tail row), and when its run ends: its
points become ``metric_blocks`` rows of at most :data:`BLOCK_POINTS` points
with their tier partials. The series due in one batch are sealed together
(one statement, one encoding pass, :mod:`.blocks_batch`). Tier rows under
:data:`SMALL_TIER` partials are merged once a (series, level) has
:data:`MERGE_ROWS` of them or SMALL_TIER partials in them, so a level keeps a
few rows of about SMALL_TIER partials (what a chart query decodes) and a seal
re-encodes little. Readers add the tail's points to the tiers (:mod:`.sqlite_reads`). A
crash inside a seal rolls back its whole batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from . import aggregates as agg
from .blocks import EMPTY, decode_blocks, encode_block
from .blocks_batch import decode_partials_rows, encode_partials_rows

BLOCK_POINTS = 4_096  # points a block at most (edge reads decode whole blocks)
SEAL_POINTS = 8_192  # a tail this large is sealed at once
SEAL_MIN = 1_024  # ... a smaller one only every SEAL_WRITES batches, from this size
SEAL_WRITES = 32  # batches of a series between seal checks
SMALL_TIER = 512  # tier rows with fewer partials are "small" (a full tail's level 4 is not)
MERGE_ROWS = 8  # ... merged at a seal once a (series, level) has this many or SMALL_TIER partials
SERIES_COLS = (
    "count, finite_count, mean, m2, min_value, max_value, first_time, last_time, first_step, "
    "last_step, latest_step, latest_time, latest_bits"
)
BLOCK_COLS = "n, steps, times, vals, metadata"
Metadata = list[dict[str, Any] | None] | None
_NO_POINTS = (np.empty(0, np.int64), EMPTY.steps, EMPTY.times, EMPTY.values)


def bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


def from_bits(b: int) -> float:
    return float(np.int64(b).view(np.float64))


def nan(x: float | None) -> float:
    return float("nan") if x is None else x


def sql_real(x: float) -> float | None:
    return None if x != x else x


def summary_from_row(r: Sequence[Any]) -> agg.Summary:
    return agg.Summary(
        r[0], r[1], nan(r[2]), nan(r[3]), nan(r[4]), nan(r[5]), r[6], r[7], r[8], r[9],
        r[10], r[11], from_bits(r[12]),
    )  # fmt: skip


def summary_params(s: agg.Summary) -> tuple[Any, ...]:
    return (
        s.count, s.finite_count, sql_real(s.mean), sql_real(s.m2), sql_real(s.min_value),
        sql_real(s.max_value), s.first_time, s.last_time, s.first_step, s.last_step,
        s.latest_step, s.latest_time, bits(s.latest_value),
    )  # fmt: skip


def insert_blocks(
    c: sqlite3.Connection,
    table: str,
    ids: Sequence[int],
    gs: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: Metadata,
) -> None:
    """Insert points sorted by (group, step, time) into ``table`` (``metric_blocks``
    or ``metric_tail``) as packed rows of at most BLOCK_POINTS points a group."""
    if len(gs) == 0:
        return
    starts = np.flatnonzero(np.concatenate(([True], gs[1:] != gs[:-1]))).tolist()
    rows = []
    for s0, e0 in zip(starts, [*starts[1:], len(gs)], strict=True):
        for s in range(s0, e0, BLOCK_POINTS):
            e = min(s + BLOCK_POINTS, e0)
            meta = None
            if md is not None:
                items = [[i - s, m] for i in range(s, e) if (m := md[i]) is not None]
                meta = orjson.dumps(items).decode() if items else None
            bt = tm[s:e]
            rows.append(
                (ids[int(gs[s])], e - s, int(st[s]), int(st[e - 1]), int(bt.min()),
                 int(bt.max()), *encode_block(st[s:e], bt, v[s:e]), meta)
            )  # fmt: skip
    c.executemany(
        f"INSERT INTO {table} (series_id, n, min_step, max_step, min_time, max_time, steps, "
        "times, vals, metadata) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def insert_tiers(c: sqlite3.Connection, ids: Sequence[int], tr: agg.TierRows) -> None:
    """Insert tier partials ordered by (group, level, bucket), one packed row a
    (series, level)."""
    if len(tr) == 0:
        return
    starts = agg.segment_starts(tr.group, tr.level)
    b = tr.partials["bucket"]
    last = np.append(starts[1:], len(tr)) - 1
    rows = zip(
        [ids[g] for g in tr.group[starts].tolist()], tr.level[starts].tolist(),
        np.diff(np.append(starts, len(tr))).tolist(), b[starts].tolist(), b[last].tolist(),
        encode_partials_rows(tr.partials, starts), strict=True,
    )  # fmt: skip
    c.executemany(
        "INSERT INTO metric_tiers (series_id, level, n, min_bucket, max_bucket, data) "
        "VALUES (?,?,?,?,?,?)",
        rows,
    )


def decode_with_metadata(
    rows: Sequence[tuple[int, bytes, bytes, bytes, str | None]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Metadata]:
    """Concatenated points of block rows (:data:`BLOCK_COLS`), and their metadata
    (None when none has any)."""
    st, tm, v = decode_blocks([(r[1], r[2], r[3], r[0]) for r in rows])
    md: Metadata = None
    if any(r[4] for r in rows):
        md, offset = [None] * len(v), 0
        for r in rows:
            for i, m in orjson.loads(r[4]) if r[4] else ():
                md[offset + i] = m
            offset += r[0]
    return st, tm, v, md


def sort_points(
    st: np.ndarray, tm: np.ndarray, v: np.ndarray, md: Metadata
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Metadata]:
    order = np.lexsort((tm, st))
    return st[order], tm[order], v[order], None if md is None else [md[i] for i in order.tolist()]


def take_rows(
    c: sqlite3.Connection, table: str, sid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Metadata]:
    """Delete a series' rows of ``table``; return their points, unsorted."""
    rows = c.execute(
        f"DELETE FROM {table} WHERE series_id = ? RETURNING {BLOCK_COLS}", (sid,)
    ).fetchall()
    return decode_with_metadata(rows)


def _in(ids: Sequence[int]) -> str:
    return f"series_id IN ({','.join('?' * len(ids))})"


def pick_metadata(md: Metadata, mask: np.ndarray) -> Metadata:
    return None if md is None else [m for m, k in zip(md, mask.tolist(), strict=True) if k]


def _storage_order(gs: np.ndarray, st: np.ndarray, tm: np.ndarray) -> np.ndarray:
    """:func:`.aggregates.sort_order` of points whose series' runs (tail rows,
    the batch's part) are sorted: a stable sort by series, checked, usually does."""
    order = np.argsort(gs, kind="stable")
    g, s, t = gs[order], st[order], tm[order]
    same = g[1:] == g[:-1]
    later = (s[1:] > s[:-1]) | ((s[1:] == s[:-1]) & (t[1:] >= t[:-1]))
    return order if (~same | later).all() else agg.sort_order(gs, st, tm)


def seal(
    c: sqlite3.Connection,
    sids: Sequence[int],
    batch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    md: Metadata,
    force: np.ndarray,
) -> None:
    """Seal the tails of series ``sids`` plus ``batch`` (group, step, time, value:
    a batch's points of series ``sids[group]`` in storage order, not yet
    stored, with metadata ``md``): a series' points become sealed blocks and
    tiers when ``force[group]`` or they are SEAL_MIN or more, else one tail row."""
    rows = c.execute(
        f"DELETE FROM metric_tail WHERE {_in(sids)} RETURNING series_id, {BLOCK_COLS}", sids
    ).fetchall()
    gs, st, tm, v = batch
    if rows:  # the tails' points, then the batch's, in storage order
        at = {sid: g for g, sid in enumerate(sids)}
        old_g = np.repeat(np.array([at[r[0]] for r in rows], np.int64), [r[1] for r in rows])
        ost, otm, ov, old_md = decode_with_metadata([r[1:] for r in rows])
        if md is not None or old_md is not None:
            md = [*(old_md or [None] * len(ov)), *(md or [None] * len(gs))]
        gs, st, tm, v = (np.concatenate(p) for p in zip((old_g, ost, otm, ov), batch, strict=True))
        order = _storage_order(gs, st, tm)
        gs, st, tm, v = gs[order], st[order], tm[order], v[order]
        md = None if md is None else [md[i] for i in order.tolist()]
    counts = np.bincount(gs, minlength=len(sids))
    sealed = np.asarray(force, bool) | (counts >= SEAL_MIN)
    c.executemany(
        "UPDATE metric_series SET tail_points = ? WHERE id = ?",
        zip(np.where(sealed, 0, counts).tolist(), sids, strict=True),
    )
    keep = sealed[gs]
    insert_blocks(c, "metric_tail", sids, gs[~keep], st[~keep], tm[~keep], v[~keep],
                  pick_metadata(md, ~keep))  # fmt: skip
    if not keep.all():
        gs, st, tm, v, md = gs[keep], st[keep], tm[keep], v[keep], pick_metadata(md, keep)
    insert_blocks(c, "metric_blocks", sids, gs, st, tm, v, md)
    if len(gs):
        merge_tiers(c, sids, agg.tier_rows(gs, st, tm, v, presorted=True))


def _due_merges(c: sqlite3.Connection, ids: list[int], new: agg.TierRows) -> list[int]:
    """The (series, level) pairs (flattened) whose small tier rows merge with
    their small new row: together MERGE_ROWS rows or SMALL_TIER partials."""
    starts = agg.segment_starts(new.group, new.level)
    counts = np.diff(np.append(starts, len(new))).tolist()
    keys = zip(new.group[starts].tolist(), new.level[starts].tolist(), counts, strict=True)
    adding = {(ids[g], lv): k for g, lv, k in keys}
    small = c.execute(
        f"SELECT series_id, level, count(*), sum(n) FROM metric_tiers WHERE {_in(ids)} "
        "AND n < ? GROUP BY series_id, level",
        (*ids, SMALL_TIER),
    ).fetchall()
    return [x for sid, lv, rows, n in small
            if (k := adding.get((sid, lv), SMALL_TIER)) < SMALL_TIER
            and (rows + 1 >= MERGE_ROWS or n + k >= SMALL_TIER)
            for x in (sid, lv)]  # fmt: skip


def merge_tiers(c: sqlite3.Connection, sids: Sequence[int], new: agg.TierRows) -> None:
    """Insert new tier partials (group ``g``: series ``sids[g]``), merged with
    the small tier rows of the (series, level) pairs :func:`_due_merges` picks."""
    due = _due_merges(c, list(sids), new)
    if due:
        merging = sorted(set(due[::2]))  # the index finds their rows, the pairs pick among them
        rows = c.execute(
            f"DELETE FROM metric_tiers WHERE {_in(merging)} AND n < ? AND (series_id, level) IN "
            f"(VALUES {','.join(['(?,?)'] * (len(due) // 2))}) RETURNING series_id, level, n, data",
            (*merging, SMALL_TIER, *due),
        ).fetchall()
        at = {sid: g for g, sid in enumerate(sids)}
        counts = [r[2] for r in rows]
        new = agg.merge_tier_rows(
            agg.TierRows(
                np.concatenate([new.group, np.repeat([at[r[0]] for r in rows], counts)]),
                np.concatenate([new.level, np.repeat([r[1] for r in rows], counts)]),
                agg.concat_partials(
                    [new.partials, decode_partials_rows([(r[3], r[2]) for r in rows])]
                ),
            )
        )
    insert_tiers(c, sids, new)


def seal_run(c: sqlite3.Connection, key: str) -> None:
    """Seal every tail of a run (it ended: its tail would wait for nothing)."""
    sids = c.execute(
        "SELECT id FROM metric_series WHERE run_id = ? AND tail_points > 0", (key,)
    ).fetchall()
    if sids:
        seal(c, [r[0] for r in sids], _NO_POINTS, None, np.ones(len(sids), bool))
