"""Server extension benchmark: HTTP ingest vs the storage layer's own rate (same run,
same concurrency, same body → validation → write path), query latencies, server RSS.

    python benchmarks/server.py [--backend timescaledb|sqlite] [--clients 4]
        [--points 1000000] [--form arrow|json] [--batch 10000] [--row-points 200000]
    python benchmarks/server.py --e2e 10 [--peer-python /tmp/trackio-venv/bin/python]

Ingest is measured the way the bundled client sends: ``--clients`` concurrent
clients, each logging its own run, posting the compact columnar form (``arrow``,
the Arrow IPC stream the client sends by default, or ``json``, the columnar JSON
form) in batches of ``--batch`` points (the client sends up to
``max_columnar_batch_size``, 100,000). The seed's row form (``{"metrics": [...]}``,
at most 1,000 points a batch) is measured too, as a secondary figure. Each HTTP
figure is printed beside the storage layer's own rate for the same bodies
(decode + validate + ``write_metrics``, no HTTP) with the same concurrency.
Starts its own TimescaleDB cluster (tests/services.py) unless ``--backend sqlite``,
and a real ``jupyter server`` with the extension; prints a table.

``--e2e N`` measures instead N consecutive end-to-end runs of ``--points``
points (a dict of 10 scalars per ``log()`` call) by the bundled client
(``wl.init``, ``wl.log``, ``wl.finish``) through that one Jupyter server,
alternating with N runs of the same calls to trackio (``trackio.init``,
``trackio.log``, ``trackio.finish``), each timed from the first ``log()`` until
``finish()`` returns. What "done" means differs and is checked, untimed, after
each run: wanllm's ``finish()`` returns once the server acknowledged every
batch (committed in the database: ``report.sent_points`` must equal the points
logged); trackio logs to a local SQLite file through a background thread that
its ``finish()`` joins (its stored rows are counted and must equal the
``log()`` calls). trackio runs in its own virtualenv (``--peer-python`` or
``$WANLLM_TRACKIO_PYTHON``; e.g. ``python -m venv /tmp/trackio-venv &&
/tmp/trackio-venv/bin/pip install trackio``), in one subprocess that stays up
between its runs (its imports are not timed, like ours); without it the
trackio rows say "peer not available". Printed: each run's seconds (wanllm's
split into ``log()`` loop and ``finish()``, with its slowest request), the
median and max/median of each, and median wanllm / trackio points/s. Under
each run, what the PostgreSQL and Jupyter logs recorded meanwhile
(``benchmarks/slow_tails.py``: lock waits, slow statements, checkpoints, 5xx
responses, slow seals), so a slow run says what it waited for.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import psutil
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import slow_tails  # benchmarks/ is the script's directory
from wanllm_server.handlers.arrow_ingest import metric_batch_from_arrow
from wanllm_server.store import open_store
from wanllm_server.store.base import MetricBatch, RunCreate, Store
from wanllm_server.store.batches import metric_batch_from_columns
from wanllm_server.store.metric_rows import metric_batch_from_rows

from tests.jupyter_process import JupyterServer
from tests.services import PostgresCluster
from wanllm_jupyter._transport import arrow_batch
from wanllm_jupyter._wire import COLUMNAR_CONTENT_TYPE, ColumnarBatch

ARROW_TYPE = "application/vnd.apache.arrow.stream"
PEER_ENV = "WANLLM_TRACKIO_PYTHON"
HISTORY_POINTS = 1_000_000
NAMES = 10  # metrics per run
ROW_BATCH = 1000  # the seed's max_batch_size


def columnar(run_id: str, first_step: int, n: int) -> dict[str, Any]:
    """The bundled client's columnar wire form: n points over ``NAMES`` metrics."""
    idx = np.arange(n)
    return {
        "batch_id": uuid.uuid4().hex,
        "run_id": run_id,
        "names": [f"train/m{i}" for i in range(NAMES)],
        "k": (idx % NAMES).tolist(),
        "s": (first_step + idx // NAMES).tolist(),
        "t": (time.time() + idx * 1e-3).tolist(),
        "v": np.random.rand(n).tolist(),
        "format": "columnar",
    }


def body(run_id: str, first_step: int, n: int, form: str) -> bytes:
    """One request body of ``n`` points in ``form`` (arrow | json | rows)."""
    b = columnar(run_id, first_step, n)
    if form == "json":
        return orjson.dumps(b)
    if form == "rows":
        return orjson.dumps(
            {
                "batch_id": b["batch_id"],
                "metrics": [
                    {
                        "run_id": run_id,
                        "metric_name": b["names"][k],
                        "step": s,
                        "time": t,
                        "value": v,
                    }
                    for k, s, t, v in zip(b["k"], b["s"], b["t"], b["v"], strict=True)
                ],
            }
        )
    return arrow_batch(
        ColumnarBatch(
            b["batch_id"],
            run_id,
            b["names"],
            np.asarray(b["k"]),
            np.asarray(b["s"]),
            np.asarray(b["t"]),
            np.asarray(b["v"]),
        )
    )


def bodies(run_id: str, points: int, batch: int, form: str) -> list[bytes]:
    """One run's request bodies of ``batch`` points each (steps ascending)."""
    return [
        body(run_id, first // NAMES, batch, form)
        for first in range(0, points // batch * batch, batch)
    ]


def content_type(form: str) -> str:
    return {"arrow": ARROW_TYPE, "json": COLUMNAR_CONTENT_TYPE}.get(form, "application/json")


def decode(raw: bytes, form: str) -> MetricBatch:
    """The server's validation of one body (what the HTTP handler does, minus HTTP)."""
    if form == "arrow":
        return metric_batch_from_arrow(raw, sys.maxsize, sys.maxsize)
    b = orjson.loads(raw)
    if form == "rows":
        return metric_batch_from_rows(b["metrics"], b["batch_id"])
    return metric_batch_from_columns(
        b["run_id"], b["names"], b["k"], b["s"], b["t"], b["v"], b["batch_id"]
    )


# ------------------------------------------------------------------ storage layer
async def store_rate(store: Store, clients: int, points: int, batch: int, form: str) -> float:
    """Points/s of body → validation → store.write_metrics with ``clients``
    concurrent writers, each writing its own run (the HTTP path minus HTTP)."""
    per_client = []
    for i in range(clients):
        run, _ = await store.create_run(RunCreate(project="bench-store", name=f"w{i}"))
        per_client.append(bodies(str(run.id), points // clients, batch, form))

    async def writer(mine: list[bytes]) -> None:
        for raw in mine:
            await store.write_metrics(decode(raw, form))

    await asyncio.gather(*(writer(mine[:1]) for mine in per_client))  # warm-up, not timed
    start = time.perf_counter()
    await asyncio.gather(*(writer(mine[1:]) for mine in per_client))
    return sum(len(m) - 1 for m in per_client) * batch / (time.perf_counter() - start)


async def store_side(dsn: str, clients: int, points: int, batch: int, form: str) -> float:
    """:func:`store_rate` on a freshly opened store."""
    store = open_store(dsn)
    await store.open()
    try:
        return await store_rate(store, clients, points, batch, form)
    finally:
        await store.close()


# ------------------------------------------------------------------ HTTP
class Server:
    """A ``jupyter server`` subprocess with wanllm alone on ``database_url``
    (warnings-only log, as a deployment would run it)."""

    def __init__(self, database_url: str, root: Path) -> None:
        self.jupyter = JupyterServer(
            root, database_url=database_url, extra_args=["--ServerApp.log_level=WARN"]
        ).start()
        self.base = self.jupyter.url + "wanllm/api/v1/"
        self.headers = self.jupyter.headers
        self.http = urllib3.PoolManager(maxsize=32)

    def rss_mb(self) -> float:
        return psutil.Process(self.jupyter.proc.pid).memory_info().rss / 2**20

    def call(
        self, method: str, path: str, body: bytes | None = None, ctype: str = "application/json"
    ) -> Any:
        headers = {**self.headers, "Content-Type": ctype}
        resp = self.http.request(method, self.base + path, body=body, headers=headers)
        assert resp.status in (200, 201), (resp.status, resp.data[:300])
        return orjson.loads(resp.data)

    def stop(self) -> None:
        self.jupyter.stop()


def http_rate(
    server: Server, clients: int, points: int, batch: int, form: str
) -> tuple[float, float]:
    """Points/s over HTTP with ``clients`` threads, each posting its own run;
    returns (rate, peak RSS MB)."""
    per_client = []
    for i in range(clients):
        rid = server.call("POST", "runs", orjson.dumps({"project": "bench-http", "name": f"c{i}"}))[
            "id"
        ]
        per_client.append(bodies(rid, points // clients, batch, form))
    peak, done = [server.rss_mb()], threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak.append(server.rss_mb())

    def client(mine: list[bytes]) -> None:
        for raw in mine:
            server.call("POST", "metrics/batch", raw, content_type(form))

    warm = [threading.Thread(target=client, args=(mine[:1],)) for mine in per_client]
    for t in warm:  # one warm-up request per client, not timed (as for the storage layer)
        t.start()
    for t in warm:
        t.join()
    threads = [threading.Thread(target=client, args=(mine[1:],)) for mine in per_client]
    sampler = threading.Thread(target=sample)
    sampler.start()
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    return sum(len(m) - 1 for m in per_client) * batch / elapsed, max(peak)


def latency(fn: Any, n: int) -> tuple[float, float]:
    """(p50, p99) in ms over ``n`` calls."""
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=100)
    return statistics.median(times), q[98]


async def load_history(dsn: str) -> str:
    """A run with one 1M-point metric ``big`` (loaded through the store)."""
    store = open_store(dsn)
    await store.open()
    run, _ = await store.create_run(RunCreate(project="bench-query"))
    rid = str(run.id)
    for first in range(0, HISTORY_POINTS, 50_000):
        steps = list(range(first, first + 50_000))
        await store.write_metrics(
            metric_batch_from_columns(
                rid,
                ["big"],
                [0] * len(steps),
                steps,
                None,
                np.sin(np.asarray(steps) / 1000).tolist(),
                None,
            )
        )
    await store.close()
    return rid


class IngestLoad:
    """``clients`` threads posting Arrow batches of ``batch`` points, each to its own
    run, as fast as the server takes them, while the ``with`` block runs."""

    def __init__(self, server: Server, clients: int, batch: int, bodies_each: int = 60) -> None:
        self.server, self.done, self.posted = server, threading.Event(), 0
        self.per_client = []
        for i in range(clients):
            rid = server.call(
                "POST", "runs", orjson.dumps({"project": "bench-load", "name": f"l{i}"})
            )["id"]
            self.per_client.append(bodies(rid, bodies_each * batch, batch, "arrow"))
        self.threads = [
            threading.Thread(target=self._client, args=(mine,)) for mine in self.per_client
        ]

    def _client(self, mine: list[bytes]) -> None:
        for raw in mine:
            if self.done.is_set():
                return
            self.server.call("POST", "metrics/batch", raw, ARROW_TYPE)
            self.posted += 1

    def __enter__(self) -> IngestLoad:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        running = all(t.is_alive() for t in self.threads)
        self.done.set()
        for t in self.threads:
            t.join()
        if not running:
            print(
                "warning: the ingest load ran out of bodies before the measurement ended",
                file=sys.stderr,
            )


def query_rows(
    server: Server, dsn: str, queries: int, clients: int, batch: int
) -> list[tuple[str, str]]:
    """p50/p99 of history (downsampled, 1M points), latest and stats, cached and not;
    and cached latest/stats while ``clients`` clients ingest Arrow batches flat out."""
    rid = asyncio.run(load_history(dsn))
    base = f"runs/{rid}/metrics/big"
    bump = orjson.dumps({"metrics": [{"run_id": rid, "metric_name": "bump", "value": 1.0}]})

    def uncached(path: str) -> tuple[float, float]:
        spent = []
        for _ in range(queries):
            server.call("POST", "metrics/batch", bump)  # invalidates the run's cache
            t = time.perf_counter()
            server.call("GET", path)
            spent.append((time.perf_counter() - t) * 1e3)
        return statistics.median(spent), statistics.quantiles(spent, n=100)[98]

    rows = []
    for label, path in [
        ("history samples=1000 (1M points)", base + "?samples=1000"),
        (
            "history samples=1000, 10% zoom",
            base + "?samples=1000&start_step=450000&end_step=549999",
        ),
    ]:
        p50, p99 = latency(lambda p=path: server.call("GET", p), queries)
        rows.append((label, f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
    for what in ("latest", "stats"):
        p50, p99 = uncached(f"{base}/{what}")
        rows.append((f"{what} uncached", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"))
        p50, p99 = latency(lambda w=what: server.call("GET", f"{base}/{w}"), queries)
        rows.append((f"{what} cached", f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"))
    with IngestLoad(server, clients, batch):
        time.sleep(0.5)
        for what in ("latest", "stats"):
            p50, p99 = latency(lambda w=what: server.call("GET", f"{base}/{w}"), queries)
            rows.append(
                (
                    f"{what} cached, during HTTP ingest ({clients} clients)",
                    f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                )
            )
    return rows


# ------------------------------------------------------------------ end to end
PAYLOADS = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(1000)]
TRACKIO_PEER = r"""
import json, os, sys, tempfile, time
work = tempfile.mkdtemp()
os.chdir(work)
os.environ["TRACKIO_DIR"] = work
import trackio
from trackio.sqlite_storage import SQLiteStorage
payloads = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(1000)]
print("READY", flush=True)
for line in sys.stdin:
    points, name = int(line.split()[0]), line.split()[1]
    trackio.init(project="bench-e2e", name=name)
    t = time.perf_counter()
    for i in range(points // 10):
        trackio.log(payloads[i % 1000])
    trackio.finish()
    seconds = time.perf_counter() - t
    rows = len(SQLiteStorage.get_logs(project="bench-e2e", run=name))
    print("RESULT " + json.dumps({"seconds": seconds, "rows": rows}), flush=True)
"""


class TrackioPeer:
    """trackio in its own interpreter, one run per :meth:`run` (None: not available)."""

    def __init__(self, python: str | None) -> None:
        import subprocess

        self.proc = None
        if python and Path(python).exists():
            self.proc = subprocess.Popen(
                [python, "-c", TRACKIO_PEER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                if line.startswith("READY"):
                    break
            else:
                self.proc = None

    def run(self, points: int, name: str) -> float | None:
        """Seconds for ``points`` points, or None without the peer."""
        if self.proc is None:
            return None
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{points} {name}\n")
        self.proc.stdin.flush()
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                r = orjson.loads(line[7:])
                assert r["rows"] == points // 10, f"trackio stored {r['rows']} of {points // 10}"
                return float(r["seconds"])
        self.proc = None
        return None

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(30)


def wanllm_run(server: Server, points: int, workdir: Path) -> dict[str, Any]:
    """One run of ``points`` points through the server: seconds of the ``log()``
    loop, of ``finish()`` and in all, and the slowest request (kind, seconds)."""
    import wanllm_jupyter as wl

    api = wl.Api(server.jupyter.url, server.jupyter.token)
    run = wl.init(project="bench-e2e", connection=api.connection, system_metrics=False,
                  dir=str(workdir))  # fmt: skip
    requests: list[tuple[float, str]] = []
    transport = getattr(run.sender, "transport", None)
    if transport is not None:  # time every request the sender makes
        deliver = transport.deliver

        def timed(op: Any) -> Any:
            t = time.perf_counter()
            try:
                return deliver(op)
            finally:
                requests.append((time.perf_counter() - t, op.kind))

        transport.deliver = timed
    t0 = time.perf_counter()
    for i in range(points // 10):
        wl.log(PAYLOADS[i % 1000])
    t1 = time.perf_counter()
    wl.finish(quiet=True, timeout=3600)
    t2 = time.perf_counter()
    report = run.report
    assert report is not None and report.sent_points == points, report
    slowest = max(requests, default=(0.0, "-"))
    return {"log": t1 - t0, "finish": t2 - t1, "total": t2 - t0, "slowest": slowest,
            "requests": len(requests)}  # fmt: skip


def e2e(runs: int, points: int, peer_python: str | None) -> list[tuple[str, str]]:
    """``runs`` alternating wanllm (TimescaleDB, through Jupyter) / trackio runs."""
    cluster = PostgresCluster(timescaledb=True, settings=slow_tails.PG_SETTINGS).start()
    root = Path(tempfile.mkdtemp(prefix="wanllm-e2e-"))
    peer = TrackioPeer(peer_python)
    ours: list[dict[str, Any]] = []
    theirs: list[float] = []
    try:
        server = Server(cluster.create_database("bench"), root)
        try:
            wanllm_run(server, points // 10, root)  # warm-up, not counted
            pg_log = slow_tails.LogTail(cluster.logfile)
            jupyter_log = slow_tails.LogTail(server.jupyter.log_path)
            for i in range(runs):
                ours.append(wanllm_run(server, points, root))
                waited = slow_tails.summary(pg_log.new_lines(), jupyter_log.new_lines())
                peer_s = peer.run(points, f"e2e-{i}")
                if peer_s is not None:
                    theirs.append(peer_s)
                o = ours[-1]
                print(
                    f"run {i + 1}: wanllm {o['total']:.2f} s (log {o['log']:.2f} s, finish "
                    f"{o['finish']:.2f} s, {o['requests']} requests, slowest "
                    f"{o['slowest'][1]} {o['slowest'][0]:.2f} s); trackio "
                    + (f"{peer_s:.2f} s" if peer_s is not None else "peer not available")
                    + f"\n  during it: {waited}",
                    flush=True,
                )
        finally:
            server.stop()
    finally:
        peer.close()
        cluster.destroy()

    def spread(xs: list[float]) -> str:
        med = statistics.median(xs)
        return f"median {med:.2f} s, max {max(xs):.2f} s, max/median {max(xs) / med:.2f}"

    rows = [
        (f"wanllm e2e, {points:,} points (TimescaleDB)", spread([o["total"] for o in ours])),
        ("  of which finish()", spread([o["finish"] for o in ours])),
        ("  points/s (median run)", f"{points / statistics.median(o['total'] for o in ours):,.0f}"),
    ]
    if theirs:
        ratio = statistics.median(theirs) / statistics.median(o["total"] for o in ours)
        rows += [
            (f"trackio e2e, {points:,} points (local SQLite)", spread(theirs)),
            ("  points/s (median run)", f"{points / statistics.median(theirs):,.0f}"),
            ("wanllm / trackio points/s (medians, same invocation)", f"{ratio:.2f}x"),
        ]
    else:
        rows.append(("trackio", "peer not available"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument(
        "--row-points",
        type=int,
        default=200_000,
        help="points posted in the seed's row form (0 skips it)",
    )
    ap.add_argument("--queries", type=int, default=200, help="per latency figure (0 skips)")
    ap.add_argument("--backend", choices=("timescaledb", "sqlite"), default="timescaledb")
    ap.add_argument("--form", choices=("arrow", "json"), default="arrow")
    ap.add_argument("--batch", type=int, default=10_000, help="points per compact request")
    ap.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="alternating storage/HTTP measurements per form; best of each",
    )
    ap.add_argument("--e2e", type=int, default=0, help="end-to-end runs vs trackio (only)")
    ap.add_argument(
        "--peer-python",
        default=os.environ.get(PEER_ENV),
        help=f"trackio's virtualenv python (default ${PEER_ENV})",
    )
    args = ap.parse_args()
    if args.e2e:
        rows = e2e(args.e2e, args.points, args.peer_python)
        print_rows(rows)
        return
    rows: list[tuple[str, str]] = [("backend", args.backend)]
    sqlite = args.backend == "sqlite"
    cluster = None if sqlite else PostgresCluster(timescaledb=True).start()
    root = Path(tempfile.mkdtemp(prefix="wanllm-bench-"))
    runs = [(f"columnar {args.form}, {args.batch}/batch", args.points, args.batch, args.form)]
    if args.row_points:
        runs.append((f"seed row form, {ROW_BATCH}/batch", args.row_points, ROW_BATCH, "rows"))
    try:
        dsn = f"sqlite:///{root}/wanllm.db" if sqlite else cluster.create_database("bench")
        server = Server(dsn, root)
        try:
            time.sleep(2)
            rss_idle = server.rss_mb()
            rss_load = rss_idle
            for what, points, batch, form in runs:
                store_pps = http_pps = 0.0
                for _ in range(args.rounds):  # alternating, best of each
                    store_pps = max(
                        store_pps, asyncio.run(store_side(dsn, args.clients, points, batch, form))
                    )
                    pps, peak = http_rate(server, args.clients, points, batch, form)
                    http_pps, rss_load = max(http_pps, pps), max(rss_load, peak)
                rows += [
                    (
                        f"storage layer ingest ({args.clients} writers, {what})",
                        f"{store_pps:,.0f} points/s",
                    ),
                    (
                        f"HTTP ingest ({args.clients} clients, {what})",
                        f"{http_pps:,.0f} points/s ({http_pps / store_pps:.0%} of storage)",
                    ),
                ]
            if args.queries:
                rows += query_rows(server, dsn, args.queries, args.clients, args.batch)
            rows += [
                ("Jupyter server RSS idle", f"{rss_idle:.0f} MB"),
                ("Jupyter server RSS peak under ingest", f"{rss_load:.0f} MB"),
            ]
        finally:
            server.stop()
    finally:
        if cluster is not None:
            cluster.destroy()
    print_rows(rows)


def print_rows(rows: list[tuple[str, str]]) -> None:
    """The table, with the machine load."""
    rows = [*rows, ("machine load (1/5 min)", "{:.1f} {:.1f}".format(*os.getloadavg()[:2]))]
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


if __name__ == "__main__":
    main()
