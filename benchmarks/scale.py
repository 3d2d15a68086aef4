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
   range, 10 %, 1 %, 0.1 % zooms and the widest zoom read raw (~8,000 steps:
   buckets of 8 steps, finer than the finest tier); server-side time, p50/p99.
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
``--dsn URL``: use that database instead of a throwaway cluster (loads the
history only if it has none, so repeated experiments skip the load; start
Redis and the servers as usual); ``--no-live``: stop after step 2.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import urllib3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from wanllm_server.store.base import Downsampled, MetricBatch, RunCreate, RunUpdate  # noqa: E402
from wanllm_server.store.postgres import PostgresStore  # noqa: E402

from tests.jupyter_process import JupyterServer  # noqa: E402
from tests.services import PostgresCluster, RedisServer  # noqa: E402

T0 = 1_780_000_000_000_000  # µs
BATCH_STEPS = 10_000  # steps a batch per metric: 100k points with 10 metrics
BUCKETS = 1000  # the chart widget's samples
RUN_SPACING = 8 * 86_400 * 10**6  # µs between history runs' starts (chunks are 7 days)
HISTORY_PROJECT = "scale-history"
LIVE_PROJECT = "scale-live"  # + a suffix of each invocation (--dsn may reuse a database)
CHART_METRIC = "train%2Fm3"  # train/m3 as one path segment
Timing = tuple[float, float]  # p50, p99 in ms


def history_batch(
    run_id: uuid.UUID, metrics: int, first: int, steps: int, t0: int = T0
) -> MetricBatch:
    """``metrics`` metrics at steps ``first .. first + steps - 1``, one step every 10 ms
    from ``t0`` (µs)."""
    st = np.repeat(np.arange(first, first + steps, dtype=np.int64), metrics)
    rng = np.random.default_rng(first)
    return MetricBatch(
        batch_id=uuid.uuid4().hex,
        run_ids=[run_id],
        names=[f"train/m{i}" for i in range(metrics)],
        run_idx=np.zeros(len(st), np.int32),
        name_idx=np.tile(np.arange(metrics, dtype=np.int32), steps),
        steps=st,
        times=t0 + st * 10_000,
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
    # run i starts RUN_SPACING after run i - 1: the blocks span several hypertable chunks
    work = [(i, rid, first) for i, rid in enumerate(ids) for first in range(0, steps, BATCH_STEPS)]

    async def writer(k: int) -> None:
        for i, rid, first in work[k::writers]:
            n = min(BATCH_STEPS, steps - first)
            await store.write_metrics(history_batch(rid, metrics, first, n, T0 + i * RUN_SPACING))

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
    width = 8 * BUCKETS - 7  # the widest window read raw (buckets of 8 steps, below tiers)
    lo = (steps - width) // 2 + 3
    out.append(("widest raw zoom", lo, lo + width - 1))
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


def against(figure: float, goal: float, unit: str) -> str:
    """``figure`` beside its goal: ``(goal <= 5 ms: met)``."""
    return f"(goal <= {goal:g} {unit}: {'met' if figure <= goal else 'missed'})"


def fmt(t: Timing, goal: float | None = None) -> str:
    s = f"p50 {t[0]:7.2f} ms  p99 {t[1]:7.2f} ms"
    if goal is None:
        return s
    return f"{s}  p50 {against(t[0], goal, 'ms')}, p99 {against(t[1], goal, 'ms')}"


def fmt_history(sec: list[float], steps: int, when: str) -> str:
    """The ``Api().history()`` line: median and max seconds beside the 0.3 s goal."""
    med = statistics.median(sec)
    return (
        f"  Api().run(id).history(['train/m3']) -> DataFrame of {steps:,} points, {when}: "
        f"median {med:.3f} s, max {max(sec):.3f} s over {len(sec)} {against(med, 0.3, 's')}"
    )


async def loaded_history(store: PostgresStore) -> list[uuid.UUID]:
    """Ids of the history runs already in the database (by name), if any."""
    async with store._conn() as conn:
        rows = await conn.fetch(
            "SELECT id FROM runs WHERE project = $1 ORDER BY length(name), name", HISTORY_PROJECT
        )
    return [r["id"] for r in rows]


async def store_phase(dsn: str, args: argparse.Namespace) -> list[uuid.UUID]:
    store = PostgresStore(dsn)
    await store.open()
    try:
        points = args.history_runs * args.metrics * args.steps
        ids = await loaded_history(store)
        if ids:
            print(f"bulk history: reusing the {len(ids)} history runs in the database")
        else:
            ids, rate = await bulk_load(store, args.history_runs, args.metrics, args.steps)
            print(f"bulk history: {points:,} points loaded at {rate:,.0f} points/s", flush=True)
            size = await db_bytes(store)
            print(f"database: {size / 2**20:,.0f} MiB, {size / points:.1f} B a point", flush=True)
        print(f"store-level chart query ({BUCKETS} buckets, 1 of {points:,} points):")
        for label, t in await store_charts(store, ids[0], args.steps, args.queries):
            print(f"  {label:20} {fmt(t, 5.0)}", flush=True)
    finally:
        await store.close()
    return ids


# ------------------------------------------------------------------ live phase
def live_worker(
    servers: list[tuple[str, str]],
    project: str,
    names: list[str],
    args: tuple[int, float, float],
    root: str,
    ready: Any,
    start: Any,
    out: Any,
) -> None:
    """Runs ``names`` logged through the real client (``wl.init`` / ``run.log``),
    ``metrics`` metrics each at ``hz`` for ``seconds``; puts (points logged,
    ticks late, run ids, seconds spent finishing) on ``out``."""
    import wanllm_jupyter as wl
    from wanllm_jupyter import _lifecycle
    from wanllm_jupyter._http import Connection

    metrics, hz, seconds = args
    conns = [Connection(url, token) for url, token in servers]
    runs = []
    for i, name in enumerate(names):
        conn = conns[i % len(conns)]
        runs.append(
            wl.init(project=project, name=name, connection=conn, dir=root, system_metrics=False)
        )
        _lifecycle.current = None  # several runs at once: the next init must not finish it
    ready.put(len(runs))
    t0 = start.get()
    keys = [f"live/m{j}" for j in range(metrics)]
    logged = late = tick = 0
    while True:
        due = t0 + tick / hz
        if due >= t0 + seconds:
            break
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        elif wait < -1 / hz:
            late += 1
        for r in runs:
            r.log({k: math.sin(tick / 50 + j) for j, k in enumerate(keys)}, step=tick)
        logged += len(runs) * metrics
        tick += 1
    t = time.perf_counter()
    for r in runs:
        r.finish()
    out.put((logged, late, [r.id for r in runs], time.perf_counter() - t))


class Http:
    """GETs against the servers, round robin; latencies in ms per label."""

    def __init__(self, servers: list[JupyterServer]) -> None:
        self.servers = servers
        self.pool = urllib3.PoolManager(maxsize=8)
        self.times: dict[str, list[float]] = {}
        self.turn = 0

    def get(self, label: str, path: str) -> bytes:
        server = self.servers[self.turn % len(self.servers)]
        self.turn += 1
        t = time.perf_counter()
        r = self.pool.request("GET", server.url + "wanllm/api/v1/" + path, headers=server.headers)
        self.times.setdefault(label, []).append((time.perf_counter() - t) * 1e3)
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {r.data[:300]!r}")
        return bytes(r.data)


def http_queries(
    http: Http, project: str, history: list[uuid.UUID], steps: int, until: float
) -> int:
    """Chart queries at every zoom and the sidebar's listings, round robin,
    until ``until`` (time.monotonic); returns how many rounds ran."""
    rounds = 0
    while time.monotonic() < until:
        rid = random.choice(history)
        for label, lo, hi in zooms(steps):
            window = "" if lo is None else f"&start_step={lo}&end_step={hi}"
            http.get(
                f"chart, {label}", f"runs/{rid}/metrics/{CHART_METRIC}?samples={BUCKETS}{window}"
            )
        http.get(
            "sidebar: live project's runs",
            f"runs?project={project}&limit=1000&sort=-created_at",
        )
        http.get(
            "sidebar: filtered (state:running)",
            f"runs?project={project}&limit=1000&sort=-created_at&filter=state:running",
        )
        http.get("sidebar: projects", "projects")
        rounds += 1
    return rounds


def api_history(server: JupyterServer, rid: uuid.UUID, n: int) -> list[float]:
    """Seconds of ``Api().run(rid).history(["train/m3"])`` -> DataFrame, ``n`` times."""
    import wanllm_jupyter as wl

    api = wl.Api(server.url, server.token)
    out = []
    for _ in range(n):
        t = time.perf_counter()
        df = api.run(str(rid)).history(["train/m3"])
        out.append(time.perf_counter() - t)
        assert len(df) > 0
    return out


async def stored_points(dsn: str, project: str) -> int:
    store = PostgresStore(dsn)
    await store.open()
    try:
        async with store._conn() as conn:
            return int(
                await conn.fetchval(
                    "SELECT coalesce(sum(s.count), 0) FROM metric_summaries s"
                    " JOIN runs r ON r.id = s.run_id WHERE r.project = $1",
                    project,
                )
            )
    finally:
        await store.close()


def live_phase(
    dsn: str, redis_url: str, history: list[uuid.UUID], args: argparse.Namespace
) -> None:
    servers: list[JupyterServer] = []
    procs: list[multiprocessing.process.BaseProcess] = []
    root = tempfile.mkdtemp(prefix="wanllm-scale-")
    project = f"{LIVE_PROJECT}-{uuid.uuid4().hex[:8]}"
    try:
        for _ in range(args.servers):
            servers.append(
                JupyterServer(
                    Path(root) / f"server{len(servers)}",
                    database_url=dsn,
                    redis_url=redis_url,
                    extra_args=["--ServerApp.log_level=WARN"],
                ).start()
            )
        print(f"{len(servers)} Jupyter servers on one database and one Redis", flush=True)
        http = Http(servers)
        api_history(servers[0], history[0], 1)  # warm-up
        quiet = api_history(servers[0], history[0], args.api_histories)
        print(fmt_history(quiet, args.steps, "before the live runs"), flush=True)
        ctx = multiprocessing.get_context("spawn")
        ready, start, out = ctx.Queue(), ctx.Queue(), ctx.Queue()
        conns = [(s.url, s.token) for s in servers]
        names = [f"live-{i}" for i in range(args.live_runs)]
        for k in range(args.live_procs):
            proc = ctx.Process(
                target=live_worker,
                daemon=True,
                args=(
                    conns,
                    project,
                    names[k :: args.live_procs],
                    (args.metrics, args.hz, args.seconds),
                    str(Path(root) / "spool"),
                    ready,
                    start,
                    out,
                ),
            )
            proc.start()
            procs.append(proc)
        for _ in procs:
            ready.get(timeout=300)
        t0 = time.time() + 1.0
        for _ in procs:
            start.put(t0)
        time.sleep(max(0.0, t0 - time.time()) + min(3.0, args.seconds / 4))  # ingest settles
        end = time.monotonic() + args.seconds * 0.7
        rounds = http_queries(http, project, history, args.steps, end - args.seconds * 0.15)
        hist = api_history(servers[-1], history[-1], args.api_histories)
        time.sleep(max(0.0, t0 + args.seconds - time.time()))
        during = asyncio.run(stored_points(dsn, project))
        window = time.time() - t0
        results = [out.get(timeout=600) for _ in procs]
        logged = sum(r[0] for r in results)
        late = sum(r[1] for r in results)
        finishing = max(r[3] for r in results)
        total = asyncio.run(stored_points(dsn, project))
        offered = args.live_runs * args.metrics * args.hz
        print(
            f"live ingest: {args.live_runs} runs x {args.metrics} metrics at {args.hz:g} Hz "
            f"through wanllm_jupyter ({args.live_procs} processes), {args.seconds:g} s"
        )
        print(
            f"  offered {offered:,.0f} points/s; committed during the window "
            f"{during / window:,.0f} points/s ({during / window / offered:.0%} of offered; "
            f"the client sends about once a second)"
        )
        print(
            f"  logged {logged:,} points, stored {total:,} after finish "
            f"({'none lost' if total == logged else f'{logged - total:,} missing'}); "
            f"logger ticks late: {late}; finish took {finishing:.1f} s"
        )
        print(f"HTTP while they ingest ({rounds} rounds; {len(servers)} servers, round robin):")
        for label, ms in http.times.items():
            goal = 5.0 if label.startswith("chart") else None
            print(f"  {label:36} {fmt(percentiles(ms), goal)}")
        print(fmt_history(hist, args.steps, "during the ingest"))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for s in servers:
            s.stop()
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="a smoke run (see above)")
    ap.add_argument("--history-runs", type=int, default=10)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200, help="store-level queries a zoom")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--live-runs", type=int, default=100)
    ap.add_argument("--live-procs", type=int, default=4, help="client processes")
    ap.add_argument("--hz", type=float, default=10.0)
    ap.add_argument("--seconds", type=float, default=60.0, help="of live logging")
    ap.add_argument("--api-histories", type=int, default=10)
    ap.add_argument(
        "--dsn", help="use this database (its history runs, else it loads them); nothing dropped"
    )
    ap.add_argument("--no-live", action="store_true", help="skip the Jupyter servers' phase")
    args = ap.parse_args()
    if args.quick:
        args.history_runs, args.steps, args.queries = 2, 100_000, 20
        args.live_runs, args.live_procs, args.seconds, args.api_histories = 10, 2, 15.0, 3
    cluster = redis = None
    try:
        dsn = args.dsn
        if dsn is None:
            cluster = PostgresCluster(
                timescaledb=True, settings={"shared_buffers": "1GB", "max_wal_size": "8GB"}
            ).start()
            dsn = cluster.create_database("scale")
        history = asyncio.run(store_phase(dsn, args))
        if not args.no_live:
            redis = RedisServer().start()
            live_phase(dsn, redis.url, history, args)
    finally:
        if redis is not None:
            redis.destroy()
        if cluster is not None:
            cluster.destroy()
    print("machine load (1/5 min): {:.1f} {:.1f}".format(*os.getloadavg()[:2]))


if __name__ == "__main__":
    main()
