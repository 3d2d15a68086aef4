"""Kernel threads (issue 12): should the sender's batching run as a task on the
kernel's one I/O loop (:mod:`wanllm_jupyter._io_loop`) instead of its own thread?

    python benchmarks/kernel_threads.py [--seconds 3] [--rate 10000]

Same run, no server (the CPU side of delivery only):

1. the wake-up ``log()`` pays once per drained buffer: ``threading.Event.set``
   (the sender thread's) vs ``loop.call_soon_threadsafe`` (a loop task's), median ns;
2. what the loop's other work sees: a 5 ms ticker on the loop (standing in for live
   sockets, redraw pacing and heartbeats) records how late it wakes while the main
   thread logs ``--rate`` dicts of 10 scalars per second and, every 100 ms, a
   consumer drains them, converts them (``Columns``) and encodes the batches
   (columnar JSON): (A) on its own thread, (B) as a callback on the loop. Printed:
   the ticker's lateness p50/p99/max and the consumer's longest cycle; the ratio
   of the loop's p99 lateness B/A (> 1: the loop is worse off hosting the sender).
3. one psutil system sample (``SystemMonitor.sample``), median and p99 ms: what a
   sample blocks when it runs on the loop's blocking helper instead of a thread.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wanllm_jupyter._columns import Columns
from wanllm_jupyter._system import SystemMonitor

TICK = 0.005
CYCLE = 0.1


def wake_costs(n: int = 200_000) -> tuple[float, float]:
    """Median ns of Event.set and of call_soon_threadsafe (a loop running elsewhere)."""
    pc = time.perf_counter_ns
    event = threading.Event()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    noop = event.is_set
    ev, cs = [], []
    for _ in range(n):
        event.clear()
        t = pc()
        event.set()
        ev.append(pc() - t)
        t = pc()
        loop.call_soon_threadsafe(noop)
        cs.append(pc() - t)
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
    return statistics.median(ev), statistics.median(cs)


def consume(buf: deque[Any], columns: Columns, cycles: list[float]) -> None:
    t = time.perf_counter()
    items = [buf.popleft() for _ in range(len(buf))]
    columns.add(items)
    for batch, _ in columns.batches(1000):
        batch.to_json()
    cycles.append(time.perf_counter() - t)


def lateness(on_loop: bool, seconds: float, rate: int) -> dict[str, float]:
    """Ticker lateness (ms) with the consumer on its own thread or on the loop."""
    loop = asyncio.new_event_loop()
    late: list[float] = []
    cycles: list[float] = []
    buf: deque[Any] = deque()
    columns = Columns("bench")
    stop = threading.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t = loop.time()
            await asyncio.sleep(TICK)
            late.append(loop.time() - t - TICK)

    def on_loop_cycle() -> None:
        consume(buf, columns, cycles)
        if not stop.is_set():
            loop.call_later(CYCLE, on_loop_cycle)

    def thread_cycles() -> None:
        while not stop.wait(CYCLE):
            consume(buf, columns, cycles)

    tick = loop.create_task(ticker())
    if on_loop:
        loop.call_later(CYCLE, on_loop_cycle)
    else:
        threading.Thread(target=thread_cycles, daemon=True).start()
    io = threading.Thread(target=loop.run_forever, daemon=True)
    io.start()
    per_burst, burst_every = max(1, rate // 100), 0.01
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:  # the training loop: bursts of log() calls
        for _ in range(per_burst):
            buf.append(({f"m{j}": 0.001 * j + i for j in range(10)}, None, True, time.time()))
            i += 1
        time.sleep(burst_every)
    stop.set()
    time.sleep(CYCLE * 2)
    loop.call_soon_threadsafe(loop.stop)
    io.join()
    tick.cancel()
    late.sort()
    return {
        "p50_ms": late[len(late) // 2] * 1e3,
        "p99_ms": late[int(len(late) * 0.99)] * 1e3,
        "max_ms": late[-1] * 1e3,
        "cycle_max_ms": max(cycles) * 1e3,
    }


def system_sample_ms(n: int = 50) -> tuple[float, float]:
    monitor = SystemMonitor("bench", lambda body: None)
    time.sleep(0.2)
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        monitor.sample()
        samples.append((time.perf_counter() - t) * 1e3)
        time.sleep(0.01)
    samples.sort()
    return samples[n // 2], samples[int(n * 0.99)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rate", type=int, default=10_000, help="log() calls per second")
    args = ap.parse_args()
    print(f"machine load (1, 5 min): {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    event_ns, soon_ns = wake_costs()
    print(
        f"wake-up per drained buffer: Event.set {event_ns:.0f} ns, "
        f"call_soon_threadsafe {soon_ns:.0f} ns (ratio {soon_ns / event_ns:.1f}x)"
    )
    runs = {}
    for name, on_loop in (("A sender thread", False), ("B sender on loop", True)):
        runs[name] = r = lateness(on_loop, args.seconds, args.rate)
        print(
            f"{name:17}: loop lateness p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
            f"max {r['max_ms']:.2f} ms; longest sender cycle {r['cycle_max_ms']:.1f} ms"
        )
    a, b = runs["A sender thread"], runs["B sender on loop"]
    print(
        f"loop p99 lateness B/A: {b['p99_ms'] / max(a['p99_ms'], 1e-3):.1f}x, "
        f"max B/A: {b['max_ms'] / max(a['max_ms'], 1e-3):.1f}x"
    )
    med, p99 = system_sample_ms()
    print(f"system sample (psutil, {os.cpu_count()} cores): median {med:.2f} ms, p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
