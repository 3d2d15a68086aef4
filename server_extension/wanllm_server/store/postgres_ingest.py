"""The PostgreSQL write path: one statement per batch.

A batch with explicit steps is one statement (:func:`derived_sql`) and no
transaction of its own: it claims the batch id, key-share locks the runs,
inserts the batch's points as packed rows (blocks with their tier rows, or open
tail rows: :mod:`.postgres_blocks`), upserts the per-series summaries
(Welford/Chan, merged in SQL), counting each series' writes since its last
seal, and takes each run's next live sequence number. PostgreSQL commits a
statement as a whole, so a batch is written entirely or not at all, and
acknowledged only once committed. A replay or an unknown run writes nothing
(:class:`Duplicate`, ``RunNotFound``). Every :data:`.postgres_blocks.SEAL_WRITES`
batches of a series, the batch's statement resets the series' count and its
writer seals the series once committed, in a transaction of its own that
locks no row other writers touch (:func:`.postgres_blocks.seal_due`; a
failure there loses nothing: the tail stays open and is sealed by a later
seal or when the run ends).

The numpy work (sorting, packing, tier partials, summaries) runs in a worker
thread for batches of at least :data:`THREAD_POINTS` points.

Auto steps need the series' last step first: such a batch claims and locks up
front in a transaction (:data:`CLAIM`, :data:`LOCK_SUMMARIES`), then runs the
same statement in it.

Locks are taken in one global order (batch id, runs, summaries, live
sequence; keys sorted within each), so concurrent writers cannot deadlock, and
the summary rows shared by writers of one series stay locked only from their
upsert (after the batch's rows are in) until the statement (or the auto-step
transaction) commits.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import asyncpg
import numpy as np

from wanllm_jupyter.core.auto_steps import assign_auto_steps

from . import aggregates as agg
from . import postgres_blocks as blocks
from .base import MetricBatch, RunNotFound, SystemMetricBatch

# batches of at least this many points are encoded in a worker thread; smaller ones
# inline (a thread hop costs more than it saves)
THREAD_POINTS = 500
_SUMMARY_PARAMS = (
    ("count", "int8"), ("finite", "int8"), ("mean", "float8"), ("m2", "float8"),
    ("lo", "float8"), ("hi", "float8"), ("t0", "timestamptz"), ("t1", "timestamptz"),
    ("s0", "int8"), ("s1", "int8"), ("ls", "int8"), ("lt", "timestamptz"), ("lv", "float8"),
)  # fmt: skip

CLAIM = """
WITH claim AS (
    INSERT INTO ingest_batches (kind, batch_id, points) VALUES ($1, $2, $3)
    ON CONFLICT DO NOTHING RETURNING 1
), locked AS (
    SELECT id FROM runs WHERE id = ANY($4::uuid[]) AND (SELECT count(*) FROM claim) >= 0
    ORDER BY id FOR KEY SHARE
)
SELECT (SELECT count(*) FROM claim) = 1 AS claimed, array(SELECT id FROM locked) AS found
"""
LOCK_SUMMARIES = """
INSERT INTO metric_summaries AS s (run_id, metric_name)
SELECT * FROM unnest($1::uuid[], $2::text[])  -- in the given (lock) order
ON CONFLICT (run_id, metric_name) DO UPDATE SET count = s.count
RETURNING run_id, metric_name, count, last_step
"""


class Duplicate(Exception):
    """The batch id was seen before: roll back, write nothing."""


def _unnest(params: tuple[tuple[str, str], ...], first: int) -> str:
    """``unnest($first::type[], ...)`` over consecutive parameters."""
    return "unnest(" + ", ".join(f"${first + j}::{t}[]" for j, (_, t) in enumerate(params)) + ")"


def _pick(alias: str, prefix: str, cond: str) -> str:
    return ",\n        ".join(
        f"{prefix}_{f} = CASE WHEN {cond} THEN excluded.{prefix}_{f} ELSE {alias}.{prefix}_{f} END"
        for f in ("step", "time", "value")
    )


def _welford(t: str, count: str) -> str:
    """SET clauses merging ``excluded``'s (mean, m2) of ``count`` values into ``t``'s:
    :func:`.aggregates.merge_moments`, the float formulas inside its safe range
    (for a difference of means under 1e-150 with ``wanllm_fmul``/``wanllm_fdiv``,
    which return IEEE's zero where PostgreSQL raises an underflow), else exact
    in ``numeric`` and rounded once (float8 arithmetic would raise on an
    overflowing product)."""
    a, b = f"{t}.{count}", f"excluded.{count}"
    ma, mb, m2a, m2b = f"{t}.mean", "excluded.mean", f"{t}.m2", "excluded.m2"
    safe = (
        f"greatest(abs({ma}), abs({mb})) < {agg.SAFE_MOMENT!r}"
        f" AND greatest({m2a}, {m2b}) < {agg.SAFE_M2!r}"
    )
    tiny = f"{mb} <> {ma} AND abs({mb} - {ma}) < 1e-150"
    na, nb, nn = f"{a}::numeric", f"{b}::numeric", f"({a} + {b})::numeric(40, 20)"
    d = f"({mb}::numeric - {ma}::numeric)"
    fd = f"({mb} - {ma})"
    return (
        f"mean = CASE WHEN {b} = 0 THEN {ma} WHEN {a} = 0 THEN {mb}\n"
        f"            WHEN {safe} AND NOT ({tiny}) THEN {ma} + {fd} * {b} / ({a} + {b})\n"
        f"            WHEN {safe} THEN {ma} + wanllm_fdiv(wanllm_fmul({fd}, {b}), {a} + {b})\n"
        f"            ELSE wanllm_float8(({ma}::numeric * {na} + {mb}::numeric * {nb})"
        f" / {nn}) END,\n"
        f"        m2 = CASE WHEN {b} = 0 THEN {m2a} WHEN {a} = 0 THEN {m2b}\n"
        f"            WHEN {safe} AND NOT ({tiny}) THEN {m2a} + {m2b} + {fd}"
        f" * {fd} * {a} * {b} / ({a} + {b})\n"
        f"            WHEN {safe} THEN {m2a} + {m2b} + wanllm_fdiv(wanllm_fmul(wanllm_fmul("
        f"wanllm_fmul({fd}, {fd}), {a}), {b}), {a} + {b})\n"
        f"            ELSE wanllm_float8({m2a}::numeric + {m2b}::numeric + {d} * {d} * {na} * {nb}"
        f" / {nn}) END"
    )


_BLOCK_PARAMS = (
    ("sealed", "bool"), ("time", "timestamptz"), ("run_id", "uuid"), ("metric_name", "text"),
    ("n", "int4"), ("min_step", "int8"), ("max_step", "int8"), ("max_time", "timestamptz"),
    ("steps", "bytea"), ("times", "bytea"), ("vals", "bytea"), ("metadata", "jsonb"),
)  # fmt: skip
_TIER_PARAMS = (
    ("run_id", "uuid"), ("metric_name", "text"), ("level", "int2"), ("n", "int4"),
    ("min_bucket", "int8"), ("max_bucket", "int8"), ("data", "bytea"),
)  # fmt: skip


@cache
def derived_sql() -> str:
    """The one statement writing a batch: it claims the batch id, key-share locks
    the runs, inserts the block, tail and tier rows, upserts the series
    summaries and takes the live sequence numbers.

    Parameters: $1 kind (NULL: already claimed), $2 batch id, $3 points, $4 run
    ids, $5/$6 series keys (run id, name; in lock order), $7 the writes between
    seals, then the arrays of :attr:`Derived.args` (summaries, block rows with a
    ``sealed`` flag, tier rows), then the run ids taking a live sequence number
    (in lock order; empty: none). Returns ``duplicate`` (the batch id was
    claimed before), ``found`` (the run ids found), ``writes`` (run id, name
    and writes since its last seal of each series; 0: this batch found the
    series due and reset its count, so its writer seals it) and ``seq`` (run
    id, number). The claim is only tried when every run was found, and nothing
    else is written unless it succeeded (or $1 is NULL): a statement without a
    transaction of its own writes a whole batch or nothing. The block, tail and
    tier rows are inserted first; then summary rows are upserted in the order
    given (no joins or sorts), so they are locked in key order, then the
    live-sequence rows, and stay locked only for the rest of the statement and
    its commit.
    """
    p = 8
    summ_src = _unnest(_SUMMARY_PARAMS, p)
    p += len(_SUMMARY_PARAMS)
    block_src = _unnest(_BLOCK_PARAMS, p)
    p += len(_BLOCK_PARAMS)
    tier_src = _unnest(_TIER_PARAMS, p)
    live = p + len(_TIER_PARAMS)
    names = ", ".join(n for n, _ in _SUMMARY_PARAMS)
    block_cols = ", ".join(n for n, _ in _BLOCK_PARAMS[1:])
    tier_cols = ", ".join(n for n, _ in _TIER_PARAMS)
    blocks_as = f"b(sealed, {block_cols})"
    return f"""
WITH locked AS (
    SELECT id FROM runs WHERE id = ANY($4::uuid[]) ORDER BY id FOR KEY SHARE
), claim AS (
    INSERT INTO ingest_batches (kind, batch_id, points)
    SELECT $1::text, $2::text, $3::int4
    WHERE $1::text IS NOT NULL AND (SELECT count(*) FROM locked) = cardinality($4::uuid[])
    ON CONFLICT DO NOTHING RETURNING 1
), ok AS (
    SELECT (SELECT count(*) FROM locked) = cardinality($4::uuid[])
           AND ($1::text IS NULL OR (SELECT count(*) FROM claim) = 1) AS ok
), sealed AS (
    INSERT INTO metric_blocks ({block_cols})
    SELECT {block_cols} FROM {block_src} AS {blocks_as} WHERE sealed AND (SELECT ok FROM ok)
    RETURNING 1
), tail AS (
    INSERT INTO metric_tail ({block_cols})
    SELECT {block_cols} FROM {block_src} AS {blocks_as} WHERE NOT sealed AND (SELECT ok FROM ok)
    RETURNING 1
), tiers AS (
    INSERT INTO metric_tier_blocks ({tier_cols})
    SELECT * FROM {tier_src} WHERE (SELECT ok FROM ok)
    RETURNING 1
), summ AS (
    INSERT INTO metric_summaries AS s (run_id, metric_name, count, finite_count,
        nonfinite_count, mean, m2, min_value, max_value, first_time, last_time, first_step,
        last_step, latest_step, latest_time, latest_value, open_writes)
    SELECT ($5::uuid[])[u.i], ($6::text[])[u.i], u.count, u.finite, u.count - u.finite,
           nullif(u.mean, 'NaN'), u.m2, nullif(u.lo, 'NaN'), nullif(u.hi, 'NaN'),
           u.t0, u.t1, u.s0, u.s1, u.ls, u.lt, u.lv, 1
    FROM {summ_src} WITH ORDINALITY AS u({names}, i)
    WHERE (SELECT ok FROM ok)  -- once the rows above are in: rows stay locked briefly
      AND (SELECT count(*) FROM sealed) + (SELECT count(*) FROM tail)
          + (SELECT count(*) FROM tiers) >= 0
    ON CONFLICT (run_id, metric_name) DO UPDATE SET
        count = s.count + excluded.count,
        finite_count = s.finite_count + excluded.finite_count,
        nonfinite_count = s.nonfinite_count + excluded.nonfinite_count,
        {_welford("s", "finite_count")},
        min_value = least(s.min_value, excluded.min_value),
        max_value = greatest(s.max_value, excluded.max_value),
        first_time = least(s.first_time, excluded.first_time),
        last_time = greatest(s.last_time, excluded.last_time),
        first_step = least(s.first_step, excluded.first_step),
        last_step = greatest(s.last_step, excluded.last_step),
        {
        _pick(
            "s",
            "latest",
            "s.count = 0 OR (excluded.latest_time, excluded.latest_step)"
            " >= (s.latest_time, s.latest_step)",
        )
    },
        open_writes = CASE WHEN s.open_writes + 1 >= $7::int4 THEN 0
                           ELSE s.open_writes + 1 END  -- 0: this writer seals it
    RETURNING run_id, metric_name, open_writes
), next AS (
    INSERT INTO run_live_seq AS q (run_id, seq)
    SELECT unnest(${live}::uuid[]), 1
    WHERE (SELECT ok FROM ok) AND (SELECT count(*) FROM summ) >= 0  -- after the summaries
    ON CONFLICT (run_id) DO UPDATE SET seq = q.seq + 1
    RETURNING run_id, seq
), kept AS (
    INSERT INTO batch_live_seq (kind, batch_id, run_id, seq)
    SELECT 'metrics', $2::text, run_id, seq FROM next
)
SELECT $1::text IS NOT NULL AND (SELECT count(*) FROM claim) = 0
       AND ((SELECT count(*) FROM locked) = cardinality($4::uuid[])
            OR EXISTS (SELECT FROM ingest_batches WHERE kind = $1::text AND batch_id = $2::text))
           AS duplicate,
       array(SELECT id FROM locked) AS found,
       array(SELECT ARRAY[run_id::text, metric_name::text, open_writes::text] FROM summ)
           AS writes,
       array(SELECT ARRAY[run_id::text, seq::text] FROM next) AS seq"""


@dataclass(slots=True)
class Points:
    """A batch's points with series ids: series ``i`` is ``keys[i]`` (run id, name)."""

    keys: list[tuple[uuid.UUID, str]]
    series: np.ndarray
    steps: np.ndarray
    times: np.ndarray
    values: np.ndarray


def batch_points(batch: MetricBatch) -> Points:
    """Series ids of a batch's points, numbered in lock order (steps as given, auto
    steps unresolved)."""
    width = len(batch.names)
    key = batch.run_idx.astype(np.int64) * width + batch.name_idx
    space = len(batch.run_ids) * width
    if space <= 4 * len(key) + 1024:  # a lookup table beats sorting the points
        present = np.zeros(space, bool)
        present[key] = True
        uniq = np.flatnonzero(present)
        lut = np.empty(space, np.int64)
        lut[uniq] = np.arange(len(uniq))
        series = lut[key]
    else:
        uniq, series = np.unique(key, return_inverse=True)
    keys = [(batch.run_ids[u // width], batch.names[u % width]) for u in uniq.tolist()]
    # series ids in lock order: (run id bytes, name), the same in every transaction
    rank = sorted(range(len(keys)), key=lambda j: (keys[j][0].bytes, keys[j][1]))
    remap = np.empty(len(keys), np.int64)
    remap[rank] = np.arange(len(keys))
    keys = [keys[j] for j in rank]
    return Points(keys, remap[series.ravel()], batch.steps, batch.times, batch.values)


@dataclass(slots=True)
class Derived:
    """What a batch writes: its rows (blocks, tail, tiers) and the summary arrays
    ($5.. of :func:`derived_sql`)."""

    encoded: blocks.Encoded
    args: list[Any]

    def params(self, seal_writes: int) -> list[Any]:
        """The parameters $5.. of :func:`derived_sql` but the live run ids."""
        e = self.encoded
        rows = [(True, *r) for r in e.blocks] + [(False, *r) for r in e.tail]
        return [
            *self.args[:2],
            seal_writes,
            *self.args[2:],
            *_columns(rows, len(_BLOCK_PARAMS)),
            *_columns(e.tiers, len(_TIER_PARAMS)),
        ]


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as ``width`` column lists."""
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def derived_args(p: Points, metadata: list[dict[str, Any] | None] | None = None) -> Derived:
    """Series keys, batch summaries, blocks and tier rows of the points."""
    sums = agg.summarize_groups(p.series, p.steps, p.times, p.values)
    s = [sums[i] for i in range(len(p.keys))]
    args: list[Any] = [[k[0] for k in p.keys], [k[1] for k in p.keys]]
    args += [
        [x.count for x in s], [x.finite_count for x in s], [x.mean for x in s],
        [x.m2 for x in s], [x.min_value for x in s], [x.max_value for x in s],
        [x.first_time for x in s], [x.last_time for x in s], [x.first_step for x in s],
        [x.last_step for x in s], [x.latest_step for x in s], [x.latest_time for x in s],
        [x.latest_value for x in s],
    ]  # fmt: skip
    encoded = blocks.encode_points(p.keys, p.series, p.steps, p.times, p.values, metadata)
    return Derived(encoded, args)


async def upsert_derived(
    conn: asyncpg.Connection,
    derived: Derived,
    *,
    claim: tuple[str, str, int] | None,
    run_ids: list[uuid.UUID],
    live: list[uuid.UUID],
    batch_id: str | None = None,
) -> tuple[dict[str, int], list[blocks.Key]]:
    """Write ``derived`` with :func:`derived_sql` (``claim``: kind, batch id,
    points; None when already claimed, then ``batch_id`` names the batch) and
    take a live sequence number for each run of ``live``. Return the live
    numbers and the series this batch found due for a seal (the caller seals
    them once committed: :func:`.postgres_blocks.seal_due`); raise
    Duplicate/RunNotFound (nothing was written unless the caller's transaction
    holds earlier writes: then roll back)."""
    kind, bid, n = claim if claim is not None else (None, batch_id, 0)
    order = sorted(live, key=lambda r: r.bytes)
    row = _one(
        await conn.fetchrow(
            derived_sql(), kind, bid, n, run_ids, *derived.params(blocks.SEAL_WRITES), order
        )
    )
    check_claim(not row["duplicate"], run_ids, row["found"])
    due = [(uuid.UUID(r), m) for r, m, w in row["writes"] or () if int(w) == 0]
    return {r: int(q) for r, q in row["seq"] or ()}, due


def _one(row: asyncpg.Record | None) -> asyncpg.Record:
    """The row of a statement that always returns one (a claim)."""
    if row is None:
        raise RuntimeError("the claim statement returned no row")
    return row


def check_claim(claimed: bool, run_ids: list[uuid.UUID], found: list[uuid.UUID]) -> None:
    """Raise Duplicate when the batch was not claimed, else RunNotFound for the
    first unknown run."""
    if not claimed:
        raise Duplicate()
    have = set(found)
    for rid in run_ids:
        if rid not in have:
            raise RunNotFound(rid)


async def _derive(p: Points, batch: MetricBatch) -> Derived:
    """:func:`derived_args`, in a worker thread for a large batch."""
    if len(batch) >= THREAD_POINTS:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, derived_args, p, batch.metadata)
    return derived_args(p, batch.metadata)


async def write_metrics(
    conn: asyncpg.Connection, batch: MetricBatch
) -> tuple[np.ndarray, dict[str, int]]:
    """Write ``batch`` (outside any transaction of the caller's); return its
    resolved steps and each run's live sequence number (docs/api.md, "Live
    message ordering": the counter rows stay locked until commit, so a run's
    numbers follow commit order).

    A batch with explicit steps is one statement (:func:`derived_sql`); auto
    steps claim and lock first, in a transaction. The series the batch found
    due are sealed once it committed, in a transaction of their own. Raises
    Duplicate for a replay and RunNotFound for an unknown run, having written
    nothing.
    """
    n = len(batch)
    p = batch_points(batch)
    auto = batch.auto_step
    if n and (auto is None or not auto.any()):
        derived = await _derive(p, batch)
        seq, due = await upsert_derived(
            conn, derived, claim=("metrics", batch.batch_id, n), run_ids=batch.run_ids,
            live=batch.run_ids,
        )  # fmt: skip
    else:
        async with conn.transaction():
            row = _one(await conn.fetchrow(CLAIM, "metrics", batch.batch_id, n, batch.run_ids))
            check_claim(row["claimed"], batch.run_ids, row["found"])
            if n == 0:
                return batch.steps, {}
            keys = ([k[0] for k in p.keys], [k[1] for k in p.keys])
            rows = await conn.fetch(LOCK_SUMMARIES, *keys)
            position = {k: i for i, k in enumerate(p.keys)}
            last = {
                position[(r["run_id"], r["metric_name"])]: r["last_step"]
                for r in rows
                if r["count"]
            }
            if auto is not None:
                p.steps = assign_auto_steps(batch.steps, auto, p.series, last)
            derived = await _derive(p, batch)
            seq, due = await upsert_derived(
                conn, derived, claim=None, run_ids=batch.run_ids, live=batch.run_ids,
                batch_id=batch.batch_id,
            )  # fmt: skip
    if due:
        await blocks.seal_due(conn, due)
    return p.steps, seq


async def replayed_live_seq(conn: asyncpg.Connection, batch_id: str) -> dict[str, int]:
    """The live sequence numbers a metrics batch took when it was first committed."""
    rows = await conn.fetch(
        "SELECT run_id, seq FROM batch_live_seq WHERE kind = 'metrics' AND batch_id = $1",
        batch_id,
    )
    return {str(r["run_id"]): int(r["seq"]) for r in rows}


async def write_system_metrics(conn: asyncpg.Connection, batch: SystemMetricBatch) -> None:
    """Write a system-metrics batch inside the caller's transaction (Duplicate on a replay)."""
    n = len(batch)
    row = _one(await conn.fetchrow(CLAIM, "system", batch.batch_id, n, batch.run_ids))
    check_claim(row["claimed"], batch.run_ids, row["found"])
    if n == 0:
        return
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
