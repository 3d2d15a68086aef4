"""Media (issue 13): what logging images and histograms costs, where it costs it.

    python benchmarks/media.py [--images 200] [--calls 2000]

Printed, each against a floor or peer measured in the same run:

* caller cost of ``wl.Image(a)`` for a 256×256×3 ``uint8`` array (budget 20 µs),
  against a bare ``a.copy()``; and of ``run.log({"img": wl.Image(a)})`` in a loop
  doing 2 ms of numpy work a step, against logging a scalar and keeping a copy;
* caller cost of ``wl.Histogram(x)`` for 1M float64 values (budget 50 µs), against
  ``x.copy()`` and ``np.histogram(x, 64)`` (what binning in the caller would cost);
* the sender's encode rate (images/s of ``Image.encode``) for a smooth and a noise
  image, against Pillow's PNG encoder at the same zlib level;
* bytes on disk per image: ``--images`` distinct 256×256×3 images logged into a
  real SQLite-backed ``jupyter server``, the database's growth divided by their count
  (against the PNG bytes sent);
* image fetch latency (``GET media/{digest}``) against ``GET health`` on the same
  connection.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

IMAGE_BUDGET_US, HISTOGRAM_BUDGET_US = 20.0, 50.0


def median_us(f: Callable[[], Any], calls: int) -> float:
    times = []
    for _ in range(calls):
        t = time.perf_counter_ns()
        f()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e3


def images(n: int) -> list[np.ndarray]:
    """Distinct smooth 256×256×3 images (a photo compresses more like these than noise)."""
    y, x = np.mgrid[0:256, 0:256].astype(np.float32) / 255
    return [
        (np.stack([x, y, (x * y + i / n) % 1.0], axis=2) * 255).astype(np.uint8) for i in range(n)
    ]


def in_loop(log: Callable[[], Any], steps: int) -> float:
    """Median µs of ``log()`` in a training-like loop: 2 ms of numpy work a step
    (the GIL released, as in real training), so the sender keeps up."""
    work = np.random.default_rng(2).random((300, 300))
    times = []
    for _ in range(steps):
        deadline = time.perf_counter() + 0.002
        while time.perf_counter() < deadline:
            work @ work
        t = time.perf_counter_ns()
        log()
        times.append(time.perf_counter_ns() - t)
    return statistics.median(times) / 1e3


def caller_costs(calls: int, conn: Any) -> None:
    import wanllm_jupyter as wl

    a = images(1)[0]
    x = np.random.default_rng(0).normal(size=1_000_000)
    floor = median_us(lambda: a.copy(), calls)
    cost = median_us(lambda: wl.Image(a), calls)
    print(
        f"wl.Image(256x256x3 uint8):   {cost:8.2f} µs  (budget {IMAGE_BUDGET_US} µs; "
        f"a.copy() {floor:.2f} µs, ratio {cost / floor:.2f})"
    )
    run = wl.init(project="bench-media", connection=conn, system_metrics=False)
    kept: deque[np.ndarray] = deque(maxlen=64)
    base = in_loop(lambda: (run.log({"x": 1.0}), kept.append(a.copy())), 300)
    logged = in_loop(lambda: run.log({"img": wl.Image(a)}), 300)
    run.finish(quiet=True)
    print(
        f"log({{'img': wl.Image(a)}}) in a loop: {logged:6.2f} µs  (budget {IMAGE_BUDGET_US} µs; "
        f"log(scalar) + a.copy() kept {base:.2f} µs, ratio {logged / base:.2f})"
    )
    hist = median_us(lambda: wl.Histogram(x), calls)
    copy = median_us(lambda: x.copy(), 50)
    binned = median_us(lambda: np.histogram(x, 64), 20)
    print(
        f"wl.Histogram(1M float64):    {hist:8.2f} µs  (budget {HISTOGRAM_BUDGET_US} µs; "
        f"x.copy() {copy:.0f} µs, np.histogram {binned:.0f} µs: {binned / hist:.0f}x)"
    )


def encode_rate() -> None:
    from PIL import Image as PILImage

    import wanllm_jupyter as wl
    from wanllm_jupyter import _media_png

    smooth = images(1)[0]
    noise = np.random.default_rng(1).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    for name, a in (("smooth", smooth), ("noise", noise)):
        n = 200 if name == "smooth" else 50
        t = time.perf_counter()
        for _ in range(n):
            png = wl.Image(a).encode().png
        ours = n / (time.perf_counter() - t)
        pil = PILImage.fromarray(a)
        t = time.perf_counter()
        for _ in range(n):
            out = io.BytesIO()
            pil.save(out, format="PNG", compress_level=_media_png.LEVEL)
        peer = n / (time.perf_counter() - t)
        size = len(out.getvalue())
        print(
            f"sender encode, {name:6}:      {ours:8.0f} images/s, {len(png)} B  "
            f"(Pillow {peer:.0f} images/s, {size} B; ratio {ours / peer:.2f})"
        )


def server_figures(n: int, conn: Any, db: Path) -> None:
    import wanllm_jupyter as wl
    from wanllm_jupyter._http import API

    run = wl.init(project="bench-media", connection=conn, system_metrics=False)
    run.log({"warmup": 1.0})
    run.finish(quiet=True)
    before = _db_bytes(db)
    pixels = images(n)
    run = wl.init(project="bench-media", connection=conn, system_metrics=False)
    for i, a in enumerate(pixels):
        run.log({"img": wl.Image(a)}, step=i)
    run.finish(quiet=True)
    grown = _db_bytes(db) - before
    png = sum(len(wl.Image(a).encode().png) for a in pixels)
    print(
        f"bytes on disk per image:     {grown / n:8.0f} B  "
        f"(PNG sent {png / n:.0f} B; ratio {grown / png:.2f}; {n} images)"
    )
    digest = wl.Api(connection=conn).run(run.id).media("img")["digest"][0]
    conn.health(refresh=True)
    fetch = median_us(lambda: conn.request("GET", f"{API}media/{digest}"), 200)
    health = median_us(lambda: conn.health(refresh=True), 200)
    print(
        f"GET media/{{digest}}:          {fetch / 1e3:8.3f} ms  "
        f"(GET health {health / 1e3:.3f} ms; ratio {fetch / health:.2f})"
    )


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))


def main() -> None:
    from tests.jupyter_process import JupyterServer
    from wanllm_jupyter._http import Connection

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        server = JupyterServer(Path(d), base_url="/jp/").start()
        try:
            conn = Connection(server.url, server.token)
            caller_costs(args.calls, conn)
            encode_rate()
            db = Path(server.database_url.removeprefix("sqlite:///"))
            server_figures(args.images, conn, db)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
