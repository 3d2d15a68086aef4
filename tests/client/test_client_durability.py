"""Volume and fault tests: 1M points exact; the server killed mid-run loses nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

import wanllm_jupyter as wl
from tests.client.jupyter_process import JupyterServerProcess


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "timescaledb"])
def test_one_million_points_exactly(
    backend: str, make_server: Callable[..., JupyterServerProcess]
) -> None:
    # 10k-point batches keep this test short; the default 1k limit is exercised elsewhere.
    server = make_server(backend, max_batch_size=10_000)
    api = wl.Api(server.url, server.token)
    run = wl.init(project="t-1m", connection=api.connection, system_metrics=False)
    payload = {f"m{j}": float(j) for j in range(10)}
    for _ in range(100_000):
        wl.log(payload)
    report = wl.finish(timeout=600)
    assert report is not None and report.sent_points == 1_000_000 and report.spooled_points == 0
    df = api.run(run.id).history(long=True)
    assert len(df) == 1_000_000
    counts = df.groupby("metric", observed=True)["step"].agg(["count", "nunique", "min", "max"])
    assert (counts["count"] == 100_000).all() and (counts["nunique"] == 100_000).all()
    assert (counts["min"] == 0).all() and (counts["max"] == 99_999).all()


@pytest.mark.slow
def test_server_killed_and_restarted_mid_run(
    make_server: Callable[..., JupyterServerProcess],
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
    report = wl.finish(timeout=120)
    assert report is not None and report.spooled_points == 0
    df = wl.Api(server.url, server.token).run(run.id).history(long=True)
    for metric in ("loss", "acc"):
        steps = np.sort(df.loc[df["metric"] == metric, "step"].to_numpy())
        np.testing.assert_array_equal(steps, np.arange(n))  # no loss, no duplicates
