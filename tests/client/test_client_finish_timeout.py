"""``finish(timeout)`` keeps its promise (issue 9): a sender already spooling keeps
probing the server and replaying until the deadline, so a server back in time gets
everything and the run's final state; past the deadline the spool is left for
`wanllm sync`, and the report says so."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import cli
from wanllm_jupyter._run import Run
from wanllm_jupyter._spool import PENDING


def spooling_run(server: JupyterServer, points: int) -> Run:
    """A run whose ``points`` all went to the spool while ``server`` was down (and
    that would not probe again by itself for an hour)."""
    conn = wl.login(server.url, server.token)
    run = wl.init(project="t-finish", connection=conn, system_metrics=False)
    sender = run.sender
    assert sender is not None
    sender.retry_for, sender.probe_every = 0.2, 3600.0
    server.kill()
    for i in range(points):
        wl.log({"loss": 1.0 / (i + 1), "acc": float(i)})
    deadline = time.monotonic() + 30
    while sender.report.spooled_points < 2 * points:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert not sender.online
    return run


@pytest.mark.slow
def test_finish_waits_for_a_server_back_within_the_timeout(
    make_server: Callable[..., JupyterServer], tmp_path: Path
) -> None:
    server = make_server()
    run = spooling_run(server, 1000)
    back = threading.Timer(2.0, server.start)  # same port, same database
    back.start()
    started = time.monotonic()
    wl.finish(timeout=30)
    report = run.report
    took = time.monotonic() - started
    back.join()
    assert report is not None and report.spooled_points == 0 and report.sent_points == 2000
    assert 2.0 <= took < 30  # it waited for the server, not for the whole timeout
    api = wl.Api(server.url, server.token)
    exact_points(api, run.id, ["loss", "acc"], 1000)
    assert api.run(run.id).state == "finished"
    assert not (tmp_path / "wanllm" / "runs" / run.id / PENDING).exists()


@pytest.mark.slow
def test_past_the_deadline_the_spool_is_left_for_sync(
    make_server: Callable[..., JupyterServer], tmp_path: Path
) -> None:
    server = make_server()
    run = spooling_run(server, 500)
    started = time.monotonic()
    wl.finish(timeout=1.5)  # the server stays down
    report = run.report
    assert time.monotonic() - started < 5
    assert report is not None and report.spooled_points == 1000 and report.sent_points == 0
    assert "wanllm sync" in report.describe()
    server.start()
    argv = ["--url", server.url, "--token", server.token, "--dir", str(tmp_path), "sync"]
    assert cli.main(argv) == 0
    api = wl.Api(server.url, server.token)
    exact_points(api, run.id, ["loss", "acc"], 500)
    assert api.run(run.id).state == "finished"
