"""Scale harness (issue 14): Jupyter servers sharing one TimescaleDB + Redis, a
bulk-loaded history of >= 100M points, and 100 live runs logging meanwhile.

    flock /tmp/wanllm-heavy.lock python benchmarks/scale.py [--quick]
        [--history-runs 10] [--metrics 10] [--steps 1000000] [--servers 2]
        [--live-runs 100] [--hz 10] [--seconds 60] [--queries 200]

Starts its own throwaway PostgreSQL + TimescaleDB cluster and Redis
(``tests/services.py``); everything it started is stopped on exit, Ctrl-C and
failure included. Then:

1. Bulk history: ``--history-runs`` runs x ``--metrics`` metrics x ``--steps``
   steps (default 10 x 10 x 1M = 100M points), written through the store's
   own ingest path (``PostgresStore.write_metrics``, two writers) in the
   bundled client's largest batch (100,000 points: 10 metrics x 10,000
   steps), so the rows read are the rows the server writes. Prints the load
   rate and the bytes a point of the whole database.
2. Chart queries at the store level: ``downsample`` into 1,000 buckets (the
   chart widget's ``samples``) of a 1M-point metric of the history, at the full
   range, 10 %, 1 %, 0.1 % zooms and the worst zoom (a window just over
   1,000 x 16 steps: every point read raw); server-side time, p50/p99.
3. ``--servers`` Jupyter servers with the extension on the same database and
   Redis. ``--live-runs`` runs, each logging ``--metrics`` metrics at ``--hz``
   through the real ``wanllm_jupyter`` client (``wl.init`` / ``run.log`` in
   threads of ``--live-procs`` processes, runs spread over the servers), for
   ``--seconds``. Meanwhile, over HTTP against the servers: the chart query
   (``GET runs/{id}/metrics/{name}?samples=1000`` with the zooms above), the
   sidebar's runs listing (``GET runs?project=...&limit=1000&sort=-created_at``,
   and with a filter), and ``Api().run(id).history([name])`` -> DataFrame of a
   1M-point metric. p50/p99 of each; ingest achieved vs offered.

Goals (issue 14): chart query <= 5 ms at any zoom with >= 100M points in the
database; ``Api().history()`` of a 1M-point metric <= 0.3 s; ingest achieved =
offered. The machine is shared: the load average is printed with the figures.
``--quick``: a smoke run (2M points, 10 live runs for 10 s, 20 queries each).
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(ROOT))

from wanllm_server.store.base import Downsampled, MetricBatch, RunCreate, RunUpdate  # noqa: E402
from wanllm_server.store.postgres import PostgresStore  # noqa: E402

from tests.services import PostgresCluster, RedisServer  # noqa: E402

T0 = 1_780_000_000_000_000  # µs
BATCH_STEPS = 10_000  # steps a batch per metric: 100k points with 10 metrics
BUCKETS = 1000  # the chart widget's samples
HISTORY_PROJECT = "scale-history"
Timing = tuple[float, float]  # p50, p99 in ms


def history_batch(run_id: uuid.UUID, metrics: int, first: int, steps: int) -> MetricBatch:
    """``metrics`` metrics at steps ``first .. first + steps - 1``, one point every 10 ms."""
    st = np.repeat(np.arange(first, first + steps, dtype=np.int64), metrics)
    rng = np.random.default_rng(first)
    return MetricBatch(
        batch_id=uuid.uuid4().hex,
        run_ids=[run_id],
        names=[f"train/m{i}" for i in range(metrics)],
        run_idx=np.zeros(len(st), np.int32),
        name_idx=np.tile(np.arange(metrics, dtype=np.int32), steps),
        steps=st,
        times=T0 + st * 10_000,
        values=np.sin(st / 5000.0) + rng.normal(0, 0.1, len(st)),
    )


async def bulk_load(
    store: PostgresStore, runs: int, metrics: int, steps: int, writers: int = 2
) -> tuple[list[uuid.UUID], float]:
    """Write the history runs through ``write_metrics``; (run ids, points/s)."""
    ids = []
    for i in range(runs):
        run, _ = await store.create_run(RunCreate(project=HISTORY_PROJECT, name=f"history-{i}"))
        ids.append(run.id)
    work = [(rid, first) for rid in ids for first in range(0, steps, BATCH_STEPS)]

    async def writer(k: int) -> None:
        for rid, first in work[k::writers]:
            await store.write_metrics(
                history_batch(rid, metrics, first, min(BATCH_STEPS, steps - first))
            )

    start = time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(writers)))
    rate = runs * metrics * steps / (time.perf_counter() - start)
    for rid in ids:
        await store.update_run(rid, RunUpdate(state="finished"))
    return ids, rate


async def db_bytes(store: PostgresStore) -> int:
    """Bytes of the whole database on disk, after VACUUM ANALYZE."""
    async with store._conn() as conn:
        await conn.execute("VACUUM ANALYZE")
        return int(await conn.fetchval("SELECT pg_database_size(current_database())"))


def zooms(steps: int) -> list[tuple[str, int | None, int | None]]:
    """(label, start_step, end_step) of the chart zooms, centred in ``steps``."""
    out: list[tuple[str, int | None, int | None]] = [("full range", None, None)]
    for label, frac in (("10 %", 0.1), ("1 %", 0.01), ("0.1 %", 0.001)):
        width = max(1, int(steps * frac))
        lo = (steps - width) // 2 + 7  # not aligned to any tier bucket
        out.append((f"{label} zoom", lo, lo + width - 1))
    width = 16 * BUCKETS + 17  # widest window still read raw: the most raw points
    lo = (steps - width) // 2 + 3
    out.append(("worst zoom (raw)", lo, min(steps - 1, lo + width - 1)))
    return out


def percentiles(ms: list[float]) -> Timing:
    return statistics.median(ms), statistics.quantiles(ms, n=100, method="inclusive")[98]


async def time_async(fn: Callable[[], Awaitable[Any]], n: int) -> Timing:
    await fn()
    spent = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        spent.append((time.perf_counter() - t) * 1e3)
    return percentiles(spent)


async def store_charts(
    store: PostgresStore, rid: uuid.UUID, steps: int, n: int
) -> list[tuple[str, Timing]]:
    """Store-level downsample timings of ``train/m3`` of ``rid`` at every zoom."""
    out = []
    for label, lo, hi in zooms(steps):

        def query(lo: int | None = lo, hi: int | None = hi) -> Awaitable[Downsampled]:
            return store.downsample(rid, "train/m3", BUCKETS, start_step=lo, end_step=hi)

        out.append((label, await time_async(query, n)))
    return out


def fmt(t: Timing, goal: float | None = None) -> str:
    s = f"p50 {t[0]:7.2f} ms  p99 {t[1]:7.2f} ms"
    return s if goal is None else f"{s}  (p99 {t[1] / goal:.0%} of the {goal:g} ms goal)"


async def store_phase(dsn: str, args: argparse.Namespace) -> list[uuid.UUID]:
    store = PostgresStore(dsn)
    await store.open()
    try:
        ids, rate = await bulk_load(store, args.history_runs, args.metrics, args.steps)
        points = args.history_runs * args.metrics * args.steps
        print(f"bulk history: {points:,} points loaded at {rate:,.0f} points/s", flush=True)
        size = await db_bytes(store)
        print(f"database: {size / 2**20:,.0f} MiB, {size / points:.1f} B a point", flush=True)
        print(f"store-level chart query ({BUCKETS} buckets, 1 of {points:,} points):")
        for label, t in await store_charts(store, ids[0], args.steps, args.queries):
            print(f"  {label:20} {fmt(t, 5.0)}", flush=True)
    finally:
        await store.close()
    return ids


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run (see above)")
    ap.add_argument("--history-runs", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200, help="per latency figure")
    ap.add_argument("--dsn", help="reuse this (already loaded) database: skip the bulk load")
    args = ap.parse_args()
    if args.quick:
        args.history_runs, args.steps, args.queries = 2, 100_000, 20
    cluster = redis = None
    try:
        cluster = PostgresCluster(
            timescaledb=True, settings={"shared_buffers": "1GB", "max_wal_size": "8GB"}
        ).start()
        redis = RedisServer().start()
        dsn = cluster.create_database("scale")
        asyncio.run(store_phase(dsn, args))
    finally:
        if redis is not None:
            redis.destroy()
        if cluster is not None:
            cluster.destroy()
    print("machine load (1/5 min): {:.1f} {:.1f}".format(*os.getloadavg()[:2]))


if __name__ == "__main__":
    main()
