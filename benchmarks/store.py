"""Storage benchmark: 1,000,000 points (10 metrics x 100,000 steps, one run).

    python benchmarks/store.py --backend sqlite|timescaledb|postgresql|all [--dsn DSN]
        [--batch 10000] [--repeats 20]

Per backend: ingest points/s (batches of ``--batch`` points through ``write_metrics``),
bytes a point on disk (tiers, summaries and indexes included), then the
median latency of ~20 calls each of: full history of one metric (100k
points), downsampled history into 1,000 buckets over all steps and over a 10%
zoom window, latest, stats. Targets (issue 2): SQLite ingest >= 300k points/s;
downsampled <= 30 ms; latest <= 2 ms; stats <= 5 ms.
Postgres backends start a throwaway cluster (tests/services.py) without --dsn, and
then print the rows of ``benchmarks/store_postgres.py`` (raw COPY floors, concurrent
writers, 1M-point metric reads and downsampling).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
from wanllm_server.store import MetricBatch, RunCreate, Store, open_store

METRICS, STEPS, BATCH = 10, 100_000, 10_000
REPEATS = 20
T0 = 1_780_000_000_000_000


def batches(run_id: uuid.UUID) -> list[MetricBatch]:
    """10 metrics x STEPS steps, in step order, BATCH points per batch."""
    names = [f"metric/{i}" for i in range(METRICS)]
    per = BATCH // METRICS
    out = []
    rng = np.random.default_rng(0)
    for first in range(0, STEPS, per):
        steps = np.repeat(np.arange(first, first + per, dtype=np.int64), METRICS)
        out.append(
            MetricBatch(
                batch_id=uuid.uuid4().hex,
                run_ids=[run_id],
                names=names,
                run_idx=np.zeros(len(steps), np.int32),
                name_idx=np.tile(np.arange(METRICS, dtype=np.int32), per),
                steps=steps,
                times=T0 + steps * 1000,
                values=np.sin(steps / 500.0) + rng.normal(0, 0.1, len(steps)),
            )
        )
    return out


async def median_ms(fn: Callable[[], Awaitable[Any]]) -> float:
    await fn()
    times = []
    for _ in range(REPEATS):
        t = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


async def measure(store: Store) -> dict[str, float]:
    run, _ = await store.create_run(RunCreate(project="bench"))
    work = batches(run.id)
    t = time.perf_counter()
    for b in work:
        await store.write_metrics(b)
    ingest = sum(len(b) for b in work) / (time.perf_counter() - t)
    name = "metric/3"
    lo, hi = int(STEPS * 0.45), int(STEPS * 0.55) - 1
    return {
        "ingest points/s": ingest,
        "history 100k (ms)": await median_ms(lambda: store.history(run.id, name)),
        "downsample all (ms)": await median_ms(lambda: store.downsample(run.id, name, 1000)),
        "downsample 10% (ms)": await median_ms(
            lambda: store.downsample(run.id, name, 1000, start_step=lo, end_step=hi)
        ),
        "latest (ms)": await median_ms(lambda: store.latest(run.id, name)),
        "stats (ms)": await median_ms(lambda: store.stats(run.id, name)),
    }


async def bench_backend(backend: str, dsn: str | None, tmp: Path) -> dict[str, float]:
    cluster = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
    elif dsn is not None:
        url = dsn
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from services import PostgresCluster

        cluster = PostgresCluster(timescaledb=backend == "timescaledb").start()
        url = cluster.create_database(f"bench_{backend}")
    store = open_store(url)
    await store.open()
    try:
        out = await measure(store)
        if backend != "sqlite":
            import store_postgres  # benchmarks/ is the script's directory

            size = await store_postgres.disk_bytes(store, store_postgres.TABLES)
    finally:
        await store.close()
        if cluster is not None:
            cluster.destroy()
    if backend == "sqlite":  # closed: the WAL is checkpointed into the file
        size = sum(p.stat().st_size for p in tmp.glob("bench.db*"))
    out["bytes a point (disk)"] = size / (METRICS * STEPS)
    return out


def main() -> None:
    global BATCH, REPEATS
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--backend", choices=["sqlite", "timescaledb", "postgresql", "all"], default="sqlite"
    )
    ap.add_argument("--dsn", help="use this PostgreSQL database instead of a throwaway cluster")
    ap.add_argument("--batch", type=int, default=BATCH, help="points a batch (multiple of 10)")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="calls per read latency")
    args = ap.parse_args()
    BATCH, REPEATS = args.batch, args.repeats
    backends = ["sqlite", "timescaledb", "postgresql"] if args.backend == "all" else [args.backend]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            results[backend] = asyncio.run(bench_backend(backend, args.dsn, Path(tmp)))
    rows = list(next(iter(results.values())))
    print(f"{METRICS * STEPS:,} points ({METRICS} metrics x {STEPS:,} steps), batches of {BATCH:,}")
    print(f"{'':24}" + "".join(f"{b:>14}" for b in results))
    for row in rows:
        cells = "".join(
            f"{results[b][row]:>14,.0f}"
            if row.startswith("ingest")
            else f"{results[b][row]:>14.2f}"
            for b in results
        )
        print(f"{row:24}{cells}")
    for backend in (b for b in backends if b != "sqlite"):
        import store_postgres  # benchmarks/ is the script's directory

        print(f"\n{backend}: benchmarks/store_postgres.py (each rate beside its raw COPY floor)")
        store_postgres.print_rows(
            store_postgres.run_postgres(plain=backend == "postgresql", dsn=args.dsn)
        )


if __name__ == "__main__":
    main()
