"""Read-cache benchmark: what a cached read costs now that every hit first reads
the run's generation from the database (server_extension/wanllm_server/cache.py).

    python benchmarks/cache.py [--backend sqlite|timescaledb|all] [--points 100000]

Per backend, the median of ``--repeats`` calls (no HTTP): the generation read
alone; ``latest`` and ``runs/{id}/metrics`` (100,000 points) computed by the
store; the same through ``Cache.fetch`` on a hit, with the in-memory cache and
with Redis. Ratios are hit / computed. Starts its own TimescaleDB cluster and
Redis (tests/services.py).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wanllm_server.cache import Cache, MemoryCache, RedisCache, cache_key
from wanllm_server.store import MetricBatch, RunCreate, Store, open_store

from tests.services import PostgresCluster, RedisServer

T0 = 1_780_000_000_000_000


async def median_us(fn: Callable[[], Awaitable[Any]], repeats: int) -> float:
    await fn()
    spent = []
    for _ in range(repeats):
        t = time.perf_counter()
        await fn()
        spent.append((time.perf_counter() - t) * 1e6)
    return statistics.median(spent)


async def load(store: Store, points: int) -> uuid.UUID:
    run, _ = await store.create_run(RunCreate(project="bench-cache"))
    for first in range(0, points, 10_000):
        steps = np.arange(first, min(first + 10_000, points), dtype=np.int64)
        await store.write_metrics(
            MetricBatch(
                batch_id=uuid.uuid4().hex,
                run_ids=[run.id],
                names=["loss"],
                run_idx=np.zeros(len(steps), np.int32),
                name_idx=np.zeros(len(steps), np.int32),
                steps=steps,
                times=T0 + steps * 1000,
                values=np.sin(steps / 500.0),
            )
        )
    return run.id


async def bench(store: Store, caches: dict[str, Cache], points: int, repeats: int) -> None:
    rid = await load(store, points)

    async def latest() -> bytes:
        p = await store.latest(rid, "loss")
        return repr(p).encode()

    async def run_metrics() -> bytes:
        n = 0
        async for chunk in store.bulk_history([rid], None, chunk_points=points):
            n += len(chunk.series)
        return str(n).encode()

    gen = await median_us(lambda: store.cache_generation(rid), repeats)
    print(f"  generation read                         {gen:9.0f} µs")
    for label, produce in (("latest", latest), (f"run metrics ({points:,} points)", run_metrics)):
        computed = await median_us(produce, repeats)
        print(f"  {label:<38}  {computed:9.0f} µs computed")
        for name, cache in caches.items():
            key = cache_key(label, rid)
            hit = await median_us(
                lambda c=cache, k=key, p=produce: c.fetch(store, k, 60, p), repeats
            )
            print(f"  {'':<38}  {hit:9.0f} µs {name} hit ({hit / computed:.2f}x)")


async def run_backend(backend: str, points: int, repeats: int, redis_url: str) -> None:
    cluster = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp(prefix='wanllm-bench-cache-')}/bench.db"
    else:
        cluster = PostgresCluster(timescaledb=True).start()
        url = cluster.create_database("bench_cache")
    store = open_store(url)
    await store.open()
    caches: dict[str, Cache] = {"memory": MemoryCache(), "redis": RedisCache(redis_url)}
    try:
        print(backend)
        await bench(store, caches, points, repeats)
    finally:
        for cache in caches.values():
            await cache.close()
        await store.close()
        if cluster is not None:
            cluster.destroy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "timescaledb", "all"), default="all")
    ap.add_argument("--points", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=200)
    args = ap.parse_args()
    backends = ["sqlite", "timescaledb"] if args.backend == "all" else [args.backend]
    with RedisServer() as redis:
        for backend in backends:
            asyncio.run(run_backend(backend, args.points, args.repeats, redis.url))


if __name__ == "__main__":
    main()
