"""The client inside a real IPython kernel (jupyter_client): kernel shutdown and
restart flush runs left open (and record them crashed), Ctrl-C in a cell loses nothing, a
failing cell does not end the run, re-running ``wl.init()`` cells is predictable."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelClient, KernelManager

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer

pytestmark = pytest.mark.slow


class Kernel:
    """A python3 kernel subprocess and a client executing cells in it."""

    def __init__(self, cwd: Path) -> None:
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(env=dict(os.environ), cwd=str(cwd))
        self.kc: KernelClient = self._client()

    def _client(self) -> KernelClient:
        kc = self.km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)
        return kc

    def run(self, code: str, status: str = "ok", timeout: float = 60) -> str:
        """Execute one cell; its stdout. The reply must have ``status``."""
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
                out.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        assert reply["content"]["status"] == status, reply["content"]
        return "".join(out)

    def restart(self) -> None:
        self.kc.stop_channels()
        self.km.restart_kernel(now=False)
        self.kc = self._client()

    def shutdown(self) -> None:
        self.kc.stop_channels()
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)


@pytest.fixture
def kernel(online: JupyterServer, client_env: Path) -> Iterator[Kernel]:
    """A kernel whose environment points wanllm at the shared test server."""
    # A fresh server's first metrics batch takes ~1 s (lazy set-up); the kernel's
    # shutdown flush has 1.5 s, so take that cost here, outside of what is measured.
    with wl.init(project="t-kernel-warm-up", system_metrics=False):
        wl.log({"x": 1})
    k = Kernel(client_env)
    yield k
    k.shutdown()


TRAIN = """
import wanllm_jupyter as wl
run = wl.init(project="t-kernel-exit", system_metrics=False)
for i in range(10_000):
    wl.log({"a": i, "b": -i})
print(run.id)
"""


def test_kernel_restart_and_shutdown_flush_and_finish(kernel: Kernel, api: wl.Api) -> None:
    first = kernel.run(TRAIN).split()[-1]  # after the "wanllm: logging to ..." line
    kernel.restart()
    second = kernel.run(TRAIN).split()[-1]
    kernel.shutdown()
    for rid in (first, second):  # flushed, but never finished: crashed (docs/end-states.md)
        r = api.run(rid)
        assert (r.state, r.data["exit_code"]) == ("crashed", None)
        exact_points(api, rid, ["a", "b"], 10_000)


def test_keyboard_interrupt_in_a_cell_loses_nothing(kernel: Kernel, api: wl.Api) -> None:
    kernel.run("import wanllm_jupyter as wl\nrun = wl.init(project='t-kernel-kbd')")
    kernel.kc.execute(
        "import time\n"
        "i = 0\n"
        "while True:\n"
        "    wl.log({'a': i})\n"
        "    i += 1\n"
        "    if i % 100 == 0:\n"
        "        wl.summary.get('a')  # the main thread converts points too\n"
        "    if i % 1000 == 0:\n"
        "        time.sleep(0.001)\n",
        stop_on_error=False,  # the next cell is not aborted by the interrupt
    )
    time.sleep(2.0)
    kernel.km.interrupt_kernel()
    reply = kernel.kc.get_shell_msg(timeout=30)
    assert (
        reply["content"]["status"] == "error" and reply["content"]["ename"] == "KeyboardInterrupt"
    )
    out = kernel.run("print(run.id, run.step, i, run.finished, wl.run is run)").split()
    rid, step, i = out[0], int(out[1]), int(out[2])
    assert out[3:] == ["False", "True"]  # the interrupted cell did not end the run
    assert step in (i, i + 1) and step > 1000  # i += 1 may not have run after the last log()
    assert api.run(rid).state == "running"
    kernel.run("wl.finish(quiet=True)")
    exact_points(api, rid, ["a"], step)
    assert api.run(rid).state == "finished"


def test_rerunning_init_cells_and_a_failing_cell(kernel: Kernel, api: wl.Api) -> None:
    cell = "import wanllm_jupyter as wl\nrun = wl.init(project='t-kernel-reinit')\nwl.log({'a': 1})"
    kernel.run(cell)
    first = kernel.run("print(run.id)").strip()
    kernel.run(cell)  # the same cell again: the first run is finished, a new one starts
    second = kernel.run("print(run.id)").strip()
    assert first != second and api.run(first).state == "finished"
    # init with the current run's id (a cell resuming it by id) returns it unchanged
    out = kernel.run(
        f"again = wl.init(project='t-kernel-reinit', id='{second}')\n"
        "print(again is run, wl.run is run)"
    )
    assert out.split() == ["True", "True"]
    kernel.run("1 / 0", status="error")  # a failing cell does not end the run
    kernel.run("wl.log({'a': 2})")
    assert kernel.run("print(wl.run.finished)").strip() == "False"
    kernel.shutdown()  # ... and the kernel's shutdown flushes it, recorded as crashed
    r = api.run(second)
    assert (r.state, r.data["exit_code"]) == ("crashed", None)
    assert r.history()["a"].tolist() == [1.0, 2.0]
    exact_points(api, first, ["a"], 1)
