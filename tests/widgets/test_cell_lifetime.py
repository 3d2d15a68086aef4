"""Widgets live as long as the cell that made them: in a real IPython kernel
(jupyter_client), re-running a chart cell closes the previous chart, so threads,
sockets and widget comms stay flat; a deleted cell's widgets close with the next
execution. Cells are sent with the ``cellId``/``deletedCells`` metadata
JupyterLab sends."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from jupyter_client import KernelClient, KernelManager

from tests.jupyter_process import JupyterServer
from tests.widgets.conftest import Logger

pytestmark = pytest.mark.slow

PROBE = """
import json, threading, warnings, psutil
from ipywidgets import Widget
from wanllm_jupyter.widgets import MetricChart
from wanllm_jupyter.widgets._live import LiveHub
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    open_widgets = list(Widget.widgets.values())
print(json.dumps({
    "threads": threading.active_count(),
    "sockets": len(psutil.Process().net_connections(kind="inet")),
    "widgets": len(open_widgets),
    "charts": sum(isinstance(w, MetricChart) for w in open_widgets),
    "live": LiveHub.get().sockets(),
}))
"""


class NotebookKernel:
    """A python3 kernel and a client that executes cells the way JupyterLab does."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=env, cwd=str(cwd))
        self.kc: KernelClient = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, cell_id: str, deleted: list[str] | None = None) -> str:
        """Execute ``code`` as cell ``cell_id``; its stdout (an error fails the test)."""
        metadata: dict[str, Any] = {"cellId": cell_id}
        if deleted:
            metadata["deletedCells"] = deleted
        content = {"code": code, "silent": False, "store_history": True, "allow_stdin": False}
        msg = self.kc.session.msg("execute_request", content, metadata=metadata)
        self.kc.shell_channel.send(msg)
        out: list[str] = []
        deadline = time.monotonic() + 60
        while True:
            try:
                io = self.kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except Empty:
                raise AssertionError(f"cell {cell_id} did not finish") from None
            if io["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
                continue
            kind, body = io["msg_type"], io["content"]
            if kind == "stream" and body["name"] == "stdout":
                out.append(body["text"])
            elif kind == "error":
                raise AssertionError("\n".join(body["traceback"]))
            elif kind == "status" and body["execution_state"] == "idle":
                return "".join(out)

    def probe(self) -> dict[str, int]:
        return json.loads(self.run(PROBE, "probe").strip().splitlines()[-1])

    def shutdown(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel(
    jupyter_server: JupyterServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NotebookKernel]:
    """One kernel for the module (its start and first import take ~10 s)."""
    tmp = tmp_path_factory.mktemp("kernel")
    env = dict(os.environ)
    env.update(
        WANLLM_URL=jupyter_server.url,
        WANLLM_TOKEN=jupyter_server.token,
        WANLLM_DIR=str(tmp),
        WANLLM_AUTOSTART="0",
    )
    k = NotebookKernel(env, tmp)
    k.run("import wanllm_jupyter as wl", "imports")
    yield k
    k.shutdown()


def settled(kernel: NotebookKernel, limits: dict[str, int]) -> dict[str, int]:
    """The probe once none of ``limits``' keys is above its limit (WebSocket closing
    handshakes finish on the I/O loop after the cell), or after 10 s."""
    deadline = time.monotonic() + 10
    while True:
        now = kernel.probe()
        if all(now[k] <= limits[k] for k in limits) or time.monotonic() > deadline:
            return now
        time.sleep(0.2)


def test_rerunning_a_chart_cell_50_times_leaves_threads_and_sockets_flat(
    kernel: NotebookKernel, logger: Logger
) -> None:
    run = logger.run("rerun")  # running: every chart holds a live socket
    logger.log(run["id"], "loss", range(50), [1.0 / (i + 1) for i in range(50)])
    cell = f"c = wl.chart({run['id']!r}, 'loss')\nc"
    for _ in range(3):  # warm up: imports, the I/O loop and its worker
        kernel.run(cell, "chart-cell")
    baseline = kernel.probe()
    assert baseline["live"] == 1  # the shown chart's socket
    for _ in range(47):
        kernel.run(cell, "chart-cell")
    after = settled(kernel, baseline)
    assert after["threads"] == baseline["threads"], (baseline, after)
    assert after["sockets"] <= baseline["sockets"], (baseline, after)
    assert after["widgets"] == baseline["widgets"], (baseline, after)  # comms closed too
    assert after["live"] == 1


def test_a_deleted_cells_widgets_close_with_the_next_execution(
    kernel: NotebookKernel, logger: Logger
) -> None:
    run = logger.run("deleted")
    logger.log(run["id"], "loss", range(5), [1.0, 0.5, 0.3, 0.2, 0.1])
    kernel.run("x = 0", "another", deleted=["chart-cell"])  # the other test's chart
    before = settled(kernel, {"live": 0})
    kernel.run(f"wl.chart({run['id']!r}, 'loss')", "doomed")
    kernel.run(f"kept = wl.chart({run['id']!r}, 'loss')", "kept")
    shown = kernel.probe()
    assert shown["widgets"] > before["widgets"] and shown["live"] == 1
    kernel.run("x = 1", "another", deleted=["doomed"])
    after = kernel.probe()
    per_chart = (shown["widgets"] - before["widgets"]) // 2
    assert after["widgets"] == shown["widgets"] - per_chart
    assert after["live"] == 1  # the kept chart still follows the run
    kernel.run("x = 2", "another", deleted=["kept"])
    assert settled(kernel, {"live": 0})["live"] == 0


def test_a_cells_clear_output_closes_the_charts_it_removed(
    kernel: NotebookKernel, logger: Logger
) -> None:
    """``clear_output()`` in a cell closes the charts shown before it and not shown
    again (a loop redrawing a new chart each time keeps one), at the next clear or
    when the cell ends; a chart shown again after the clear, or only an ``Output``
    widget's clear, keeps it open."""
    rid = logger.run("cleared")["id"]
    logger.log(rid, "loss", range(5), [1.0, 0.5, 0.3, 0.2, 0.1])
    kernel.run("from IPython.display import clear_output, display\nimport ipywidgets as W", "i")
    kernel.run("x = 0", "another", deleted=["chart-cell", "doomed", "kept"])  # other tests'
    assert settled(kernel, {"live": 0})["charts"] == 0
    loop = f"for i in range(4):\n    clear_output(wait=True)\n    display(wl.chart({rid!r}))"
    kernel.run(loop, "loop")
    assert kernel.probe()["charts"] == 1  # the last one
    kernel.run(f"c = wl.chart({rid!r})\ndisplay(c)\nclear_output(wait=True)\ndisplay(c)", "same")
    assert kernel.probe()["charts"] == 2  # shown again after the clear
    output_widget = (
        f"out = W.Output()\ndisplay(out)\nd = wl.chart({rid!r})\ndisplay(d)\n"
        "with out:\n    print('x')\nout.clear_output()"
    )
    kernel.run(output_widget, "output-widget")
    assert kernel.probe()["charts"] == 3  # the Output widget was cleared, not the cell
    kernel.run(f"e = wl.chart({rid!r})\ndisplay(e)\nclear_output()", "cleared")
    assert kernel.probe()["charts"] == 3
    kernel.run("x = 1", "another", deleted=["loop", "same", "output-widget", "cleared"])
    assert settled(kernel, {"live": 0})["charts"] == 0
