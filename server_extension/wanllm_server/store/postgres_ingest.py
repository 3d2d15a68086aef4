"""The PostgreSQL write path: one transaction per batch.

Order inside the transaction: claim the batch id (a replay stops here), lock
the runs (``FOR KEY SHARE``: a concurrent delete waits), lock/create the
summary rows of the batch's series (also what auto-steps count from), binary
COPY of the points and of their M4 tier partials, summary write-back, and the
hourly rollup upsert (when rollups are a table rather than a continuous
aggregate).
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import numpy as np

from . import aggregates as agg
from .base import MetricBatch, RunNotFound, SystemMetricBatch, WriteResult
from .postgres_copy import HEADER, TRAILER, Field, encode_group, encode_row, jsonb

HOUR_US = 3_600_000_000
TIER_COLUMNS = (
    "run_id", "metric_name", "level", "bucket", "count", "nonfinite", "min_value", "max_value",
    "min_step", "min_time", "max_step", "max_time", "first_step", "first_time", "first_value",
    "last_step", "last_time", "last_value",
)  # fmt: skip
_TIER_FIELDS = TIER_COLUMNS[4:]
_TIER_KIND = {f: ("f8" if f.endswith("value") else "i8") for f in _TIER_FIELDS}

_LOCK_SUMMARIES = """
INSERT INTO metric_summaries AS s (run_id, metric_name)
SELECT * FROM unnest($1::uuid[], $2::text[]) ORDER BY 1, 2
ON CONFLICT (run_id, metric_name) DO UPDATE SET count = s.count
RETURNING run_id, metric_name, count, finite_count, mean, m2, min_value, max_value,
          first_time, last_time, first_step, last_step, latest_step, latest_time, latest_value
"""
_WRITE_SUMMARIES = """
UPDATE metric_summaries s SET
    count = u.count, finite_count = u.finite_count, nonfinite_count = u.count - u.finite_count,
    mean = u.mean, m2 = u.m2, min_value = u.min_value, max_value = u.max_value,
    first_time = u.first_time, last_time = u.last_time, first_step = u.first_step,
    last_step = u.last_step, latest_step = u.latest_step, latest_time = u.latest_time,
    latest_value = u.latest_value
FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::float8[], $6::float8[],
            $7::float8[], $8::float8[], $9::timestamptz[], $10::timestamptz[], $11::int8[],
            $12::int8[], $13::int8[], $14::timestamptz[], $15::float8[])
     AS u(run_id, metric_name, count, finite_count, mean, m2, min_value, max_value, first_time,
          last_time, first_step, last_step, latest_step, latest_time, latest_value)
WHERE s.run_id = u.run_id AND s.metric_name = u.metric_name
"""
HOURLY_UPSERT = """
INSERT INTO metrics_hourly AS h
    (hour, run_id, metric_name, count, finite_count, mean, m2, min_value, max_value)
SELECT * FROM unnest($1::timestamptz[], $2::uuid[], $3::text[], $4::int8[], $5::int8[],
                     $6::float8[], $7::float8[], $8::float8[], $9::float8[])
ORDER BY 2, 3, 1
ON CONFLICT (run_id, metric_name, hour) DO UPDATE SET
    count = h.count + excluded.count,
    finite_count = h.finite_count + excluded.finite_count,
    mean = CASE WHEN excluded.finite_count = 0 THEN h.mean
                WHEN h.finite_count = 0 THEN excluded.mean
                ELSE h.mean + (excluded.mean - h.mean) * excluded.finite_count
                              / (h.finite_count + excluded.finite_count) END,
    m2 = CASE WHEN excluded.finite_count = 0 THEN h.m2
              WHEN h.finite_count = 0 THEN excluded.m2
              ELSE h.m2 + excluded.m2 + (excluded.mean - h.mean) * (excluded.mean - h.mean)
                   * h.finite_count * excluded.finite_count
                   / (h.finite_count + excluded.finite_count) END,
    min_value = least(h.min_value, excluded.min_value),
    max_value = greatest(h.max_value, excluded.max_value)
"""


def _nan_to_none(values: list[float]) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values]


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


async def claim_batch(conn: asyncpg.Connection, kind: str, batch_id: str, points: int) -> bool:
    """Record the batch id; False when it was seen before (waits for a concurrent twin)."""
    return bool(
        await conn.fetchval(
            "INSERT INTO ingest_batches (kind, batch_id, points) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING RETURNING 1",
            kind,
            batch_id,
            points,
        )
    )


async def lock_runs(conn: asyncpg.Connection, run_ids: list[uuid.UUID]) -> None:
    """Raise RunNotFound for the first unknown run; key-share lock the others."""
    rows = await conn.fetch(
        "SELECT id FROM runs WHERE id = ANY($1::uuid[]) ORDER BY id FOR KEY SHARE", run_ids
    )
    found = {r["id"] for r in rows}
    for rid in run_ids:
        if rid not in found:
            raise RunNotFound(rid)


def resolve_auto_steps(
    series: np.ndarray, steps: np.ndarray, auto: np.ndarray, last: dict[int, int]
) -> np.ndarray:
    """Steps with auto points set to the series' running greatest step + 1, in batch order.

    ``last`` maps series id -> greatest stored step (absent: none, first auto step is 0).
    """
    out = steps.copy()
    running = dict(last)
    for i in range(len(out)):
        s = int(series[i])
        if auto[i]:
            out[i] = running.get(s, -1) + 1
        running[s] = max(running.get(s, out[i]), int(out[i]))
    return out


def _segments(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(order, starts, ends) of ``keys`` grouped by value."""
    order = np.argsort(keys, kind="stable")
    k = keys[order]
    starts = (
        np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if len(k) else np.empty(0, int)
    )
    return order, starts, np.append(starts[1:], len(k))


def metric_copy_chunks(
    series_keys: list[tuple[uuid.UUID, str]],
    series: np.ndarray,
    steps: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    metadata: list[dict[str, Any] | None] | None,
) -> Iterator[bytes]:
    """Binary COPY data for ``metrics (time, run_id, metric_name, step, value, metadata)``,
    one chunk per series (streamed: the server ingests a chunk while the next is encoded)."""
    yield HEADER
    has_meta = np.zeros(len(values), bool)
    if metadata is not None:
        has_meta = np.fromiter((m is not None for m in metadata), bool, len(values))
    plain = np.flatnonzero(~has_meta)
    order, starts, ends = _segments(series[plain])
    idx = plain[order]
    for a, b in zip(starts.tolist(), ends.tolist(), strict=False):
        sel = idx[a:b]
        rid, name = series_keys[int(series[sel[0]])]
        yield encode_group(
            b - a,
            [("ts", times[sel]), ("bytes", rid.bytes), ("bytes", name.encode()),
             ("i8", steps[sel]), ("f8", values[sel]), ("null", None)],
        )  # fmt: skip
    for i in np.flatnonzero(has_meta).tolist():
        rid, name = series_keys[int(series[i])]
        yield encode_row(
            [("ts", times[i]), ("bytes", rid.bytes), ("bytes", name.encode()),
             ("i8", steps[i]), ("f8", values[i]), ("bytes", jsonb(metadata[i]))]  # type: ignore[index]
        )  # fmt: skip
    yield TRAILER


async def _aiter(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Feed COPY chunk by chunk, yielding to the event loop in between."""
    for chunk in chunks:
        yield chunk


def tier_copy_data(series_keys: list[tuple[uuid.UUID, str]], rows: agg.TierRows) -> bytes:
    """Binary COPY payload for ``metric_tiers`` (columns :data:`TIER_COLUMNS`)."""
    parts = [HEADER]
    order, starts, ends = _segments(rows.group)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=False):
        sel = order[a:b]
        rid, name = series_keys[int(rows.group[sel[0]])]
        p = rows.partials[sel]
        fields: list[Field] = [
            ("bytes", rid.bytes), ("bytes", name.encode()), ("i2", rows.level[sel]),
            ("i8", p["bucket"]),
        ]  # fmt: skip
        fields += [(_TIER_KIND[f], p[f]) for f in _TIER_FIELDS]
        parts.append(encode_group(b - a, fields))
    parts.append(TRAILER)
    return b"".join(parts)


async def write_metrics(
    conn: asyncpg.Connection, batch: MetricBatch, *, hourly_table: bool
) -> WriteResult:
    """Write ``batch`` inside the caller's transaction (see module docstring)."""
    n = len(batch)
    if not await claim_batch(conn, "metrics", batch.batch_id, n):
        return WriteResult(0, True)
    await lock_runs(conn, batch.run_ids)
    if n == 0:
        return WriteResult(0, False)
    width = len(batch.names)
    uniq, series = np.unique(
        batch.run_idx.astype(np.int64) * width + batch.name_idx, return_inverse=True
    )
    keys = [(batch.run_ids[int(u) // width], batch.names[int(u) % width]) for u in uniq]
    locked = await conn.fetch(_LOCK_SUMMARIES, [k[0] for k in keys], [k[1] for k in keys])
    position = {k: i for i, k in enumerate(keys)}
    existing = {position[(r["run_id"], r["metric_name"])]: summary_from_record(r) for r in locked}
    steps = batch.steps
    if batch.auto_step is not None and batch.auto_step.any():
        last = {i: s.last_step for i, s in existing.items() if s is not None}
        steps = resolve_auto_steps(series, batch.steps, batch.auto_step, last)
    times, values = batch.times, batch.values
    # derived rows are computed in a worker thread while the server ingests the points
    derived = asyncio.get_running_loop().run_in_executor(
        None, _derive, keys, series, steps, times, values, hourly_table
    )
    try:
        await conn.copy_to_table(
            "metrics",
            source=_aiter(metric_copy_chunks(keys, series, steps, times, values, batch.metadata)),
            columns=["time", "run_id", "metric_name", "step", "value", "metadata"],
            format="binary",
        )
    finally:
        tiers, new, hourly = await derived
    await conn.copy_to_table(
        "metric_tiers", source=memoryview(tiers), columns=list(TIER_COLUMNS), format="binary"
    )
    merged = [agg.merge_summary(existing.get(i), new[i]) for i in range(len(keys))]
    await conn.execute(
        _WRITE_SUMMARIES,
        [k[0] for k in keys], [k[1] for k in keys],
        [s.count for s in merged], [s.finite_count for s in merged],
        _nan_to_none([s.mean for s in merged]), [s.m2 for s in merged],
        _nan_to_none([s.min_value for s in merged]), _nan_to_none([s.max_value for s in merged]),
        [s.first_time for s in merged], [s.last_time for s in merged],
        [s.first_step for s in merged], [s.last_step for s in merged],
        [s.latest_step for s in merged], [s.latest_time for s in merged],
        [s.latest_value for s in merged],
    )  # fmt: skip
    if hourly is not None:
        await conn.execute(HOURLY_UPSERT, *hourly)
    return WriteResult(n, False)


def _derive(
    keys: list[tuple[uuid.UUID, str]],
    series: np.ndarray,
    steps: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
    hourly_table: bool,
) -> tuple[bytes, dict[int, agg.Summary], list[list[Any]] | None]:
    """Tier COPY payload, per-series batch summaries and hourly upsert arguments."""
    tiers = tier_copy_data(keys, agg.tier_rows(series, steps, times, values))
    summaries = agg.summarize_groups(series, steps, times, values)
    hourly = hourly_args(keys, series, steps, times, values) if hourly_table else None
    return tiers, summaries, hourly


def hourly_args(
    keys: list[tuple[uuid.UUID, str]],
    series: np.ndarray,
    steps: np.ndarray,
    times: np.ndarray,
    values: np.ndarray,
) -> list[list[Any]]:
    """Arguments of :data:`HOURLY_UPSERT`: per (series, hour) partial summaries."""
    hours = times // HOUR_US
    h0 = int(hours.min())
    span = int(hours.max()) - h0 + 1
    group_key = series.astype(np.int64) * span + (hours - h0)
    uniq, group = np.unique(group_key, return_inverse=True)
    sums = agg.summarize_groups(group.ravel(), steps, times, values)
    g = range(len(uniq))
    sid, hour = (uniq // span).tolist(), ((uniq % span) + h0).tolist()
    return [
        [hour[i] * HOUR_US for i in g],
        [keys[sid[i]][0] for i in g],
        [keys[sid[i]][1] for i in g],
        [sums[i].count for i in g],
        [sums[i].finite_count for i in g],
        _nan_to_none([sums[i].mean for i in g]),
        [sums[i].m2 for i in g],
        _nan_to_none([sums[i].min_value for i in g]),
        _nan_to_none([sums[i].max_value for i in g]),
    ]


async def write_system_metrics(conn: asyncpg.Connection, batch: SystemMetricBatch) -> WriteResult:
    """Write a system-metrics batch inside the caller's transaction."""
    n = len(batch)
    if not await claim_batch(conn, "system", batch.batch_id, n):
        return WriteResult(0, True)
    await lock_runs(conn, batch.run_ids)
    if n == 0:
        return WriteResult(0, False)
    none: list[Any] = [None] * n
    records = zip(
        batch.times.tolist(),
        (batch.run_ids[i] for i in batch.run_idx.tolist()),
        (batch.types[i] for i in batch.type_idx.tolist()),
        batch.values.tolist(),
        batch.metadata or none,
        batch.devices or none,
        batch.nodes or none,
        strict=False,
    )
    await conn.copy_records_to_table(
        "system_metrics",
        records=list(records),
        columns=["time", "run_id", "metric_type", "value", "metadata", "device", "node"],
    )
    return WriteResult(n, False)
