"""Live fan-out benchmark: 1,000 WebSocket subscribers of a run logged at 10 Hz.

    python benchmarks/live.py [--subscribers 1000] [--runs 1] [--hz 10] [--seconds 30]
                              [--backend sqlite|timescaledb] [--redis] [--lab]

Starts a real ``jupyter server`` subprocess (wanllm only, or with JupyterLab
and the other installed extensions with ``--lab``), opens the subscribers
(spread round-robin over ``--runs`` runs) from a separate process (one asyncio
loop of raw sockets: the measuring client shares no GIL with the logger and
stays far cheaper per message than the server), then logs one point per run
every 1/hz seconds through ``POST metrics/batch``, the point's value being its
send time. Delivery latency = receipt at a subscriber minus send time (so it
includes ingest, commit, the ~100 ms coalescing tick and fan-out); the part
after the server stamped the point (its ``time``, set at ingest) is printed
too. Prints p50/p90/p99/max latency, points delivered vs expected, and the
server's RSS idle, with the subscribers connected, and peak under load.
Targets (issue 3): p99 <= 500 ms; seed: ~50 MB base, ~200 MB loaded.
``--backend timescaledb`` and ``--redis`` start throwaway services
(tests/services.py).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import orjson
import psutil
from tornado.httpclient import AsyncHTTPClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.jupyter_process import JupyterServer
from tests.services import PostgresCluster, RedisServer

BASE_URL = "/user/wanllm/"  # not "/": every URL must honour base_url

CONNECT_CONCURRENCY = 50


class RawSocket(asyncio.Protocol):
    """A minimal WebSocket client (RFC 6455) on an asyncio Protocol: a
    Python client must stay far cheaper per message than the server, or the
    benchmark measures its own queueing (tornado's client costs ~10x more)."""

    def __init__(self, on_text: Callable[[bytes], None]) -> None:
        self.on_text = on_text
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    @classmethod
    async def connect(
        cls, port: int, path: str, auth: str, on_text: Callable[[bytes], None]
    ) -> RawSocket:
        loop = asyncio.get_running_loop()
        _, sock = await loop.create_connection(lambda: cls(on_text), "127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n"
            f"Authorization: {auth}\r\n\r\n"
        )
        assert sock.transport is not None
        sock.transport.write(request.encode())
        await asyncio.wait_for(sock.opened, 60)
        return sock

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.opened.done():
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buf[:end]).split(b"\r\n", 1)[0]
            del self.buf[: end + 4]
            if b" 101 " not in status:
                self.opened.set_exception(RuntimeError(status.decode()))
                return
            self.opened.set_result(None)
        while len(self.buf) >= 2:
            opcode, n, head = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
            if n == 126:
                if len(self.buf) < 4:
                    return
                n, head = struct.unpack_from("!H", self.buf, 2)[0], 4
            elif n == 127:
                if len(self.buf) < 10:
                    return
                n, head = struct.unpack_from("!Q", self.buf, 2)[0], 10
            if len(self.buf) < head + n:
                return
            payload = bytes(self.buf[head : head + n])
            del self.buf[: head + n]
            if opcode == 0x1:
                self.on_text(payload)
            elif opcode == 0x9:  # ping -> masked pong
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                assert self.transport is not None
                self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Subscribers:
    """The WebSocket clients and the latencies they observe (run in a child process)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []  # receipt - send time at the logger
        self.server_side: list[float] = []  # receipt - point time stamped at ingest
        self.gaps = 0
        self.runs = 0
        self.sockets: list[RawSocket] = []

    def on_text(self, text: bytes) -> None:
        now = time.time()
        msg = orjson.loads(text)
        if msg["type"] == "metrics":
            sent = msg["points"]["sent"]
            self.latencies.extend(now - v for v in sent["values"])
            self.server_side.extend(now - t for t in sent["times"])
        elif msg["type"] == "gap":
            self.gaps += 1
        elif msg["type"] == "run":
            self.runs += 1

    async def open(self, port: int, paths: list[str], auth: str) -> None:
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(path: str) -> None:
            async with sem:
                self.sockets.append(await RawSocket.connect(port, path, auth, self.on_text))

        await asyncio.gather(*(one(p) for p in paths))

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def subscriber_process(pipe: Connection, port: int, paths: list[str], auth: str) -> None:
    """Child process: connect every path, report ``("open", seconds, runs)``,
    collect until told ``"stop"``, then send the observations back."""

    async def run() -> None:
        subs = Subscribers()
        t0 = time.monotonic()
        await subs.open(port, paths, auth)
        opened = time.monotonic() - t0
        await asyncio.sleep(2)
        pipe.send(("open", opened, subs.runs))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "stop"
        subs.close()
        pipe.send((np.array(subs.latencies), np.array(subs.server_side), subs.gaps))

    asyncio.run(run())


async def log_runs(
    server: JupyterServer,
    run_ids: list[str],
    hz: float,
    seconds: float,
    rss: list[float],
    proc: psutil.Process,
    posts: list[float],
) -> int:
    """Post one point per run every 1/hz s (round trips into ``posts``);
    sample the server RSS meanwhile."""
    client = AsyncHTTPClient(max_clients=max(10, len(run_ids)))
    url = server.url + "wanllm/api/v1/metrics/batch"
    headers = {**server.headers, "Content-Type": "application/json"}
    sent, period = 0, 1.0 / hz
    start = time.monotonic()
    for step in range(int(seconds * hz)):
        await asyncio.sleep(max(0.0, start + step * period - time.monotonic()))
        t0 = time.monotonic()
        await asyncio.gather(
            *(
                client.fetch(
                    url,
                    method="POST",
                    headers=headers,
                    body=orjson.dumps(
                        {
                            "metrics": [
                                {
                                    "run_id": rid,
                                    "metric_name": "sent",
                                    "step": step,
                                    "value": time.time(),
                                }
                            ]
                        }
                    ),
                )
                for rid in run_ids
            )
        )
        posts.append(time.monotonic() - t0)
        sent += len(run_ids)
        if step % max(1, int(hz / 2)) == 0:
            rss.append(proc.memory_info().rss)
    return sent


async def bench(args: argparse.Namespace, database_url: str, redis_url: str | None) -> None:
    server = JupyterServer(
        database_url=database_url, redis_url=redis_url, base_url=BASE_URL, lab=args.lab
    ).start()
    try:
        proc = psutil.Process(server.proc.pid)  # type: ignore[union-attr]
        client = AsyncHTTPClient()
        run_ids = []
        for i in range(args.runs):
            resp = await client.fetch(
                server.url + "wanllm/api/v1/runs",
                method="POST",
                headers={**server.headers, "Content-Type": "application/json"},
                body=orjson.dumps({"project": "bench", "name": f"r{i}"}),
            )
            run_ids.append(orjson.loads(resp.body)["id"])
        await asyncio.sleep(2)
        idle = proc.memory_info().rss
        prefix = server.ws_url.split(str(server.port), 1)[1]
        paths = [
            f"{prefix}wanllm/ws/metrics/{run_ids[i % len(run_ids)]}"
            for i in range(args.subscribers)
        ]
        ctx = multiprocessing.get_context("spawn")
        pipe, child_end = ctx.Pipe()
        child = ctx.Process(
            target=subscriber_process,
            daemon=True,
            args=(child_end, server.port, paths, server.headers["Authorization"]),
        )
        child.start()
        loop = asyncio.get_running_loop()
        _, connect_s, runs_seen = await loop.run_in_executor(None, pipe.recv)
        assert runs_seen == args.subscribers, "every socket starts with a run message"
        connected = proc.memory_info().rss
        rss: list[float] = []
        posts: list[float] = []
        cpu0 = proc.cpu_times()
        sent = await log_runs(server, run_ids, args.hz, args.seconds, rss, proc, posts)
        cpu1 = proc.cpu_times()
        await asyncio.sleep(1.5)  # let the last ticks arrive
        pipe.send("stop")
        latencies, server_side, gaps = await loop.run_in_executor(None, pipe.recv)
        child.join(30)
    finally:
        server.stop()

    per_sub = args.subscribers / args.runs
    expected = int(sent * per_sub)
    lat, after_ingest = latencies * 1000, server_side * 1000
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / args.seconds * 100
    mb = 1024 * 1024
    print(
        f"live fan-out: {args.subscribers} subscribers over {args.runs} run(s) logged at "
        f"{args.hz:g} Hz for {args.seconds:g} s; store {args.backend}, "
        f"fan-out {'redis' if redis_url else 'in-process'}, "
        f"server {'with JupyterLab' if args.lab else 'wanllm only'}"
    )
    print(f"  connected {args.subscribers} sockets in {connect_s:.1f} s")
    print(
        f"  delivered {len(lat)} of {expected} points ({len(lat) / max(1, expected):.1%}), "
        f"gap notices {gaps}"
    )
    if len(lat):
        p50, p90, p99 = np.percentile(lat, [50, 90, 99])
        print(
            f"  delivery latency ms: p50 {p50:.0f}  p90 {p90:.0f}  p99 {p99:.0f}  "
            f"max {lat.max():.0f}   (target p99 <= 500)"
        )
        s50, s99 = np.percentile(after_ingest, [50, 99])
        print(f"  of which after the server stamped the point ms: p50 {s50:.0f}  p99 {s99:.0f}")
    post50, post99 = np.percentile(np.array(posts) * 1000, [50, 99])
    print(f"  of which ingest (POST round trip) ms: p50 {post50:.0f}  p99 {post99:.0f}")
    print(
        f"  server RSS MB: idle {idle / mb:.0f}  with subscribers {connected / mb:.0f}  "
        f"peak under load {max(rss) / mb:.0f}   (seed: ~50 base, ~200 loaded)"
    )
    print(f"  server CPU under load: {cpu:.0f}% of one core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", choices=["sqlite", "timescaledb"], default="sqlite")
    parser.add_argument("--redis", action="store_true", help="fan-out through a Redis")
    parser.add_argument("--lab", action="store_true", help="load JupyterLab etc. too")
    args = parser.parse_args()
    services: list[PostgresCluster | RedisServer] = []
    try:
        if args.backend == "timescaledb":
            cluster = PostgresCluster(timescaledb=True).start()
            services.append(cluster)
            database_url = cluster.create_database("bench_live")
        else:
            database_url = f"sqlite:///{tempfile.mkdtemp(prefix='wanllm-bench-')}/wanllm.db"
        redis_url = None
        if args.redis:
            redis = RedisServer().start()
            services.append(redis)
            redis_url = redis.url
        asyncio.run(bench(args, database_url, redis_url))
    finally:
        for service in services:
            service.destroy()


if __name__ == "__main__":
    main()
