"""Volume and fault tests: 1M points exact; the server killed mid-run loses nothing;
a bounded finish leaves the rest to `wanllm sync`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import cli
from wanllm_jupyter._ops import Op
from wanllm_jupyter._transport import HttpTransport


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "timescaledb"])
def test_one_million_points_exactly(
    backend: str, make_server: Callable[..., JupyterServer]
) -> None:
    server = make_server(backend)  # the server's default batch limits
    api = wl.Api(server.url, server.token)
    run = wl.init(project="t-1m", connection=api.connection, system_metrics=False)
    payload = {f"m{j}": float(j) for j in range(10)}
    for _ in range(100_000):
        wl.log(payload)
    wl.finish(timeout=600)
    report = run.report
    assert report is not None and report.sent_points == 1_000_000 and report.spooled_points == 0
    df = api.run(run.id).history(long=True)
    assert len(df) == 1_000_000
    counts = df.groupby("metric", observed=True)["step"].agg(["count", "nunique", "min", "max"])
    assert (counts["count"] == 100_000).all() and (counts["nunique"] == 100_000).all()
    assert (counts["min"] == 0).all() and (counts["max"] == 99_999).all()


@pytest.mark.slow
def test_server_killed_and_restarted_mid_run(
    make_server: Callable[..., JupyterServer],
) -> None:
    server = make_server()
    conn = wl.login(server.url, server.token)
    run = wl.init(project="t-kill", connection=conn, system_metrics=False)
    run.sender.retry_for = 1.0  # type: ignore[union-attr]  # reach the spool path quickly
    run.sender.probe_every = 0.2  # type: ignore[union-attr]
    n = 60_000
    done = threading.Event()

    def train() -> None:
        for i in range(n):
            wl.log({"loss": 1.0 / (i + 1), "acc": i % 100})
            if i % 2000 == 0:
                time.sleep(0.05)  # a training loop, not a tight spin
        done.set()

    t = threading.Thread(target=train)
    t.start()
    time.sleep(0.5)
    server.kill()  # SIGKILL: requests in flight are lost, the database is not
    time.sleep(2.0)
    server.start()
    t.join()
    wl.finish(timeout=120)
    report = run.report
    assert report is not None and report.spooled_points == 0
    df = wl.Api(server.url, server.token).run(run.id).history(long=True)
    for metric in ("loss", "acc"):
        steps = np.sort(df.loc[df["metric"] == metric, "step"].to_numpy())
        np.testing.assert_array_equal(steps, np.arange(n))  # no loss, no duplicates


class SlowTransport:
    """A real transport that takes ``delay`` seconds more per operation."""

    def __init__(self, inner: HttpTransport, delay: float) -> None:
        self.inner, self.delay = inner, delay

    @property
    def timeout(self) -> float:
        return self.inner.timeout

    @timeout.setter
    def timeout(self, value: float) -> None:
        self.inner.timeout = value

    def deliver(self, op: Op) -> Any:
        time.sleep(self.delay)
        return self.inner.deliver(op)

    def heartbeat(self, run_id: str) -> None:
        self.inner.heartbeat(run_id)


@pytest.mark.slow
def test_finish_bounds_the_replay_and_sync_completes_it(
    make_server: Callable[..., JupyterServer], tmp_path: Path
) -> None:
    server = make_server()
    conn = wl.login(server.url, server.token)
    run = wl.init(project="t-bounded", connection=conn, system_metrics=False)
    sender = run.sender
    assert sender is not None
    sender.retry_for, sender.probe_every, sender.max_batch = 0.2, 3600.0, 100
    server.kill()
    for i in range(5000):  # 50 batches, all spooled while the server is down
        wl.log({"a": i})
    deadline = time.monotonic() + 20
    while sender.report.spooled_points < 5000 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.start()
    sender.transport = SlowTransport(sender.transport, 0.05)  # type: ignore[arg-type]
    started = time.monotonic()
    wl.finish(timeout=1.0)  # replaying everything would take over 2.5 s
    report = run.report
    assert time.monotonic() - started < 3.0
    assert report is not None and 0 < report.spooled_points < 5000
    assert report.sent_points + report.spooled_points == 5000
    api = wl.Api(server.url, server.token)
    assert api.run(run.id).state == "running"  # the final state waits in the spool too
    argv = ["--url", server.url, "--token", server.token, "--dir", str(tmp_path), "sync"]
    assert cli.main(argv) == 0
    exact_points(api, run.id, ["a"], 5000)
    assert api.run(run.id).state == "finished"
