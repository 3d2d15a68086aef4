"""Hostile requests against a real Jupyter server: event-loop blocks and memory (issue 9).

    python benchmarks/hostile.py [--points 100000] [--runs 10] [--sockets 1000]
                                 [--ingest 2000000] [--only block,bomb,sockets,bodies]
                                 [--backend sqlite|timescaledb] [--repeat 1]

Starts a real ``jupyter server`` subprocess (wanllm only; SQLite, or its own
TimescaleDB cluster from tests/services.py) and prints, each with its goal:

1. ``block``: the longest event-loop block under the worst requests. A separate
   process polls ``GET {base}wanllm/api/v1/health`` and Jupyter's store-free
   ``GET {base}api`` back to back; a request's block is the slowest poll answer
   while it runs, less the idle median. The event-loop block is read from the
   store-free ``api`` (``health`` also waits for a database query, which on
   PostgreSQL queues behind the heavy reads; it is printed beside it). Worst
   requests: Gaussian smoothing at the largest ``smoothing_param`` on a
   ``--points`` metric, the largest downsample (``samples=20000``), a
   ``--points`` Arrow body and the same as columnar JSON, a bulk JSON export of
   ``--runs`` runs of ``--points`` points, then all of them at once;
   ``--repeat`` rounds on the same server, each with the load averages.
   Goal <= 50 ms.
2. ``bomb``: RSS added to the server by a 32 KiB zstd Arrow body of 50M rows
   (refused 413). Goal <= 50 MB.
3. ``sockets``: peak server RSS while ``--sockets`` WebSockets that never read
   (subscribed to every metric of a run) watch a ``--ingest``-point ingest into
   that run. Goal <= 600 MB (issue 9 measured 2.7 GB).
4. ``bodies``: RSS added by four concurrent unauthenticated POSTs declaring
   300 MB bodies, each sending as fast as the server takes it. Goal <= 50 MB
   (issue 9 measured 1.5 GB).
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import orjson
import psutil
import pyarrow as pa
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.jupyter_process import JupyterServer
from tests.services import PostgresCluster

API = "wanllm/api/v1/"
ARROW = "application/vnd.apache.arrow.stream"
MB = 2**20
BATCH = 100_000  # points a body (the server's max_columnar_batch_size)


# ------------------------------------------------------------------ helpers
class Client:
    """Blocking HTTP calls to the server's API with its token."""

    def __init__(self, server: JupyterServer) -> None:
        self.server = server
        self.http = urllib3.PoolManager(maxsize=16, retries=False, timeout=600)

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> Any:
        headers = dict(self.server.headers)
        if ctype:
            headers["Content-Type"] = ctype
        r = self.http.request(method, self.server.url + API + path, body=body, headers=headers)
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {r.data[:300]!r}")
        return r.data

    def run(self, name: str) -> str:
        body = orjson.dumps({"project": "hostile", "name": name})
        return orjson.loads(self.call("POST", "runs", body, "application/json"))["id"]


def arrow_body(run_id: str, first: int, n: int, compression: str | None = None) -> bytes:
    """``n`` points of ``loss`` from step ``first`` as an Arrow IPC stream."""
    steps = np.arange(first, first + n, dtype=np.int64)
    names = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), ["loss"])
    table = pa.table(
        {"metric_name": names, "step": steps, "value": np.sin(steps / 1000.0)}
    ).replace_schema_metadata({"run_id": run_id})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def bomb_body(run_id: str, rows: int = 50_000_000) -> bytes:
    """A zstd stream of ``rows`` zero points (``np.zeros`` pages cost no memory here)."""
    names = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int32)), ["loss"])
    table = pa.table(
        {"metric_name": names, "step": np.zeros(rows, np.int64), "value": np.zeros(rows)}
    ).replace_schema_metadata({"run_id": run_id})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as w:
        w.write_table(table)
    return sink.getvalue().to_pybytes()


def columnar_body(run_id: str, first: int, n: int) -> bytes:
    steps = list(range(first, first + n))
    return orjson.dumps(
        {
            "format": "columnar",
            "run_id": run_id,
            "names": ["loss"],
            "k": [0] * n,
            "s": steps,
            "v": [float(i % 97) for i in steps],
        }
    )


def ingest(client: Client, run_id: str, points: int, first: int = 0) -> None:
    for start in range(first, first + points, BATCH):
        n = min(BATCH, first + points - start)
        client.call("POST", "metrics/batch", arrow_body(run_id, start, n), ARROW)


class RssSampler:
    """The server's RSS sampled every ``period`` s on a thread; ``peak`` so far."""

    def __init__(self, server: JupyterServer, period: float = 0.05) -> None:
        assert server.proc is not None
        self.proc = psutil.Process(server.proc.pid)
        self.period = period
        self.peak = self.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        return self.proc.memory_info().rss

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def verdict(value: float, goal: float) -> str:
    return "ok" if value <= goal else "OVER GOAL"


# ------------------------------------------------------------------ 1. event-loop block
def poller(pipe: Connection, base: str, token: str) -> None:
    """Child process: GET health and GET api back to back until told to stop; send
    back (which, start time, seconds) of every answer."""
    http = urllib3.PoolManager(maxsize=2, retries=False, timeout=600)
    headers = {"Authorization": f"token {token}"}
    samples: list[tuple[str, float, float]] = []
    pipe.send("ready")
    while not pipe.poll():
        for kind, url in (("health", base + API + "health"), ("api", base + "api")):
            start = time.time()
            t0 = time.perf_counter()
            http.request("GET", url, headers=headers)
            samples.append((kind, start, time.perf_counter() - t0))
        time.sleep(0.002)
    pipe.send(samples)


@contextmanager
def polled(server: JupyterServer) -> Iterator[list[tuple[str, float, float]]]:
    """Health polled from another process meanwhile; the samples land in the list."""
    ours, theirs = multiprocessing.Pipe()
    proc = multiprocessing.Process(target=poller, args=(theirs, server.url, server.token))
    proc.start()
    assert ours.recv() == "ready"
    samples: list[tuple[str, float, float]] = []
    try:
        yield samples
    finally:
        ours.send("stop")
        samples.extend(ours.recv())
        proc.join()


def worst_block(
    samples: list[tuple[str, float, float]], kind: str, start: float, end: float
) -> float:
    """The slowest ``kind`` poll answer that overlapped [start, end]."""
    hits = [d for k, t, d in samples if k == kind and t <= end and t + d >= start]
    return max(hits, default=0.0)


def bench_block(server: JupyterServer, client: Client, points: int, runs: int, repeat: int) -> None:
    print(f"1. event-loop block under the worst requests ({points:,}-point metric, {runs} runs)")
    ids = [client.run(f"block-{i}") for i in range(runs)]
    for rid in ids:
        ingest(client, rid, points)
    target = client.run("block-target")
    rid = ids[0]
    worst = urlencode({"smoothing": "gaussian", "smoothing_param": "1.7976931348623157e308"})
    requests: list[tuple[str, Callable[[], Any]]] = [
        (
            "gaussian smoothing, largest param",
            lambda: client.call("GET", f"runs/{rid}/metrics/loss?{worst}"),
        ),
        (
            "downsample samples=20000",
            lambda: client.call("GET", f"runs/{rid}/metrics/loss?samples=20000"),
        ),
        (
            f"Arrow body, {BATCH:,} points",
            lambda: client.call("POST", "metrics/batch", arrow_body(target, 0, BATCH), ARROW),
        ),
        (
            f"columnar JSON body, {BATCH:,} points",
            lambda: client.call(
                "POST", "metrics/batch", columnar_body(target, BATCH, BATCH), "application/json"
            ),
        ),
        (
            f"bulk JSON export, {runs * points:,} points",
            lambda: client.call(
                "POST",
                "history",
                orjson.dumps({"run_ids": ids, "names": ["loss"]}),
                "application/json",
            ),
        ),
    ]
    longest: list[float] = []
    for i in range(repeat):
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"   round {i + 1} of {repeat} (load averages 1/5/15 min: {load})")
        longest.append(block_round(server, requests))
    if repeat > 1:
        ms = sorted(v * 1e3 for v in longest)
        print(
            f"   => over {repeat} rounds: median {float(np.median(ms)):.1f} ms, "
            f"max {ms[-1]:.1f} ms (goal <= 50 ms): {verdict(ms[-1], 50)}"
        )


def block_round(server: JupyterServer, requests: list[tuple[str, Callable[[], Any]]]) -> float:
    """Each request alone, then all at once, while polled; print the blocks and
    return the longest event-loop block (seconds)."""
    windows: list[tuple[str, float, float, float]] = []
    with polled(server) as samples:
        time.sleep(1.0)  # idle baseline
        idle_end = time.time()
        for label, send in requests:
            start, t0 = time.time(), time.perf_counter()
            send()
            windows.append((label, start, time.time(), time.perf_counter() - t0))
            time.sleep(0.3)
        start, t0 = time.time(), time.perf_counter()
        threads = [threading.Thread(target=send) for _, send in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        windows.append(("all of them at once", start, time.time(), time.perf_counter() - t0))
    base = {}
    for kind in ("health", "api"):
        idle = [d for k, t, d in samples if k == kind and t < idle_end]
        base[kind] = float(np.median(idle))
        print(
            f"   GET {kind} at idle: median {base[kind] * 1e3:.1f} ms, "
            f"max {max(idle) * 1e3:.1f} ms ({len(idle)} polls)"
        )
    print(f"   {'':38s} {'request':>12s} {'block: health':>14s} {'api':>8s}")
    longest = {"health": 0.0, "api": 0.0}
    for label, start, end, took in windows:
        blocks = [max(0.0, worst_block(samples, k, start, end) - base[k]) for k in base]
        longest = {k: max(longest[k], b) for k, b in zip(base, blocks, strict=True)}
        print(
            f"   {label:38s} {took * 1e3:9.0f} ms {blocks[0] * 1e3:11.1f} ms "
            f"{blocks[1] * 1e3:5.1f} ms"
        )
    ms = longest["api"] * 1e3
    print(f"   => longest event-loop block {ms:.1f} ms (goal <= 50 ms): {verdict(ms, 50)}")
    print(
        f"   (health, which also queries the store, was delayed up to "
        f"{longest['health'] * 1e3:.1f} ms: the loop plus waiting for the database)"
    )
    return longest["api"]


# ------------------------------------------------------------------ 2. bomb
def bench_bomb(server: JupyterServer, client: Client) -> None:
    rid = client.run("bomb")
    client.call("POST", "metrics/batch", arrow_body(rid, 0, 10, "zstd"), ARROW)  # warm
    bomb = bomb_body(rid)
    with RssSampler(server) as rss:
        before = rss.now()
        r = client.http.request(
            "POST",
            server.url + API + "metrics/batch",
            body=bomb,
            headers={**server.headers, "Content-Type": ARROW},
        )
        time.sleep(0.5)
        after = rss.now()
    added, peak = (after - before) / MB, (rss.peak - before) / MB
    print(f"2. 32 KiB zstd Arrow bomb ({len(bomb) / 1024:.0f} KiB, 50M rows): answered {r.status}")
    print(
        f"   => RSS added {added:.1f} MB, peak +{peak:.1f} MB (goal <= 50 MB): {verdict(peak, 50)}"
    )


# ------------------------------------------------------------------ 3. slow sockets
def slow_sockets(pipe: Connection, port: int, path: str, auth: str, count: int) -> None:
    """Child process: open ``count`` WebSockets that complete the handshake and then
    never read again; hold them until told to stop."""
    socks: list[socket.socket] = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: {auth}\r\n\r\n".encode()
        )
        head = sock.recv(4096)  # the status line (and maybe the first message)
        if b" 101 " in head.split(b"\r\n", 1)[0]:
            socks.append(sock)
        else:
            sock.close()
    pipe.send(len(socks))
    pipe.recv()
    for sock in socks:
        sock.close()


def bench_sockets(server: JupyterServer, client: Client, count: int, points: int) -> None:
    rid = client.run("slow-sockets")
    path = f"{server.base_url}wanllm/ws/metrics/{rid}"
    with RssSampler(server, period=0.2) as rss:
        idle = rss.now()
        ours, theirs = multiprocessing.Pipe()
        args = (theirs, server.port, path, f"token {server.token}", count)
        proc = multiprocessing.Process(target=slow_sockets, args=args)
        proc.start()
        opened = ours.recv()
        connected = rss.now()
        t0 = time.perf_counter()
        ingest(client, rid, points)
        took = time.perf_counter() - t0
        time.sleep(2.0)  # let the fan-out catch up with the last batches
        ours.send("stop")
        proc.join()
    peak = rss.peak / MB
    print(
        f"3. {opened} of {count} slow WebSockets open during a {points:,}-point ingest "
        f"({took:.1f} s)"
    )
    print(
        f"   RSS idle {idle / MB:.0f} MB, sockets open {connected / MB:.0f} MB, peak {peak:.0f} MB"
    )
    print(f"   => peak RSS {peak:.0f} MB (goal <= 600 MB): {verdict(peak, 600)}")


# ------------------------------------------------------------------ 4. unauthenticated bodies
def send_unauthenticated(port: int, path: str, size: int, out: list[str]) -> None:
    """POST ``size`` bytes declared, sent as fast as taken; the answer's status line."""
    chunk = b"{" * MB
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sent = 0
        try:
            sock.sendall(head.encode())
            while sent < size:
                sock.sendall(chunk[: min(MB, size - sent)])
                sent += MB
        except OSError:
            pass  # the server answered and closed
        try:
            answer = sock.recv(4096).split(b"\r\n", 1)[0].decode()
        except OSError as e:
            answer = f"({e.__class__.__name__})"
        out.append(f"{answer or '(closed)'} after {min(sent, size) / MB:.0f} MB sent")


def bench_bodies(server: JupyterServer, size: int = 300 * 1000 * 1000) -> None:
    path = f"{server.base_url}{API}metrics/batch"
    answers: list[str] = []
    with RssSampler(server, period=0.02) as rss:
        before = rss.now()
        threads = [
            threading.Thread(target=send_unauthenticated, args=(server.port, path, size, answers))
            for _ in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(0.3)
    added = (rss.peak - before) / MB
    print(f"4. four unauthenticated {size / 1e6:.0f} MB POSTs: {'; '.join(sorted(set(answers)))}")
    print(f"   => RSS added (peak) {added:.1f} MB (goal <= 50 MB): {verdict(added, 50)}")


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--ingest", type=int, default=2_000_000)
    parser.add_argument("--only", default="block,bomb,sockets,bodies")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the block requests")
    parser.add_argument("--backend", choices=("sqlite", "timescaledb"), default="sqlite")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    cluster = None if args.backend == "sqlite" else PostgresCluster(timescaledb=True).start()
    database_url = None if cluster is None else cluster.create_database("hostile")
    try:
        with JupyterServer(
            base_url="/user/hostile/",
            database_url=database_url,
            extra_args=["--ServerApp.log_level=WARN"],
        ) as s:
            client = Client(s)
            rss = psutil.Process(s.proc.pid).memory_info().rss  # type: ignore[union-attr]
            print(f"{args.backend}; server pid {s.proc.pid}, RSS at start {rss / MB:.0f} MB")  # type: ignore[union-attr]
            if "block" in parts:
                bench_block(s, client, args.points, args.runs, args.repeat)
            if "bomb" in parts:
                bench_bomb(s, client)
            if "sockets" in parts:
                bench_sockets(s, client, args.sockets, args.ingest)
            if "bodies" in parts:
                bench_bodies(s)
    finally:
        if cluster is not None:
            cluster.destroy()


if __name__ == "__main__":
    main()
