"""SQLite's block/tier engine: points as sorted blocks (numpy arrays as BLOBs),
M4 tier partials, the per-series summary row, and compaction of small rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from . import aggregates as agg
from .blocks import decode_blocks, encode_block

BLOCK_POINTS = 65_536  # points per block when a series is rebuilt
SMALL_ROW = 1024  # tier rows with fewer partials are "small"
SMALL_BLOCK = 256  # blocks with fewer points are "small"
COMPACT_ROWS = 64  # small rows per series (and tier level) before they are merged
COMPACT_EVERY = 16  # check a series for compaction every this many writes
SERIES_COLS = (
    "count, finite_count, mean, m2, min_value, max_value, first_time, last_time, first_step, "
    "last_step, latest_step, latest_time, latest_bits"
)


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
    ids: Sequence[int],
    gs: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: list[dict[str, Any] | None] | None,
) -> None:
    """Insert points sorted by (group, step, time) as one block per group."""
    starts = np.flatnonzero(np.concatenate(([True], gs[1:] != gs[:-1]))).tolist()
    ends = [*starts[1:], len(gs)]
    rows = []
    for s, e in zip(starts, ends, strict=False):
        meta = None
        if md is not None:
            items = [[i - s, m] for i in range(s, e) if (m := md[i]) is not None]
            meta = orjson.dumps(items).decode() if items else None
        bt = tm[s:e]
        rows.append(
            (ids[int(gs[s])], e - s, int(st[s]), int(st[e - 1]), int(bt.min()), int(bt.max()),
             *encode_block(st[s:e], bt, v[s:e], packed=False), meta)
        )  # fmt: skip
    c.executemany(
        "INSERT INTO metric_blocks (series_id, n, min_step, max_step, min_time, max_time, steps, "
        "times, vals, metadata) VALUES (?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def insert_tiers(c: sqlite3.Connection, ids: Sequence[int], tr: agg.TierRows) -> None:
    if len(tr) == 0:
        return
    starts = np.flatnonzero(
        np.concatenate(([True], (tr.group[1:] != tr.group[:-1]) | (tr.level[1:] != tr.level[:-1])))
    ).tolist()
    ends = [*starts[1:], len(tr)]
    rows = []
    for s, e in zip(starts, ends, strict=False):
        p = tr.partials[s:e]
        b = p["bucket"]
        rows.append(
            (ids[int(tr.group[s])], int(tr.level[s]), e - s, int(b[0]), int(b[-1]), p.tobytes())
        )
    c.executemany(
        "INSERT INTO metric_tiers (series_id, level, n, min_bucket, max_bucket, data) "
        "VALUES (?,?,?,?,?,?)",
        rows,
    )


def maybe_compact(c: sqlite3.Connection, sid: int) -> None:
    """Keep reads O(rows): merge small tier rows and small blocks of a series
    once more than ``COMPACT_ROWS`` of them pile up (LSM-style: merged rows
    grow large and are left alone)."""
    levels = [
        lv
        for lv, cnt in c.execute(
            "SELECT level, count(*) FROM metric_tiers WHERE series_id = ? AND n < ? GROUP BY level",
            (sid, SMALL_ROW),
        )
        if cnt > COMPACT_ROWS
    ]
    for lv in levels:
        rows = c.execute(
            "SELECT id, data FROM metric_tiers WHERE series_id = ? AND level = ? AND n < ?",
            (sid, lv, SMALL_ROW),
        ).fetchall()
        parts = agg.partials_from_blobs([r[1] for r in rows])
        merged = agg.merge_partials((parts["bucket"],), parts)[1]
        delete_ids(c, "metric_tiers", [r[0] for r in rows])
        n = len(merged)
        insert_tiers(
            c, [sid], agg.TierRows(np.zeros(n, np.int64), np.full(n, lv, np.int64), merged)
        )
    small = c.execute(
        "SELECT count(*) FROM metric_blocks WHERE series_id = ? AND n < ?", (sid, SMALL_BLOCK)
    ).fetchone()[0]
    if small > COMPACT_ROWS:
        rows = c.execute(
            "SELECT id, steps, times, vals, metadata FROM metric_blocks "
            "WHERE series_id = ? AND n < ?",
            (sid, SMALL_BLOCK),
        ).fetchall()
        st, tm, v, md = decode_with_metadata([r[1:] for r in rows])
        delete_ids(c, "metric_blocks", [r[0] for r in rows])
        order = np.lexsort((tm, st))
        md = None if md is None else [md[i] for i in order.tolist()]
        insert_blocks(c, [sid], np.zeros(len(v), np.int64), st[order], tm[order], v[order], md)


def delete_ids(c: sqlite3.Connection, table: str, ids: list[int]) -> None:
    c.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i in ids])


def decode(rows: list[tuple[bytes, bytes, bytes]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated points of raw (little-endian) blocks."""
    return decode_blocks([(*r, len(r[0]) // 8) for r in rows])


def decode_with_metadata(
    rows: Sequence[tuple[bytes, bytes, bytes, str | None]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any] | None] | None]:
    """Concatenate blocks' points, and their metadata (None when none has any)."""
    st, tm, v = decode([r[:3] for r in rows])
    md: list[dict[str, Any] | None] | None = None
    if any(r[3] for r in rows):
        md, offset = [None] * len(v), 0
        for r in rows:
            for i, m in orjson.loads(r[3]) if r[3] else ():
                md[offset + i] = m
            offset += len(r[0]) // 8
    return st, tm, v, md
