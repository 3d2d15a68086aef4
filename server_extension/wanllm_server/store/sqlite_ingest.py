"""SQLite ingest: one transaction per batch (idempotent by batch id), auto steps,
series summaries, tail rows and seals (:mod:`.sqlite_blocks`), live sequence numbers."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

import numpy as np
import orjson

from wanllm_jupyter.core.auto_steps import assign_auto_steps

from . import aggregates as agg
from . import sqlite_blocks as blocks
from .base import MetricBatch, RunNotFound, SystemMetricBatch, WriteResult
from .batches import now_us
from .sqlite_blocks import (
    SERIES_COLS,
    insert_blocks,
    seal,
    sql_real,
    summary_from_row,
    summary_params,
)


def check_batch(c: sqlite3.Connection, batch_id: str, kind: str, points: int) -> bool:
    """Record the batch id; False when it was seen before."""
    cur = c.execute(
        "INSERT OR IGNORE INTO batches VALUES (?, ?, ?, ?)", (batch_id, kind, points, now_us())
    )
    return cur.rowcount == 1


def check_runs(c: sqlite3.Connection, run_ids: Sequence[uuid.UUID]) -> list[str]:
    keys = [str(r) for r in run_ids]
    found = {
        r[0]
        for r in c.execute(f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(keys))})", keys)
    }
    for k in keys:
        if k not in found:
            raise RunNotFound(k)
    return keys


def live_seq(c: sqlite3.Connection, batch_id: str, run_keys: list[str]) -> dict[str, int]:
    """Take each run's next live sequence number for the batch (and record it)."""
    out = {}
    for key in sorted(run_keys):
        (seq,) = c.execute(
            "INSERT INTO run_live_seq (run_id, seq) VALUES (?, 1) "
            "ON CONFLICT (run_id) DO UPDATE SET seq = seq + 1 RETURNING seq",
            (key,),
        ).fetchone()
        c.execute("INSERT INTO batch_live_seq VALUES (?, ?, ?)", (batch_id, key, seq))
        out[key] = int(seq)
    return out


def replayed_seq(c: sqlite3.Connection, batch_id: str) -> dict[str, int]:
    """The live sequence numbers a batch took when it was first committed."""
    rows = c.execute("SELECT run_id, seq FROM batch_live_seq WHERE batch_id = ?", (batch_id,))
    return {str(run_id): int(seq) for run_id, seq in rows}


def write_metrics(c: sqlite3.Connection, b: MetricBatch) -> WriteResult:
    n = len(b)
    if not check_batch(c, b.batch_id, "metrics", n):
        return WriteResult(0, True, replayed_seq(c, b.batch_id))
    if n == 0:
        return WriteResult(0, False)
    run_keys = check_runs(c, b.run_ids)
    code = b.run_idx.astype(np.int64) * len(b.names) + b.name_idx
    uniq, group = np.unique(code, return_inverse=True)
    pairs = [(run_keys[int(u) // len(b.names)], b.names[int(u) % len(b.names)]) for u in uniq]
    existing: dict[int, tuple[int, agg.Summary]] = {}
    counters: dict[int, tuple[int, int]] = {}  # group -> (writes, tail points) before
    for g, (rk, name) in enumerate(pairs):
        row = c.execute(
            f"SELECT id, writes, tail_points, {SERIES_COLS} FROM metric_series "
            "WHERE run_id = ? AND name = ?",
            (rk, name),
        ).fetchone()
        if row is not None:
            existing[g] = (row[0], summary_from_row(row[3:]))
            counters[g] = (row[1], row[2])
    steps = b.steps
    if b.auto_step is not None and b.auto_step.any():
        last = {g: s.last_step for g, (_, s) in existing.items()}
        steps = assign_auto_steps(steps, b.auto_step, group, last)
    summaries = agg.summarize_groups(group, steps, b.times, b.values)
    counts = np.bincount(group, minlength=len(pairs)).tolist()
    ids: list[int] = []
    for g, (rk, name) in enumerate(pairs):
        if g in existing:
            sid, old = existing[g]
            merged = agg.merge_summary(old, summaries[g])
            c.execute(
                f"UPDATE metric_series SET ({SERIES_COLS}) = ({','.join('?' * 13)}), "
                "writes = writes + 1, tail_points = tail_points + ? WHERE id = ?",
                (*summary_params(merged), counts[g], sid),
            )
        else:
            cur = c.execute(
                f"INSERT INTO metric_series (run_id, name, tail_points, {SERIES_COLS}) "
                f"VALUES (?, ?, ?, {','.join('?' * 13)})",
                (rk, name, counts[g], *summary_params(summaries[g])),
            )
            sid = int(cur.lastrowid)  # type: ignore[arg-type]
        ids.append(sid)
    order = agg.sort_order(group, steps, b.times)
    gs, st, tm, v = group[order], steps[order], b.times[order], b.values[order]
    md = [b.metadata[i] for i in order.tolist()] if b.metadata is not None else None
    store_points(c, ids, counts, counters, gs, st, tm, v, md)
    b.steps = steps  # the live feed publishes the stored steps
    return WriteResult(n, False, live_seq(c, b.batch_id, run_keys))


def store_points(
    c: sqlite3.Connection,
    ids: list[int],
    counts: list[int],
    before: dict[int, tuple[int, int]],
    gs: np.ndarray,
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    md: blocks.Metadata,
) -> None:
    """Store a batch's points sorted by (group, step, time) of series ``ids[group]``
    (``counts[group]`` points, ``before[group]`` = (writes, tail points) before it):
    the series due for a seal are sealed with them, the others get a tail row."""
    writes = np.array([before.get(g, (0, 0))[0] for g in range(len(counts))], np.int64)
    tail = np.array([before.get(g, (0, 0))[1] for g in range(len(counts))], np.int64)
    full = tail + np.asarray(counts, np.int64) >= blocks.SEAL_POINTS
    due = full | ((writes + 1) % blocks.SEAL_WRITES == 0)
    if due.all():
        seal(c, ids, (gs, st, tm, v), md, full)
        return
    if due.any():
        sealing = due[gs]
        ids_due = [ids[g] for g in np.flatnonzero(due).tolist()]
        local = np.cumsum(due) - 1  # each due group's index in ids_due
        pick = blocks.pick_metadata
        seal(c, ids_due, (local[gs[sealing]], st[sealing], tm[sealing], v[sealing]),
             pick(md, sealing), full[due])  # fmt: skip
        rest = ~sealing
        gs, st, tm, v, md = gs[rest], st[rest], tm[rest], v[rest], pick(md, rest)
    insert_blocks(c, "metric_tail", ids, gs, st, tm, v, md)


def write_system(c: sqlite3.Connection, b: SystemMetricBatch) -> WriteResult:
    n = len(b)
    if not check_batch(c, b.batch_id, "system", n):
        return WriteResult(0, True)
    if n == 0:
        return WriteResult(0, False)
    keys = check_runs(c, b.run_ids)
    none = [None] * n
    devices, nodes, meta = b.devices or none, b.nodes or none, b.metadata or none
    rows = zip(
        (keys[i] for i in b.run_idx.tolist()),
        (b.types[i] for i in b.type_idx.tolist()),
        b.times.tolist(),
        (sql_real(x) for x in b.values.tolist()),
        b.values.view(np.int64).tolist(),
        devices,
        nodes,
        (None if m is None else orjson.dumps(m).decode() for m in meta),
        strict=False,
    )
    c.executemany("INSERT INTO system_metrics VALUES (?,?,?,?,?,?,?,?)", rows)
    return WriteResult(n, False)
