"""SQLite maintenance: retention (rebuilding what it trims)."""

from __future__ import annotations

import sqlite3

import numpy as np
import orjson

from . import aggregates as agg
from .base import Retention, Series
from .sqlite_blocks import (
    BLOCK_POINTS,
    SERIES_COLS,
    decode_with_metadata,
    insert_blocks,
    insert_tiers,
    summary_params,
)

US_PER_DAY = 86_400_000_000


def rebuild_series(c: sqlite3.Connection, sid: int) -> int:
    """Rewrite a series' blocks, tiers and summary from its stored points
    (after retention). Returns the points left; an emptied series is deleted."""
    rows = c.execute(
        "SELECT steps, times, vals, metadata FROM metric_blocks WHERE series_id = ?", (sid,)
    ).fetchall()
    st, tm, v, md = decode_with_metadata(rows)
    c.execute("DELETE FROM metric_blocks WHERE series_id = ?", (sid,))
    c.execute("DELETE FROM metric_tiers WHERE series_id = ?", (sid,))
    if len(v) == 0:
        c.execute("DELETE FROM metric_series WHERE id = ?", (sid,))
        return 0
    order = np.lexsort((tm, st))
    st, tm, v = st[order], tm[order], v[order]
    md = None if md is None else [md[i] for i in order.tolist()]
    for s in range(0, len(v), BLOCK_POINTS):
        e = min(s + BLOCK_POINTS, len(v))
        insert_blocks(c, [sid], np.zeros(e - s, np.int64), st[s:e], tm[s:e], v[s:e], md and md[s:e])
    zeros = np.zeros(len(v), np.int64)
    insert_tiers(c, [sid], agg.merge_tier_rows(agg.tier_rows(zeros, st, tm, v, presorted=True)))
    summary = agg.summarize(Series(st, tm, v))
    assert summary is not None
    c.execute(
        f"UPDATE metric_series SET ({SERIES_COLS}) = ({','.join('?' * 13)}) WHERE id = ?",
        (*summary_params(summary), sid),
    )
    return len(v)


def apply_retention(c: sqlite3.Connection, r: Retention, now: int) -> dict[str, int]:
    removed = {"metrics": 0, "system_metrics": 0}
    if r.metrics_days > 0:
        cutoff = now - r.metrics_days * US_PER_DAY
        affected = [
            sid
            for (sid,) in c.execute(
                "SELECT DISTINCT series_id FROM metric_blocks WHERE min_time < ?", (cutoff,)
            )
        ]
        for sid in affected:
            before = c.execute(
                "SELECT sum(n) FROM metric_blocks WHERE series_id = ?", (sid,)
            ).fetchone()[0]
            rows = c.execute(
                "SELECT id, steps, times, vals, metadata FROM metric_blocks "
                "WHERE series_id = ? AND min_time < ?",
                (sid, cutoff),
            ).fetchall()
            for bid, bs, bt, bv, meta in rows:
                tm = np.frombuffer(bt, np.int64)
                keep = tm >= cutoff
                if keep.any():
                    idx = np.flatnonzero(keep)
                    md = None
                    if meta:
                        old = dict((i, m) for i, m in orjson.loads(meta))
                        items = [[j, old[i]] for j, i in enumerate(idx.tolist()) if i in old]
                        md = orjson.dumps(items).decode() if items else None
                    st, kt = np.frombuffer(bs, np.int64)[keep], tm[keep]
                    kv = np.frombuffer(bv, np.float64)[keep]
                    c.execute(
                        "UPDATE metric_blocks SET n = ?, min_step = ?, max_step = ?, min_time = ?, "
                        "max_time = ?, steps = ?, times = ?, vals = ?, metadata = ? WHERE id = ?",
                        (len(idx), int(st.min()), int(st.max()), int(kt.min()), int(kt.max()),
                         st.tobytes(), kt.tobytes(), kv.tobytes(), md, bid),
                    )  # fmt: skip
                else:
                    c.execute("DELETE FROM metric_blocks WHERE id = ?", (bid,))
            removed["metrics"] += before - rebuild_series(c, sid)
    if r.system_metrics_days > 0:
        cutoff = now - r.system_metrics_days * US_PER_DAY
        removed["system_metrics"] = c.execute(
            "DELETE FROM system_metrics WHERE time < ?", (cutoff,)
        ).rowcount
    return removed
