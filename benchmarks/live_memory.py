"""Live memory under slow consumers: server RSS while N WebSocket subscribers
that never read watch a run that ingests M points.

    python benchmarks/live_memory.py [--subscribers 1000] [--points 2000000]
                                     [--batch 100000] [--budget-mib 128]

Starts a real ``jupyter server`` subprocess (SQLite, wanllm only), opens the
subscribers (raw sockets that stop reading once the upgrade is done), posts
the points as columnar batches, and prints the server's RSS idle, with the
sockets open, and at its peak during the ingest, plus how many sockets the
live byte budget (``--budget-mib``, WanllmApp.max_live_buffer_bytes) evicted.
Goal (issue 9): peak <= 600 MB for 1,000 slow sockets and 2M points (was 2.7 GB).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
import uuid
from pathlib import Path

import orjson
import psutil
from tornado.httpclient import AsyncHTTPClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.live import CONNECT_CONCURRENCY, RawSocket
from tests.jupyter_process import JupyterServer

MIB = 1024 * 1024


class PeakRss:
    """Samples a process's RSS every 20 ms on a thread; ``peak`` in bytes."""

    def __init__(self, proc: psutil.Process) -> None:
        self.proc, self.peak, self._stop = proc, proc.memory_info().rss, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


async def main(args: argparse.Namespace) -> None:
    server = JupyterServer(
        extra_args=[
            "--ServerApp.log_level=WARN",
            f"--WanllmApp.max_live_buffer_bytes={args.budget_mib * MIB}",
            f"--WanllmApp.max_live_sockets={max(1000, args.subscribers)}",
        ]
    )
    await asyncio.to_thread(server.start)
    try:
        assert server.proc is not None
        proc = psutil.Process(server.proc.pid)
        http = AsyncHTTPClient(max_body_size=1 << 30)
        headers = {**server.headers, "Content-Type": "application/json"}
        api = server.url + "wanllm/api/v1/"
        resp = await http.fetch(
            api + "runs", method="POST", body=b'{"project": "mem"}', headers=headers
        )
        run_id = orjson.loads(resp.body)["id"]
        idle = proc.memory_info().rss

        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        path = f"{server.base_url}wanllm/ws/metrics/{run_id}"

        async def slow_socket() -> RawSocket:
            async with gate:
                sock = await RawSocket.connect(
                    server.port, path, server.headers["Authorization"], lambda _: None
                )
            assert sock.transport is not None
            sock.transport.pause_reading()  # a consumer that never reads
            return sock

        sockets = await asyncio.gather(*(slow_socket() for _ in range(args.subscribers)))
        connected = proc.memory_info().rss
        sampler = PeakRss(proc)
        started = time.perf_counter()
        for first in range(0, args.points, args.batch):
            n = min(args.batch, args.points - first)
            steps = list(range(first, first + n))
            body = {
                "format": "columnar",
                "batch_id": uuid.uuid4().hex,
                "run_id": run_id,
                "names": ["loss"],
                "k": [0] * n,
                "s": steps,
                "t": [1_700_000_000.0 + s * 1e-3 for s in steps],
                "v": [s * 0.5 for s in steps],
            }
            await http.fetch(
                api + "metrics/batch", method="POST", body=orjson.dumps(body), headers=headers
            )
        elapsed = time.perf_counter() - started
        await asyncio.sleep(6.0)  # the last ticks go out; evicted sockets are aborted (5 s)
        peak = sampler.stop()
        open_sockets = sum(
            1
            for c in proc.net_connections(kind="tcp")
            if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == server.port
        )
        for sock in sockets:
            sock.close()
        print(f"subscribers={args.subscribers} points={args.points:,} batch={args.batch:,}")
        print(f"budget={args.budget_mib} MiB; ingest {elapsed:.1f} s")
        print(f"server RSS idle        {idle / MIB:8.1f} MiB")
        print(f"server RSS connected   {connected / MIB:8.1f} MiB")
        print(f"server RSS peak        {peak / MIB:8.1f} MiB  (goal <= 600 MB)")
        print(f"peak / goal            {peak / (600 * 1e6):8.2f}")
        print(f"sockets left open      {open_sockets} of {args.subscribers} (the rest evicted)")
    finally:
        server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--budget-mib", type=int, default=128)
    asyncio.run(main(parser.parse_args()))
