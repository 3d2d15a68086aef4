"""The kernel's one I/O loop: many live charts and a live run table share three
threads (the loop, the widgets' worker and the loop's blocking helper); a
reconnect loop logs a failure once, not per attempt; live messages are typed."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from wanllm_jupyter._http import Connection
from wanllm_jupyter.widgets import _live, _socket, chart, workspace
from wanllm_jupyter.widgets._messages import Kind, LiveMessage
from wanllm_jupyter.widgets.run_table import run_table


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}


def eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_live_charts_and_a_run_table_share_the_loops_threads(conn, logger) -> None:
    project = f"io-loop-{time.monotonic_ns()}"
    runs = [logger.run(f"r{i}", project=project) for i in range(4)]
    before = thread_names()
    for r in runs:
        logger.log(r["id"], "loss", range(3), [1.0, 0.5, 0.25])
    charts = [chart(r["id"], "loss", connection=conn) for r in runs]
    table = run_table(project, connection=conn)
    try:
        assert all("live" in c.status.value for c in charts)
        logger.log(runs[0]["id"], "loss", [3], [0.1])
        assert eventually(lambda: len(charts[0].figure.marks[1].x[0]) == 4)
        logger.finish(runs[1]["id"])  # the table's socket brings the new state
        assert eventually(
            lambda: {r["id"]: r["state"] for r in table.rows}[runs[1]["id"]] == "finished"
        )
        widget_threads = {"wanllm-io", "wanllm-widgets-work_0", "wanllm-io-blocking"}
        assert thread_names() - before <= widget_threads
        assert _live.LiveHub.get().sockets() >= 3  # runs 0, 2, 3 are still running
    finally:
        table.close()
        for c in charts:
            c.close()
    assert eventually(lambda: table._feed is None and charts[0]._redrawer._task.done())


class Recorder:
    def __init__(self) -> None:
        self.gaps = 0

    def on_points(self, run_id: str, points: dict[str, Any]) -> None: ...
    def on_run(self, run: dict[str, Any]) -> None: ...
    def on_gap(self, run_id: str) -> None:
        self.gaps += 1


def test_a_failing_reconnect_loop_logs_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(_socket, "RECONNECT_DELAY", 0.05)
    hub, conn, listener = _live.LiveHub(), Connection(f"http://127.0.0.1:{port}/"), Recorder()
    caplog.set_level(logging.DEBUG, logger="wanllm_jupyter")
    hub.subscribe(conn, "run-1", listener)
    try:
        assert eventually(lambda: len(caplog.records) >= 5, timeout=5)  # several attempts
    finally:
        hub.unsubscribe(conn, "run-1", listener)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "live socket of run run-1 failed" in warnings[0].getMessage()
    assert listener.gaps == 0


def test_live_messages_are_typed() -> None:
    run = LiveMessage.parse(b'{"type": "run", "run": {"id": "a", "state": "finished"}}')
    assert run.kind is Kind.RUN and run.run["state"] == "finished" and run.ends_run
    assert not LiveMessage.of({"type": "run", "run": {"state": "running"}}).ends_run
    assert LiveMessage.of({"type": "run_deleted", "run_id": "a"}).ends_run
    metrics = LiveMessage.of({"type": "metrics", "points": {"loss": {"steps": [1]}}})
    assert metrics.kind is Kind.METRICS and metrics.points == {"loss": {"steps": [1]}}
    assert LiveMessage.of({"type": "from-the-future"}).kind is Kind.OTHER
    assert LiveMessage.of(["not", "an", "object"]).points == {}


def test_a_live_workspace_adds_a_new_metric_off_the_loop_thread(conn, logger) -> None:
    """A new metric arrives on the live socket: the workspace builds its charts on the
    loop's worker (the loop keeps delivering, and a chart's socket can open)."""
    run = logger.run("ws-live")
    logger.log(run["id"], "loss", range(3), [1.0, 0.5, 0.25])
    ws = workspace(run["id"], connection=conn)
    try:
        assert list(ws.selector.value) == ["loss"]
        logger.log(run["id"], "acc", range(3), [0.1, 0.2, 0.3])
        assert eventually(lambda: "acc" in ws.selector.value)
        assert eventually(lambda: len(ws.charts) == 4)  # main, two small multiples, wall time
        logger.log(run["id"], "acc", [3], [0.4])
        single_acc = ws.charts[2]
        assert eventually(lambda: len(single_acc.figure.marks[1].x[0]) == 4)
    finally:
        ws.close()
