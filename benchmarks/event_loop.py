"""Smoothing and history rendering: cost, and what reaches the event loop.

(a) each smoothing method at its worst parameter on n points (integer steps,
    as the server smooths), and the Gaussian on irregular real x;
(b) the longest event-loop stall while the server's history renderer
    (smoothing + JSON/Arrow encoding) runs on the offload pool — the loop only
    waits when a worker holds the GIL in one long C call;
(c) inline vs offloaded rendering of small answers (the offload threshold).

    python benchmarks/event_loop.py [--points 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server_extension"))

from wanllm_server.handlers.history import render_history
from wanllm_server.offload import INLINE_POINTS, Offload
from wanllm_server.store.base import Series

from wanllm_jupyter.core import smoothing

WORST = [
    ("gaussian", 1.7976931348623157e308),
    ("gaussian", 20_000.0),
    ("gaussian", None),  # the chart's default strength
    ("gaussian", 3.0),
    ("ema", 1e-300),
    ("ema", 100.0),
    ("tb_ema", 1e-300),
    ("tb_ema", 0.999),
    ("running_avg", 1e300),
]


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def param_for(method: str, param: float | None, n: int) -> float:
    return param if param is not None else smoothing.param_from_strength(method, 0.6, n - 1, n)


def series(n: int) -> Series:
    rng = np.random.default_rng(0)
    steps = np.arange(n, dtype=np.int64)
    return Series(steps, steps * 1000 + 1_700_000_000_000_000, np.cumsum(rng.normal(size=n)))


async def loop_stall(job, *args) -> tuple[float, float]:
    """(job seconds, longest loop stall in seconds) with ``job`` on the offload pool."""
    offload = Offload()
    stall, done = 0.0, False

    async def ticker() -> None:
        nonlocal stall
        while not done:
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            stall = max(stall, time.perf_counter() - start - 0.001)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    await offload(job, *args)
    took = time.perf_counter() - start
    done = True
    await tick
    offload.close()
    return took, stall


async def main(n: int) -> None:
    s = series(n)
    x = s.steps.astype(float)
    print(f"(a) smoothing {n:,} points (best of 3)")
    for method, param in WORST:
        p = param_for(method, param, n)
        took = best_of(lambda m=method, p=p: smoothing.smooth(x, s.values, m, p))
        print(f"    {method:12s} param={p:<12.4g} {took * 1e3:8.1f} ms")
    xr = np.sort(np.random.default_rng(1).uniform(0, n, n))
    for sigma in (5.0, 500.0):
        took = best_of(lambda sg=sigma: smoothing.gaussian(xr, s.values, sg))
        print(f"    gaussian on real x sigma={sigma:<8g} {took * 1e3:8.1f} ms")

    print("(b) history rendered on the offload pool: longest event-loop stall")
    rid = uuid.uuid4()
    for fmt, args in (
        ("json", None),
        ("arrow", None),
        ("json", (s, "gaussian", 1.7976931348623157e308)),
        ("json", (s, "gaussian", None)),
        ("json", (s, "tb_ema", 1e-300)),
    ):
        took, stall = await loop_stall(render_history, fmt, "loss", rid, s, None, args)
        label = f"{fmt} {args[1] if args else 'raw'}"
        print(f"    {label:16s} render {took * 1e3:8.1f} ms   loop stall {stall * 1e3:6.1f} ms")

    print(f"(c) inline vs offloaded JSON rendering (threshold INLINE_POINTS={INLINE_POINTS:,})")
    offload = Offload()
    for k in (1_000, 5_000, 20_000, 100_000):
        small = Series(s.steps[:k], s.times[:k], s.values[:k])
        inline = best_of(lambda sm=small: render_history("json", "loss", rid, sm, None, None), 5)
        t0 = time.perf_counter()
        for _ in range(5):
            await offload(render_history, "json", "loss", rid, small, None, None)
        pooled = (time.perf_counter() - t0) / 5
        print(
            f"    {k:>7,} points: inline {inline * 1e3:7.2f} ms (loop busy all of it), "
            f"offloaded {pooled * 1e3:7.2f} ms wall"
        )
    offload.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    asyncio.run(main(parser.parse_args().points))
