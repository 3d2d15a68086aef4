"""Discovery and the local service (issue 10): how soon a process with no Jupyter
server behind it logs online.

    python benchmarks/discovery.py [--cold 5] [--warm 10]

Each sample is a fresh Python process (its imports done before the clock starts)
with its own runtime dir and SQLite database, and no WANLLM_URL. It measures the
time from ``wl.init()`` to the first point accepted by the server (polled on the
run's metric names):

- cold: no service runs, so ``init()`` starts one (goal <= 1.5 s);
- warm: the service of that database already runs (goal <= 50 ms);
- a second run in the same process (imports warm), and discovery alone (reading
  the runtime files and probing the service's health on a new connection);

then the resident memory (RSS) of the idle service.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = r"""
import json, time
import wanllm_jupyter as wl
from wanllm_jupyter._http import API, Connection

def once():
    t0 = time.perf_counter()
    run = wl.init(project="bench", system_metrics=False)
    t_init = time.perf_counter() - t0
    wl.log({"x": 1.0})
    probe = Connection(run.connection.base_url, run.connection.token)
    while not probe.get_json(f"{API}runs/{run.id}/metric-names")["metrics"]:
        time.sleep(0.0005)
    t_point = time.perf_counter() - t0
    wl.finish(quiet=True)
    assert not run.offline
    return t_init, t_point

(i1, p1), (i2, p2) = once(), once()
from wanllm_jupyter import _discovery
t0 = time.perf_counter()
assert _discovery.find_connection(quiet=True) is not None
found = time.perf_counter() - t0
print(json.dumps({"init": i1, "point": p1, "init2": i2, "point2": p2, "discover": found}))
"""


def sample(env: dict[str, str], cwd: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", SAMPLE], env=env, cwd=cwd, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    if proc.returncode:
        sys.exit(f"a sample failed:\n{proc.stdout}\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def service_pid(runtime: Path) -> int:
    (path,) = runtime.glob("wanllm-service-*.json")
    return int(json.loads(path.read_text())["pid"])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def stop(runtime: Path) -> None:
    for path in runtime.glob("wanllm-service-*.json"):
        pid = int(json.loads(path.read_text())["pid"])
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)


def environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANLLM_", "JPY_"))}
    env.update(
        JUPYTER_RUNTIME_DIR=str(work / "runtime"),
        WANLLM_DATABASE_URL=f"sqlite:///{work}/wanllm.db",
        WANLLM_DIR=str(work),
        WANLLM_AUTOSTART="1",
        WANLLM_IDLE_TIMEOUT="300",
    )
    return env


def describe(name: str, values: list[float], goal: float) -> None:
    ms = sorted(v * 1000 for v in values)
    print(
        f"{name:<38} median {statistics.median(ms):8.1f} ms   min {ms[0]:8.1f}   "
        f"max {ms[-1]:8.1f}   (goal <= {goal * 1000:.0f} ms, n={len(ms)})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cold", type=int, default=5, help="cold-start samples")
    p.add_argument("--warm", type=int, default=10, help="samples with the service running")
    args = p.parse_args()
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    rss: list[float] = []
    for _ in range(args.cold):
        with tempfile.TemporaryDirectory(prefix="wanllm-bench-") as tmp:
            work = Path(tmp)
            env = environment(work)
            try:
                cold.append(sample(env, work))
                for _ in range(args.warm // args.cold or 1):
                    warm.append(sample(env, work))
                time.sleep(2.0)  # idle
                rss.append(rss_mb(service_pid(work / "runtime")))
            finally:
                stop(work / "runtime")
    print(f"discovery and the local service ({os.cpu_count()} CPUs; no Jupyter server)")
    describe("cold start: init()", [s["init"] for s in cold], 1.5)
    describe("cold start: init() -> first point", [s["point"] for s in cold], 1.5)
    describe("running service: init()", [s["init"] for s in warm], 0.05)
    describe("running service: init() -> 1st point", [s["point"] for s in warm], 0.05)
    both = cold + warm
    describe("discovery alone (find_connection)", [s["discover"] for s in both], 0.05)
    describe("2nd run in the process: init()", [s["init2"] for s in both], 0.05)
    describe("2nd run: init() -> 1st point", [s["point2"] for s in both], 0.05)
    print(
        "(a fresh process's first init() imports nothing slow: plain-socket HTTP/1.1, and\n"
        " jupyter_core only without JUPYTER_RUNTIME_DIR; pyarrow and the package versions\n"
        " (importlib.metadata) come later, on the sender's thread)"
    )
    load = os.getloadavg()
    print(f"{'machine load (1/5/15 min)':<38} {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'idle service RSS':<38} median {statistics.median(rss):8.1f} MB")


if __name__ == "__main__":
    main()
