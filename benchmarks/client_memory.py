"""Client memory (issue 14): peak RSS of a process whose loop logs faster than the
sender delivers, for 100k, 1M and 3M points, with the ``log()`` median.

    python benchmarks/client_memory.py [--points 100000,1000000,3000000] [--buffer N]
                                       [--compare]

Starts one real ``jupyter server`` (SQLite, wanllm only). Each size runs in a fresh
Python process (so its peak RSS, ``ru_maxrss``, is that size's alone) that logs
dicts of 10 scalars as fast as it can, timing every ``log()`` call, then calls
``finish()``. Printed per size: peak RSS, and its growth over the process's RSS
before ``init()``; the ``log()`` median and p99 (counted in a histogram of 1 ns
bins up to 100 µs: 0.8 MB whatever the size, so the peak is the client's); how
long the loop took (what training sees) and how long until everything was
committed (the loop plus ``finish()``). Goal: peak RSS <= 100 MB at every size,
``log()`` median <= 1 µs.
``--buffer`` sets ``WANLLM_BUFFER_POINTS`` (the client's budget of points logged
and not yet delivered) for the runs.

``--compare`` also runs each size with the alternative the client does not use
(docs/client-memory.md): past the budget the sender spills batches to the spool
(replayed every ``probe_every`` s) instead of delivering them while ``log()`` waits.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.jupyter_process import JupyterServer

CHILD = r"""
import json, resource, sys, time
from array import array
import wanllm_jupyter as wl
from wanllm_jupyter._http import Connection

url, token, points, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "spill":  # the alternative: a full buffer sends batches to the spool
    from wanllm_jupyter import _sender
    deliver = _sender.Sender._deliver
    def spill(self, op):
        if op.kind == "metrics" and self.buffer.full() and not self._stop:
            self._spooling, self._next_probe = True, time.monotonic() + self.probe_every
        return deliver(self, op)
    _sender.Sender._deliver = spill

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def percentile(counts, q):  # the q quantile (ns) of the calls counted in counts[ns]
    want, seen = int(sum(counts) * q), 0
    for ns, n in enumerate(counts):
        seen += n
        if seen > want:
            return ns

payloads = [{f"m{j}": 0.001 * j + i for j in range(10)} for i in range(1000)]
CAP = 100_000  # ns: slower calls are counted in the last bin
counts = array("q", bytes(8 * (CAP + 1)))  # the same memory at every size
before = rss_mb()
run = wl.init(project="bench-memory", connection=Connection(url, token), system_metrics=False)
log, pc = wl.log, time.perf_counter_ns
t0 = time.perf_counter()
for i in range(points // 10):
    p = payloads[i % 1000]
    t = pc()
    log(p)
    d = pc() - t
    counts[d if d < CAP else CAP] += 1
loop = time.perf_counter() - t0
wl.finish(quiet=True, timeout=3600)
total = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
assert run.report.sent_points == points, run.report
print(json.dumps({
    "peak_mb": peak_mb,
    "before_mb": before,
    "median_us": percentile(counts, 0.5) / 1e3,
    "p99_us": percentile(counts, 0.99) / 1e3,
    "loop_s": loop,
    "total_s": total,
}))
"""


def measure(server: JupyterServer, points: int, env: dict[str, str], mode: str) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, server.url, server.token, str(points), mode],
        env=env, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"the {points}-point run failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--points", default="100000,1000000,3000000")
    p.add_argument("--buffer", type=int, help="WANLLM_BUFFER_POINTS for the runs")
    p.add_argument("--compare", action="store_true", help="also the spill alternative")
    args = p.parse_args()
    sizes = [int(s) for s in args.points.split(",")]
    modes = ["wait", "spill"] if args.compare else ["wait"]
    with tempfile.TemporaryDirectory(prefix="wanllm-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANLLM_", "JPY_"))}
        env.update(WANLLM_DIR=tmp, WANLLM_AUTOSTART="0")
        if args.buffer is not None:
            env["WANLLM_BUFFER_POINTS"] = str(args.buffer)
        server = JupyterServer(Path(tmp), extra_args=["--ServerApp.log_level=WARN"]).start()
        try:
            results = [(m, n, measure(server, n, env, m)) for n in sizes for m in modes]
        finally:
            server.stop()
    print(f"client peak RSS, a loop logging 10 scalars per call faster than the sender "
          f"({os.cpu_count()} CPUs, SQLite server)")  # fmt: skip
    print(f"{'full buffer':<12}{'points':>10} {'peak MB':>8} {'growth':>7} {'log med µs':>11} "
          f"{'log p99 µs':>11} {'loop s':>7} {'e2e s':>7}")  # fmt: skip
    for m, n, r in results:
        print(
            f"{m:<12}{n:>10,} {r['peak_mb']:8.1f} {r['peak_mb'] - r['before_mb']:7.1f} "
            f"{r['median_us']:11.2f} {r['p99_us']:11.2f} {r['loop_s']:7.2f} {r['total_s']:7.2f}"
        )
    print("goal: peak RSS <= 100 MB at every size; log() median <= 1 µs")
    print(f"(machine load: {' '.join(f'{x:.1f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
