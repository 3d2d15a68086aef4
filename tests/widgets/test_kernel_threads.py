"""A run logging in a real IPython kernel (jupyter_client) while its chart cell is
re-run 50 times: the kernel's thread count and open sockets stay flat (the run
has one thread, its sender; heartbeats, system sampling and every chart's live
socket are on the one I/O loop), and ``run.finish()`` leaves none of the run's
threads behind (docs/kernel-threads.md)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.jupyter_process import JupyterServer
from tests.widgets.test_cell_lifetime import NotebookKernel

pytestmark = pytest.mark.slow

PROBE = """
import json, threading, psutil
print(json.dumps({
    "threads": sorted(t.name for t in threading.enumerate()),
    "sockets": len(psutil.Process().net_connections(kind="inet")),
}))
"""
# The run's Connection keeps up to 4 idle keep-alive sockets (wanllm_jupyter/_http.py),
# shared by its sender, its heartbeat and its charts' queries: requests that happen to
# overlap may leave one or two more idle than at the baseline; a leak adds one per re-run.
SOCKET_SLACK = 2
RUN_THREADS = ("wanllm-sender", "wanllm-heartbeat", "wanllm-system")
PROCESS_THREADS = ("wanllm-io", "wanllm-io-blocking", "wanllm-widgets-work_0")


@pytest.fixture
def kernel(jupyter_server: JupyterServer, tmp_path: Any) -> Iterator[NotebookKernel]:
    env = dict(os.environ)
    env.update(
        WANLLM_URL=jupyter_server.url,
        WANLLM_TOKEN=jupyter_server.token,
        WANLLM_DIR=str(tmp_path),
        WANLLM_AUTOSTART="0",
    )
    k = NotebookKernel(env, tmp_path)
    yield k
    k.shutdown()


def probe(kernel: NotebookKernel) -> dict[str, Any]:
    return json.loads(kernel.run(PROBE, "probe").strip().splitlines()[-1])


def settled(kernel: NotebookKernel, threads: int, sockets: int) -> dict[str, Any]:
    """The probe once threads and sockets are within the limits (WebSocket closing
    handshakes finish on the I/O loop after the cell), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        now = probe(kernel)
        ok = len(now["threads"]) <= threads and now["sockets"] <= sockets
        if ok or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def warmed_up(kernel: NotebookKernel) -> dict[str, Any]:
    """The probe once the process-wide threads started lazily exist (the widgets'
    worker starts at a chart's first live redraw), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        kernel.run("run.log({'loss': 0.02})", "log")
        now = probe(kernel)
        if set(PROCESS_THREADS) <= set(now["threads"]) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def test_a_logging_runs_chart_cell_rerun_50_times_leaves_threads_and_sockets_flat(
    kernel: NotebookKernel,
) -> None:
    kernel.run(
        "import wanllm_jupyter as wl\n"
        "run = wl.init(project='kernel-threads', system_sample_every=0.2,"
        " system_report_every=0.5)\n"
        "for i in range(50):\n    run.log({'loss': 1 / (i + 1)})",
        "init",
    )
    cell = "run.log({'loss': 0.01})\nc = run.chart('loss')\nc"
    for _ in range(3):  # warm up: imports, the I/O loop, its helper and the widgets' worker
        kernel.run(cell, "chart-cell")
    baseline = warmed_up(kernel)
    names = baseline["threads"]
    assert names.count("wanllm-sender") == 1 and "wanllm-io" in names, names
    assert not {"wanllm-heartbeat", "wanllm-system"} & set(names), names
    for _ in range(47):
        kernel.run(cell, "chart-cell")
    after = settled(kernel, len(baseline["threads"]), baseline["sockets"] + SOCKET_SLACK)
    grown = sorted(set(after["threads"]) ^ set(baseline["threads"]))
    assert after["threads"] == baseline["threads"], grown
    assert after["sockets"] <= baseline["sockets"] + SOCKET_SLACK, (baseline, after)
    finish = "logged = run.step  # one point per log()\nrun.finish(quiet=True)\n"
    out = kernel.run(finish + "print(logged, run.report.sent_points)", "finish")
    logged, sent = map(int, out.split())
    assert logged >= 100 and sent == logged  # every point logged reached the server
    done = settled(kernel, len(baseline["threads"]) - 1, baseline["sockets"] + SOCKET_SLACK)
    assert not set(RUN_THREADS) & set(done["threads"]), done
    assert len(done["threads"]) == len(baseline["threads"]) - 1, (baseline, done)
