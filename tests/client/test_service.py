"""The local service started on demand: kernels with no Jupyter server behind them
(as VS Code, Colab or PyCharm start them) and plain scripts log online through it,
charts get live points, a second process sees the same run, processes starting at
once share one service, it exits when idle, and killing it loses nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.client.service_helpers import Kernel, local, logging_to, service_pids, wait_dead
from wanllm_jupyter import _service
from wanllm_jupyter.core import service as core

pytestmark = pytest.mark.slow
__all__ = ["local"]  # a fixture


@pytest.fixture
def kernels(client_env: Path, local: str) -> Iterator[list[Kernel]]:
    """Kernels started by the test (each shut down afterwards)."""
    started: list[Kernel] = []
    yield started
    for k in started:
        k.shutdown()


CHART_WHILE_LOGGING = """
import time
import wanllm_jupyter as wl
run = wl.init(project="svc", system_metrics=False)
print("RUN", run.id, run.offline)
chart = run.chart("loss")
for i in range(300):
    wl.log({"loss": 1 / (i + 1)}, step=i)
    time.sleep(0.002)
deadline = time.monotonic() + 15
while sum(s.steps.size for s in chart.model.series) < 300 and time.monotonic() < deadline:
    time.sleep(0.02)
print("CHART", sum(s.steps.size for s in chart.model.series), chart.status.value)
"""


def test_kernel_without_server_logs_online_and_charts_live(
    kernels: list[Kernel], client_env: Path, local: str
) -> None:
    kernels.append(kernel := Kernel(client_env))
    out = kernel.run(CHART_WHILE_LOGGING)
    url, how = logging_to(out)
    assert how == "local service, started now"
    run_id, offline = re.search(r"RUN (\S+) (\S+)", out).groups()  # type: ignore[union-attr]
    assert offline == "False"
    assert re.search(r"CHART 300 .*live", out), out  # live while the cell still logged
    kernel.run("wl.finish()")
    api = wl.Api()  # this process finds the same service
    assert api.connection is not None and api.connection.base_url == url
    exact_points(api, run_id, ["loss"], 300)
    assert len(service_pids(client_env / "runtime", local)) == 1


SECOND_KERNEL_WATCHES = """
import time
import wanllm_jupyter as wl
chart = wl.chart("{run_id}", "loss")
first = sum(s.steps.size for s in chart.model.series)
deadline = time.monotonic() + 20
while sum(s.steps.size for s in chart.model.series) < {total} and time.monotonic() < deadline:
    time.sleep(0.02)
print("SEEN", first, sum(s.steps.size for s in chart.model.series))
"""

START_RUN = """
import time
import wanllm_jupyter as wl
run = wl.init(project="svc", system_metrics=False)
print("RUN", run.id)
"""


def test_second_kernel_sees_the_same_run_live(
    kernels: list[Kernel], client_env: Path, local: str
) -> None:
    kernels.append(first := Kernel(client_env))
    kernels.append(second := Kernel(client_env))
    run_id = re.search(r"RUN (\S+)", first.run(START_RUN)).group(1)  # type: ignore[union-attr]
    logging = first.start(
        "for i in range(400):\n    wl.log({'loss': float(i)}, step=i)\n    time.sleep(0.02)"
    )
    out = second.run(SECOND_KERNEL_WATCHES.format(run_id=run_id, total=400))
    first.wait(logging)
    assert logging_to(out)[1] == "local service"  # found, not started again
    first_seen, last_seen = map(int, re.search(r"SEEN (\d+) (\d+)", out).groups())  # type: ignore[union-attr]
    assert first_seen < 400 and last_seen == 400, out  # the rest came live


def test_two_kernels_starting_together_make_one_service(
    kernels: list[Kernel], client_env: Path, local: str
) -> None:
    kernels.extend([Kernel(client_env), Kernel(client_env)])
    code = "import wanllm_jupyter as wl\nrun = wl.init(project='svc', system_metrics=False)"
    ids = [k.start(code) for k in kernels]
    outs = [k.wait(i) for k, i in zip(kernels, ids, strict=True)]
    found = [logging_to(o) for o in outs]
    assert found[0][0] == found[1][0], found
    assert sorted(how for _, how in found) == ["local service", "local service, started now"]
    assert len(service_pids(client_env / "runtime", local)) == 1


SCRIPT = """
import wanllm_jupyter as wl
run = wl.init(project="script", system_metrics=False)
for i in range(1000):
    wl.log({"a": i, "b": -i})
wl.finish()
report = run.report
print("RUN", run.id, report.sent_points)
print("ROWS", len(wl.Api().run(run.id).history()))
"""


def test_plain_script_logs_through_the_service_which_exits_when_idle(
    client_env: Path, local: str
) -> None:
    env = dict(os.environ, WANLLM_IDLE_TIMEOUT="2")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=client_env, capture_output=True,
        text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert logging_to(out)[1] == "local service, started now"
    assert re.search(r"RUN \S+ 2000", out) and "ROWS 1000" in out, out
    info = core.read_json(core.service_file(local, client_env / "runtime"))
    assert info is not None and info["idle_timeout"] == 2.0
    assert wait_dead(info["pid"], 20), "the idle service did not exit"
    assert not core.service_file(local, client_env / "runtime").exists()


def test_killing_the_service_mid_run_loses_nothing(client_env: Path, local: str) -> None:
    run = wl.init(project="svc-kill", system_metrics=False)
    assert not run.offline
    for i in range(1000):
        wl.log({"x": float(i)}, step=i)
    time.sleep(0.5)
    (pid,) = service_pids(client_env / "runtime", local)
    os.kill(pid, signal.SIGKILL)
    assert wait_dead(pid, 10)
    for i in range(1000, 2000):
        wl.log({"x": float(i)}, step=i)
    wl.finish(timeout=60)
    report = run.report
    assert report is not None and report.spooled_points == 0, report
    (new_pid,) = service_pids(client_env / "runtime", local)
    assert new_pid != pid  # the next operation restarted it
    exact_points(wl.Api(), run.id, ["x"], 2000)
    values = wl.Api().run(run.id).history()["x"].to_numpy()
    np.testing.assert_array_equal(values, np.arange(2000.0))


LOG_OFFLINE = """
import time
import wanllm_jupyter as wl
run = wl.init(project="no-server", config={"lr": 0.1}, system_metrics=False)
for i in range(20):
    wl.log({"loss": float(i)}, step=i)
time.sleep(0.5)
print("OFFLINE", run.offline)
"""
DISPLAYS = (
    "run",
    "run.chart('loss')",
    "wl.chart(run.id, 'loss')",
    "wl.workspace(run)",
    "wl.compare([run], 'loss')",
    "wl.compare([run], 'loss', group_by='lr')",
    "wl.runs()",
)


def test_displaying_with_no_server_and_autostart_off_never_errors(client_env: Path) -> None:
    env = dict(os.environ, WANLLM_AUTOSTART="0")
    kernel = Kernel(client_env, env)
    try:
        assert "OFFLINE True" in kernel.run(LOG_OFFLINE)
        for cell in DISPLAYS:
            shown: list[str] = []
            out = kernel.run(cell, data=shown)  # the execute reply is "ok"
            assert "application/vnd.jupyter.widget-view+json" in shown, (cell, shown, out)
        assert "no server reachable" in kernel.run("wl.runs()")  # the one-line notice
        notice = kernel.run("print(wl.chart(run.id, 'loss').children[0].value)")
        assert "no server reachable" in notice and "read-only" in notice
        points = kernel.run("print(wl.chart(run.id, 'loss').model.series[0].steps.size)")
        assert points.strip() == "20"  # the run's local data
    finally:
        kernel.shutdown()


def test_init_autostart_false_logs_offline_and_starts_nothing(client_env: Path, local: str) -> None:
    run = wl.init(project="opt-out", system_metrics=False, autostart=False)
    assert run.offline
    assert not service_pids(client_env / "runtime", local)
    assert not core.service_file(local, client_env / "runtime").exists()


def test_wanllm_server_command_announces_itself_and_cleans_up(client_env: Path, local: str) -> None:
    runtime = client_env / "runtime"
    cmd = [sys.executable, "-m", "wanllm_jupyter.cli", "server", "--allow-root"]
    proc = subprocess.Popen(cmd, cwd=client_env, stderr=subprocess.DEVNULL)
    try:
        path = core.service_file(local, runtime)
        deadline = time.monotonic() + 60
        while (info := core.read_json(path)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert info is not None and info["pid"] == proc.pid
        assert path.stat().st_mode & 0o777 == 0o600
        assert info["idle_timeout"] == 120.0  # WANLLM_IDLE_TIMEOUT (the local fixture's)
        conn, how = _service.ensure(local)
        assert (conn.base_url, conn.token, how) == (info["url"], info["token"], "local service")
        assert core.read_owner(core.sqlite_path(local)) == {  # type: ignore[arg-type]
            "url": info["url"],
            "pid": proc.pid,
            "kind": "service",
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert not path.exists()
    assert core.read_owner(core.sqlite_path(local)) is None  # type: ignore[arg-type]
