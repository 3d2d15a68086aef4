"""What ``finish()`` says and how runs end in a real IPython kernel (jupyter_client):
one quiet stdout line and no echoed value per ``finish()``; a cell that raises or is
interrupted leaves the run running; a kernel restart or shutdown with the run still
open flushes every point and records ``crashed``, never a clean finish
(docs/end-states.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.client.test_client_kernel import Kernel
from tests.jupyter_process import JupyterServer

pytestmark = pytest.mark.slow


@pytest.fixture
def kernel(online: JupyterServer, client_env: Path) -> Iterator[Kernel]:
    with wl.init(project="t-end-warm-up", system_metrics=False):  # the server's first batch
        wl.log({"x": 1})
    k = Kernel(client_env)
    yield k
    k.shutdown()


def outputs(kernel: Kernel, code: str) -> dict[str, Any]:
    """Run a cell; its stdout, stderr and echoed results (``execute_result``)."""
    got: dict[str, Any] = {"stdout": "", "stderr": "", "results": []}

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream":
            got[msg["content"]["name"]] += msg["content"]["text"]
        elif msg["msg_type"] == "execute_result":
            got["results"].append(msg["content"]["data"])

    reply = kernel.kc.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return got


def test_finish_says_one_quiet_line_and_echoes_nothing(kernel: Kernel) -> None:
    kernel.run("import wanllm_jupyter as wl\nrun = wl.init(project='t-end-quiet')")
    kernel.run("for i in range(600):\n    wl.log({'loss': 1 / (i + 1)})")
    got = outputs(kernel, "wl.finish()")
    assert got["stderr"] == "" and got["results"] == []
    assert got["stdout"].count("\n") == 1 and "600 points sent" in got["stdout"], got
    assert kernel.run("print(run.report.sent_points)").strip() == "600"  # kept on the run
    # nine runs in a loop: nine quiet stdout lines, nothing on stderr
    loop = outputs(
        kernel,
        "for k in range(9):\n"
        "    wl.init(project='t-end-quiet', config={'k': k}, system_metrics=False)\n"
        "    wl.log({'loss': k})\n"
        "    wl.finish()",
    )
    assert loop["stderr"] == "" and loop["results"] == []
    assert sum("points sent" in line for line in loop["stdout"].splitlines()) == 9


def test_a_failing_cell_leaves_the_run_running_and_restart_records_crashed(
    kernel: Kernel, api: wl.Api
) -> None:
    kernel.run(
        "import wanllm_jupyter as wl\nrun = wl.init(project='t-end-crash')\n"
        "for i in range(1000):\n    wl.log({'a': i})"
    )
    rid = kernel.run("print(run.id)").strip()
    kernel.run("raise ValueError('boom')", status="error")
    assert kernel.run("print(run.finished)").strip() == "False"  # as in W&B: not ended
    assert api.run(rid).state == "running"
    kernel.restart()  # the run was never finished: crashed, never 'finished'/0
    r = api.run(rid)
    assert (r.state, r.data["exit_code"]) == ("crashed", None)
    assert r.data["finished_at"] is not None
    exact_points(api, rid, ["a"], 1000)  # ... and nothing was lost


def test_finish_after_a_failing_cell_is_a_clean_finish_and_shutdown_crashes_open_runs(
    kernel: Kernel, api: wl.Api
) -> None:
    kernel.run("import wanllm_jupyter as wl\nrun = wl.init(project='t-end-clean')")
    kernel.run("wl.log({'a': 1})\n1 / 0", status="error")
    first = kernel.run("print(run.id)").strip()
    kernel.run("wl.finish(quiet=True)")  # the user decided the run is done
    assert (api.run(first).state, api.run(first).data["exit_code"]) == ("finished", 0)
    kernel.run("run = wl.init(project='t-end-clean')\nwl.log({'a': 2})")
    second = kernel.run("print(run.id)").strip()
    kernel.shutdown()
    r = api.run(second)
    assert (r.state, r.data["exit_code"]) == ("crashed", None)
    exact_points(api, second, ["a"], 1)
