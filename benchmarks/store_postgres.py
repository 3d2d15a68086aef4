"""PostgreSQL/TimescaleDB rows of the storage benchmark (issues 2 and 3).

    python benchmarks/store_postgres.py [--plain] [--dsn DSN] [--quick] [--ingest-only]
                                        [--rounds N]

Starts a throwaway cluster from ``tests/services.py`` (TimescaleDB unless
``--plain``) unless ``--dsn`` is given. ``bench(dsn)`` returns the rows
``(backend, measure, value, unit)`` that ``benchmarks/store.py --backend all``
prints. Every rate is printed beside its floor measured in the same run (the
machine is shared: compare ratios, not absolute figures):

* ingest, one connection: 1,000,000 points (10 metrics x 100,000 steps, one
  run) through ``write_metrics`` in batches of 10,000, beside the raw binary
  COPY of the same pre-encoded rows into a table of one row a point (the seed's
  ``metrics`` schema and series index, a hypertable on TimescaleDB: what the
  store kept before packed blocks) with the same batching (one transaction per
  batch). ``--rounds`` (default 3) rounds alternate floor/store (the machine
  is shared: a round may be slowed); the best rate of each is printed, and the
  median and minimum of the rounds' store/floor ratios.
* ingest, 1,000- and 10,000-point batches (10 metrics x 100/1,000 steps, one
  run, like ``benchmarks/server.py``) from 1, 2 and 4 connections, beside the
  raw COPY floor with the same batches and writers (``--ingest-only``: these
  rows alone).
* bytes a point on disk (tables, indexes, TOAST; tiers and summaries
  included) for the 1M points in 10k- and 1k-point batches, beside the
  one-row-a-point table;
* reads: median latency of history (100k and 1M points, beside the raw COPY
  out of the same points from the one-row-a-point table, parsed by numpy), bulk history of
  the 1M-point metric, downsampling into 1,000 buckets at several zooms,
  latest, stats; downsampling of a series written in 10-point batches.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from services import PostgresCluster  # noqa: E402
from wanllm_server.store.base import MetricBatch, RunCreate, RunUpdate  # noqa: E402
from wanllm_server.store.postgres import PostgresStore  # noqa: E402
from wanllm_server.store.postgres_copy import (  # noqa: E402
    HEADER,
    TRAILER,
    decode_fixed,
    encode_group,
    strip_copy,
)

Row = tuple[str, str, float, str]
T0 = 1_700_000_000_000_000
COLUMNS = ["time", "run_id", "metric_name", "step", "value", "metadata"]
RAW = "bench_raw_points"  # the floor's table: one row a point
RAW_DDL = f"""
CREATE TABLE IF NOT EXISTS {RAW} (
    time timestamptz NOT NULL, run_id uuid NOT NULL, metric_name varchar(255) NOT NULL,
    step bigint NOT NULL, value double precision NOT NULL, metadata jsonb);
CREATE INDEX IF NOT EXISTS {RAW}_series ON {RAW} (run_id, metric_name, step, time) INCLUDE (value);
"""
TABLES = ("metric_blocks", "metric_tail", "metric_tier_blocks", "metric_summaries")


def make_batches(
    run_id: uuid.UUID, metrics: int, steps: int, batch: int, first_step: int = 0
) -> list[MetricBatch]:
    """Batches of ``batch`` points: consecutive steps, every metric at each step."""
    names = [f"metric_{i}" for i in range(metrics)]
    rng = np.random.default_rng(first_step)
    per = max(1, batch // metrics)
    out = []
    for s0 in range(first_step, first_step + steps, per):
        st = np.repeat(np.arange(s0, min(s0 + per, first_step + steps), dtype=np.int64), metrics)
        n = len(st)
        out.append(
            MetricBatch(
                batch_id=uuid.uuid4().hex,
                run_ids=[run_id],
                names=names,
                run_idx=np.zeros(n, np.int32),
                name_idx=np.tile(np.arange(metrics, dtype=np.int32), n // metrics),
                steps=st,
                times=T0 + st * 10_000,
                values=rng.standard_normal(n),
            )
        )
    return out


def floor_payload(b: MetricBatch) -> memoryview:
    """The batch's rows as raw binary COPY data for ``metrics`` (built untimed)."""
    parts = [HEADER]
    rid = b.run_ids[0].bytes
    for k, name in enumerate(b.names):
        sel = b.name_idx == k
        fields = [("ts", b.times[sel]), ("bytes", rid), ("bytes", name.encode()),
                  ("i8", b.steps[sel]), ("f8", b.values[sel]), ("null", None)]  # fmt: skip
        parts.append(encode_group(int(sel.sum()), fields))
    parts.append(TRAILER)
    return memoryview(b"".join(parts))


async def _truncate(store: PostgresStore) -> None:
    async with store._conn() as conn:
        await conn.execute(f"TRUNCATE {RAW}, {', '.join(TABLES)}, ingest_batches CASCADE")


async def _make_raw_table(store: PostgresStore) -> None:
    async with store._conn() as conn:
        await conn.execute(RAW_DDL)
        if store.backend == "timescaledb":
            await conn.execute(
                f"SELECT create_hypertable('{RAW}', 'time', chunk_time_interval => "
                "interval '7 days', create_default_indexes => false, if_not_exists => true)"
            )


async def disk_bytes(store: PostgresStore, tables: tuple[str, ...]) -> int:
    """Bytes on disk of ``tables`` (heap, indexes, TOAST; a hypertable's chunks)."""
    total = 0
    async with store._conn() as conn:
        await conn.execute(f"VACUUM ANALYZE {', '.join(tables)}")
        for t in tables:
            hyper = store.backend == "timescaledb" and await conn.fetchval(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = $1",
                t,
            )
            size = "hypertable_size($1::regclass)" if hyper else "pg_total_relation_size($1)"
            total += int(await conn.fetchval(f"SELECT {size}", t))
    return total


async def bench_bytes(store: PostgresStore) -> list[Row]:
    """Bytes a point of 1M points (10 metrics x 100k steps) as stored, and raw."""
    be = store.backend
    rows: list[Row] = []
    for batch in (10_000, 1_000):
        await _truncate(store)
        run, _ = await store.create_run(RunCreate(project="bench"))
        for b in make_batches(run.id, 10, 100_000, batch):
            await store.write_metrics(b)
        what = f"bytes a point, 1M pts in {batch // 1000}k batches"
        rows.append((be, f"{what}, running", await disk_bytes(store, TABLES) / 1e6, "B"))
        await store.update_run(run.id, RunUpdate(state="finished"))  # seals the tails
        rows.append((be, f"{what}, finished", await disk_bytes(store, TABLES) / 1e6, "B"))
    await _truncate(store)
    async with store._conn() as conn:
        for b in make_batches(uuid.uuid4(), 10, 100_000, 10_000):
            await conn.copy_to_table(RAW, source=floor_payload(b), columns=COLUMNS, format="binary")
    raw = await disk_bytes(store, (RAW,)) / 1e6
    rows.append((be, "bytes a point, one row a point (the seed's schema)", raw, "B"))
    rows.append((be, "  packed (10k, finished) / one row a point", 100 * rows[1][2] / raw, "%"))
    return rows


async def _concurrently(
    writers: int, items: list[Any], fn: Callable[[Any], Awaitable[Any]]
) -> float:
    """Seconds to run ``fn`` over ``items`` from ``writers`` concurrent tasks."""

    async def worker(mine: list[Any]) -> None:
        for item in mine:
            await fn(item)

    t = time.perf_counter()
    await asyncio.gather(*(worker(items[i::writers]) for i in range(writers)))
    return time.perf_counter() - t


async def ingest_pair(
    store: PostgresStore, batches: list[MetricBatch], writers: int, rounds: int
) -> tuple[list[float], list[float]]:
    """(floor, store) points/s of each of ``rounds`` rounds, floor and store
    alternating (a round's ratio compares runs seconds apart)."""
    payloads = [floor_payload(b) for b in batches]
    npts = sum(len(b) for b in batches)

    async def copy(p: memoryview) -> None:
        async with store._conn() as conn, conn.transaction():
            await conn.copy_to_table(RAW, source=p, columns=COLUMNS, format="binary")

    async def write(b: MetricBatch) -> None:
        b.batch_id = uuid.uuid4().hex
        await store.write_metrics(b)

    floor, ingest = [], []
    for _ in range(rounds):
        await _truncate(store)
        floor.append(npts / await _concurrently(writers, payloads, copy))
        await _truncate(store)
        ingest.append(npts / await _concurrently(writers, batches, write))
    return floor, ingest


def pair_rows(be: str, what: str, floor: list[float], rate: list[float]) -> list[Row]:
    """Rows of one ingest configuration: the best floor and store rates, and the
    median and minimum of the per-round ratios (one lucky round is not the figure)."""
    ratios = [100 * r / f for f, r in zip(floor, rate, strict=True)]
    n = len(ratios)
    return [
        (be, f"raw COPY floor {what}", max(floor), "points/s"),
        (be, f"write_metrics  {what}", max(rate), "points/s"),
        (be, f"  write_metrics / floor, median of {n} rounds", statistics.median(ratios), "%"),
        (be, f"  write_metrics / floor, min of {n} rounds", min(ratios), "%"),
    ]


async def median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def raw_copy_out(store: PostgresStore, rid: uuid.UUID, name: str) -> int:
    """The read floor: one series' rows by binary COPY on one connection, numpy-parsed."""
    chunks: list[bytes] = []

    async def sink(data: bytes) -> None:
        chunks.append(data)

    q = (
        f"SELECT step, time, value FROM {RAW} WHERE run_id = '{rid}' AND metric_name = "
        f"'{name}' ORDER BY step, time"
    )
    async with store._conn() as conn:
        await conn.copy_from_query(q, output=sink, format="binary")
    return len(decode_fixed(strip_copy(b"".join(chunks)), ("i8", "ts", "f8"))[0])


async def bulk_points(store: PostgresStore, rid: uuid.UUID, names: list[str]) -> int:
    n = 0
    async for chunk in store.bulk_history([rid], names, chunk_points=1 << 21):
        n += len(chunk.series)
    return n


async def bench_ingest(store: PostgresStore, rounds: int, quick: bool) -> list[Row]:
    be = store.backend
    run, _ = await store.create_run(RunCreate(project="bench"))
    floor, rate = await ingest_pair(store, make_batches(run.id, 10, 100_000, 10_000), 1, rounds)
    rows = pair_rows(be, "(1M pts, 10k/batch, 1 conn)", floor, rate)
    steps = 20_000 if quick else 40_000
    for batch, writers in ((1_000, 1), (1_000, 2), (1_000, 4), (10_000, 2), (10_000, 4)):
        batches = make_batches(run.id, 10, steps, batch)
        floor, rate = await ingest_pair(store, batches, writers, rounds)
        what = f"({steps * 10 // 1000}k pts, {batch // 1000}k/batch, {writers} conns)"
        rows += pair_rows(be, what, floor, rate)
    return rows


async def bench_reads(store: PostgresStore, repeat: int) -> list[Row]:
    be = store.backend
    await _truncate(store)
    run, _ = await store.create_run(RunCreate(project="bench"))
    big, _ = await store.create_run(RunCreate(project="bench"))
    for rid, metrics, steps, per in ((run.id, 10, 100_000, 10_000), (big.id, 1, 1_000_000, 50_000)):
        for b in make_batches(rid, metrics, steps, per):
            await store.write_metrics(b)
            async with store._conn() as conn:  # the read floor's rows
                await conn.copy_to_table(RAW, source=floor_payload(b), columns=COLUMNS,
                                         format="binary")  # fmt: skip
    tiny, _ = await store.create_run(RunCreate(project="bench"))
    for b in make_batches(tiny.id, 1, 20_000, 10):  # 2,000 batches of 10 points
        await store.write_metrics(b)
    async with store._conn() as conn:
        await conn.execute("VACUUM ANALYZE")
    m0 = "metric_0"
    rows: list[Row] = []
    for label, rid in (("100k", run.id), ("1M", big.id)):
        rows += [
            (be, f"raw COPY out floor, {label}-point metric", await median_ms(
                lambda rid=rid: raw_copy_out(store, rid, m0), repeat), "ms"),
            (be, f"history, {label}-point metric", await median_ms(
                lambda rid=rid: store.history(rid, m0), repeat), "ms"),
        ]  # fmt: skip
    rows.append(
        (be, "bulk_history, 1M-point metric", await median_ms(
            lambda: bulk_points(store, big.id, [m0]), repeat), "ms")
    )  # fmt: skip
    rows.append(
        (be, "downsample 1000 buckets, 100k-point metric", await median_ms(
            lambda: store.downsample(run.id, m0, 1000), repeat), "ms")
    )  # fmt: skip
    zooms = {"all 1M steps": (0, 999_999), "10% zoom": (450_000, 549_999),
             "1% zoom": (123_457, 133_456), "unaligned 37%": (12_345, 382_344)}  # fmt: skip
    worst = 0.0
    for label, (a, z) in zooms.items():
        ms = await median_ms(
            lambda a=a, z=z: store.downsample(big.id, m0, 1000, start_step=a, end_step=z), repeat
        )
        worst = max(worst, ms)
        rows.append((be, f"downsample 1000 buckets, 1M-point metric, {label}", ms, "ms"))
    rows.append((be, "downsample 1000 buckets, 1M-point metric, worst zoom", worst, "ms"))
    async with store._conn() as conn:
        tier_rows = await conn.fetchval(
            "SELECT count(*) FROM metric_tier_blocks WHERE run_id = $1", tiny.id
        )
    rows += [
        (be, "tier rows, 20k-point metric in 10-point batches", tier_rows, "rows"),
        (be, "downsample 1000 buckets, 20k pts in 10-point batches", await median_ms(
            lambda: store.downsample(tiny.id, m0, 1000), repeat), "ms"),
        (be, "latest, 1M-point metric", await median_ms(
            lambda: store.latest(big.id, m0), 200), "ms"),
        (be, "stats, 1M-point metric", await median_ms(
            lambda: store.stats(big.id, m0), 200), "ms"),
    ]  # fmt: skip
    return rows


async def bench(
    dsn: str, rounds: int = 3, repeat: int = 9, quick: bool = False, ingest_only: bool = False
) -> list[Row]:
    """All PostgreSQL rows for the database ``dsn`` (its metric tables are truncated)."""
    store = PostgresStore(dsn)
    await store.open()
    try:
        await _make_raw_table(store)
        if ingest_only:
            return await bench_ingest(store, rounds, quick)
        rows = await bench_bytes(store)
        rows += await bench_ingest(store, rounds, quick)
        return rows + await bench_reads(store, repeat)
    finally:
        await store.close()


def run_postgres(
    *,
    plain: bool = False,
    dsn: str | None = None,
    quick: bool = False,
    ingest_only: bool = False,
    rounds: int = 3,
) -> list[Row]:
    """Benchmark ``dsn``, or a throwaway cluster (TimescaleDB unless ``plain``)."""
    if dsn is not None:
        return asyncio.run(bench(dsn, rounds, quick=quick, ingest_only=ingest_only))
    cluster = PostgresCluster(timescaledb=not plain).start()
    try:
        db = cluster.create_database("bench")
        return asyncio.run(bench(db, rounds, quick=quick, ingest_only=ingest_only))
    finally:
        cluster.destroy()


def print_rows(rows: list[Row]) -> None:
    for be, measure, value, unit in rows:
        print(f"{be:<12} {measure:<58} {value:>12,.2f} {unit}")


if __name__ == "__main__":
    args = sys.argv[1:]
    dsn = args[args.index("--dsn") + 1] if "--dsn" in args else None
    print_rows(
        run_postgres(
            plain="--plain" in args,
            dsn=dsn,
            quick="--quick" in args,
            ingest_only="--ingest-only" in args,
            rounds=int(args[args.index("--rounds") + 1]) if "--rounds" in args else 3,
        )
    )
    print(f"machine load (1/5 min): {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
