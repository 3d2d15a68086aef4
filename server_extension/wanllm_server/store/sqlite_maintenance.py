"""SQLite maintenance: retention (dropping whole blocks, rebuilding what it
trims) and packing the series that migration 0003 left to pack."""

from __future__ import annotations

import sqlite3

import numpy as np

from . import aggregates as agg
from .base import Retention, Series
from .sqlite_blocks import (
    SERIES_COLS,
    insert_blocks,
    insert_tiers,
    sort_points,
    summary_params,
    take_rows,
)

US_PER_DAY = 86_400_000_000
_TABLES = ("metric_blocks", "metric_tail")


def rebuild_series(c: sqlite3.Connection, sid: int, cutoff: int | None = None) -> int:
    """Rewrite a series as sealed packed blocks, its tiers and its summary from
    its stored points (those at or after ``cutoff`` when given). Returns the
    points dropped; an emptied series is deleted."""
    parts = [take_rows(c, t, sid) for t in _TABLES]
    st, tm, v = (np.concatenate([p[i] for p in parts]) for i in range(3))
    md = None
    if any(p[3] is not None for p in parts):
        md = [m for p in parts for m in (p[3] or [None] * len(p[0]))]
    c.execute("DELETE FROM metric_tiers WHERE series_id = ?", (sid,))
    before = len(v)
    if cutoff is not None:
        keep = tm >= cutoff
        st, tm, v = st[keep], tm[keep], v[keep]
        md = None if md is None else [m for m, k in zip(md, keep.tolist(), strict=True) if k]
    if len(v) == 0:
        c.execute("DELETE FROM metric_series WHERE id = ?", (sid,))
        return before
    st, tm, v, md = sort_points(st, tm, v, md)
    zeros = np.zeros(len(v), np.int64)
    insert_blocks(c, "metric_blocks", [sid], zeros, st, tm, v, md)
    insert_tiers(c, [sid], agg.tier_rows(zeros, st, tm, v, presorted=True))
    summary = agg.summarize(Series(st, tm, v))
    assert summary is not None
    c.execute(
        f"UPDATE metric_series SET ({SERIES_COLS}) = ({','.join('?' * 13)}), tail_points = 0 "
        "WHERE id = ?",
        (*summary_params(summary), sid),
    )
    return before - len(v)


def apply_retention(c: sqlite3.Connection, r: Retention, now: int) -> dict[str, int]:
    """Drop points older than the windows: rows wholly older go undecoded, the
    series left with rows straddling the cutoff are rebuilt from their points."""
    removed = {"metrics": 0, "system_metrics": 0}
    if r.metrics_days > 0:
        cutoff = now - r.metrics_days * US_PER_DAY
        affected: set[int] = set()
        for table in _TABLES:
            rows = c.execute(
                f"SELECT id, series_id, n, max_time FROM {table} WHERE min_time < ?", (cutoff,)
            ).fetchall()
            old = [(i, n) for i, _, n, end in rows if end < cutoff]
            c.executemany(f"DELETE FROM {table} WHERE id = ?", [(i,) for i, _ in old])
            removed["metrics"] += sum(n for _, n in old)
            affected.update(r[1] for r in rows)
        for sid in sorted(affected):
            removed["metrics"] += rebuild_series(c, sid, cutoff)
    if r.system_metrics_days > 0:
        cutoff = now - r.system_metrics_days * US_PER_DAY
        removed["system_metrics"] = c.execute(
            "DELETE FROM system_metrics WHERE time < ?", (cutoff,)
        ).rowcount
    return removed


def pack_pending(c: sqlite3.Connection) -> None:
    """Rebuild the series listed in ``series_to_pack`` (raw blocks and tiers of
    databases written before migration 0003), one transaction each, so an
    interrupted run resumes where it stopped."""
    while True:
        c.execute("BEGIN IMMEDIATE")
        try:
            row = c.execute("SELECT series_id FROM series_to_pack LIMIT 1").fetchone()
            if row is not None:
                rebuild_series(c, row[0])
                c.execute("DELETE FROM series_to_pack WHERE series_id = ?", (row[0],))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        if row is None:
            return
