"""PostgreSQL/TimescaleDB rows of the storage benchmark (issue 2).

Run: ``python benchmarks/store_postgres.py`` (starts a throwaway cluster from
``tests/services.py``). ``run_postgres()`` returns the rows for the
``benchmarks/store.py`` frame: ``(backend, measure, value, unit)``.

Ingest: 1,000,000 points (10 metrics x 100,000 steps, one run) written with
``PostgresStore.write_metrics`` in batches of 10,000, beside the raw binary
COPY floor (the same rows, pre-encoded, COPYed into the same ``metrics``
hypertable with the same batch size, one transaction per batch) in the same
run; rounds alternate floor/store and the best of each is reported.
Latencies are medians over repeated calls on that data, plus a one-metric
1,000,000-point series for downsampling at several zoom levels.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "server_extension"), str(ROOT / "tests")]

from services import PostgresCluster  # noqa: E402
from wanllm_server.store.base import MetricBatch, RunCreate  # noqa: E402
from wanllm_server.store.postgres import PostgresStore  # noqa: E402
from wanllm_server.store.postgres_copy import HEADER, TRAILER, encode_group  # noqa: E402

Row = tuple[str, str, float, str]
T0 = 1_700_000_000_000_000


def make_batches(run_id: uuid.UUID, metrics: int, steps: int, batch: int) -> list[MetricBatch]:
    """Batches of ``batch`` points: consecutive steps, every metric at each step."""
    names = [f"metric_{i}" for i in range(metrics)]
    rng = np.random.default_rng(0)
    per = batch // metrics
    out = []
    for b, s0 in enumerate(range(0, steps, per)):
        st = np.repeat(np.arange(s0, min(s0 + per, steps), dtype=np.int64), metrics)
        n = len(st)
        out.append(
            MetricBatch(
                batch_id=f"bench-{run_id}-{b}",
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
        parts.append(
            encode_group(
                int(sel.sum()),
                [
                    ("ts", b.times[sel]),
                    ("bytes", rid),
                    ("bytes", name.encode()),
                    ("i8", b.steps[sel]),
                    ("f8", b.values[sel]),
                    ("null", None),
                ],
            )
        )
    parts.append(TRAILER)
    return memoryview(b"".join(parts))


async def _truncate(store: PostgresStore) -> None:
    async with store._conn() as conn:
        hourly = ", metrics_hourly" if store._hourly_table else ""
        await conn.execute(
            f"TRUNCATE metrics, metric_tiers, metric_summaries, ingest_batches{hourly}"
        )


async def _floor(store: PostgresStore, payloads: list[memoryview]) -> float:
    cols = ["time", "run_id", "metric_name", "step", "value", "metadata"]
    async with store._conn() as conn:
        t = time.perf_counter()
        for p in payloads:
            await conn.copy_to_table("metrics", source=p, columns=cols, format="binary")
        return time.perf_counter() - t


async def _ingest(store: PostgresStore, batches: list[MetricBatch]) -> float:
    t = time.perf_counter()
    for b in batches:
        await store.write_metrics(b)
    return time.perf_counter() - t


async def median_ms(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def bench(dsn: str, rounds: int = 2, repeat: int = 15) -> list[Row]:
    store = PostgresStore(dsn)
    await store.open()
    be = store.backend
    rows: list[Row] = []
    try:
        run, _ = await store.create_run(RunCreate(project="bench"))
        batches = make_batches(run.id, 10, 100_000, 10_000)
        npts = sum(len(b) for b in batches)
        payloads = [floor_payload(b) for b in batches]
        floor_s, ingest_s = [], []
        for _ in range(rounds):
            await _truncate(store)
            floor_s.append(await _floor(store, payloads))
            await _truncate(store)
            ingest_s.append(await _ingest(store, batches))
        floor_rate, ingest_rate = npts / min(floor_s), npts / min(ingest_s)
        rows += [
            (be, "raw binary COPY floor (1M pts, batches of 10k)", floor_rate, "points/s"),
            (be, "ingest write_metrics (1M pts, batches of 10k)", ingest_rate, "points/s"),
            (be, "ingest / floor", 100 * ingest_rate / floor_rate, "%"),
        ]
        async with store._conn() as conn:
            await conn.execute("VACUUM ANALYZE")
        rid, name = run.id, "metric_0"
        hist = await median_ms(lambda: store.history(rid, name), repeat)
        down = await median_ms(lambda: store.downsample(rid, name, 1000), repeat)
        rows += [
            (be, "history, 100k-point metric", hist, "ms"),
            (be, "downsample 1000 buckets, 100k-point metric", down, "ms"),
            (be, "latest", await median_ms(lambda: store.latest(rid, name), 200), "ms"),
            (be, "stats", await median_ms(lambda: store.stats(rid, name), 200), "ms"),
        ]  # fmt: skip

        big, _ = await store.create_run(RunCreate(project="bench"))
        for b in make_batches(big.id, 1, 1_000_000, 10_000):
            await store.write_metrics(b)
        async with store._conn() as conn:
            await conn.execute("VACUUM ANALYZE")
        one = "metric_0"
        zooms = {"all 1M steps": (0, 999_999), "10% zoom": (450_000, 549_999),
                 "1% zoom": (123_457, 133_456), "unaligned 37%": (12_345, 382_344)}  # fmt: skip
        worst = 0.0
        for label, (a, z) in zooms.items():
            ms = await median_ms(
                lambda a=a, z=z: store.downsample(big.id, one, 1000, start_step=a, end_step=z),
                repeat,
            )
            worst = max(worst, ms)
            rows.append((be, f"downsample 1000 buckets, 1M-point metric, {label}", ms, "ms"))
        rows.append((be, "downsample 1000 buckets, 1M-point metric, worst zoom", worst, "ms"))
        rows.append(
            (
                be,
                "history, 1M-point metric",
                await median_ms(lambda: store.history(big.id, one), 5),
                "ms",
            )
        )
        rows += [
            (
                be,
                "latest, 1M-point metric",
                await median_ms(lambda: store.latest(big.id, one), 200),
                "ms",
            ),
            (
                be,
                "stats, 1M-point metric",
                await median_ms(lambda: store.stats(big.id, one), 200),
                "ms",
            ),
        ]
    finally:
        await store.close()
    return rows


def run_postgres(*, plain: bool = False) -> list[Row]:
    """Start a throwaway cluster (TimescaleDB unless ``plain``) and benchmark it."""
    cluster = PostgresCluster(timescaledb=not plain).start()
    try:
        return asyncio.run(bench(cluster.create_database("bench")))
    finally:
        cluster.destroy()


def print_rows(rows: list[Row]) -> None:
    for be, measure, value, unit in rows:
        print(f"{be:<12} {measure:<58} {value:>12,.2f} {unit}")


if __name__ == "__main__":
    print_rows(run_postgres(plain="--plain" in sys.argv))
