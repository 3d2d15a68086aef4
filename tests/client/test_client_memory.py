"""Bounded client memory (issue 14): a run keeps at most about ``buffer_points``
points logged and not yet delivered; past that ``log()`` waits for the sender
(back-pressure), and while the server fails, data goes to the spool instead of
holding ``log()``. Nothing is lost either way (real server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import wanllm_jupyter as wl
from tests.client.client_helpers import exact_points
from tests.client.fault_proxy import FaultProxy
from tests.jupyter_process import JupyterServer
from wanllm_jupyter import _send_buffer, _sender
from wanllm_jupyter._run import Run

METRICS = [f"m{j}" for j in range(10)]


def pending_points(run: Run) -> int:
    """Points this process holds that the server has not acknowledged (buffered
    items counted at 10 points each)."""
    sender = run.sender
    assert sender is not None
    return len(sender.buffer) * 10 + len(sender.columns) + sender._in_flight


def test_log_waits_for_the_sender_and_memory_stays_bounded(
    online: JupyterServer, api: wl.Api
) -> None:
    budget, calls = 2_000, 20_000
    run = wl.init(project="t-memory", system_metrics=False, buffer_points=budget)
    assert run.sender is not None and run.sender.buffer_points == budget
    peak = 0
    for i in range(calls):
        wl.log({m: float(i) for m in METRICS})
        if i % 50 == 0:
            peak = max(peak, pending_points(run))
    wl.finish(quiet=True)
    # the buffer (<= budget) + converted and in flight (< 2 x budget), one call over each
    assert peak <= 3 * budget + 20, peak
    assert run.sender.buffer.limit == budget // 10  # learnt: 10 points per log() call
    exact_points(api, run.id, METRICS, calls)


def test_a_failing_server_sends_held_data_to_the_spool(
    online: JupyterServer, api: wl.Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sender, "SPILL_AFTER", 0.2)
    with FaultProxy(online.url, fault=lambda m, path, body: path.endswith("/batch")) as proxy:
        conn = wl.Api(proxy.url, online.token).connection
        run = wl.init(
            project="t-memory", connection=conn, system_metrics=False, buffer_points=1_000
        )  # fmt: skip
        assert run.sender is not None
        started = time.monotonic()
        for i in range(5_000):
            wl.log({m: float(i) for m in METRICS})
        held = time.monotonic() - started
        assert run.offline and proxy.faults > 0  # spooling, not holding log()
        assert held < run.sender.retry_for  # never held for a whole retry period
        proxy.fault = None  # the server takes data again: the spool is replayed
        wl.finish(quiet=True)
    assert run.report is not None and run.report.spooled_points == 0, run.report.describe()
    exact_points(api, run.id, METRICS, 5_000)


def test_a_held_log_goes_on_when_the_run_finishes_elsewhere(online: JupyterServer) -> None:
    run = wl.init(project="t-memory", system_metrics=False, buffer_points=1)
    sender = run.sender
    assert sender is not None
    with sender._lock:  # the sender cannot drain: the next log() is held
        done = threading.Event()

        def logger() -> None:
            for i in range(3):
                run.log({"a": i})
            done.set()

        thread = threading.Thread(target=logger, daemon=True)
        thread.start()
        assert not done.wait(0.3)  # held by the full buffer
    assert done.wait(10)  # released by the drain
    run.finish(quiet=True)
    assert run.report is not None and run.report.sent_points == 3


@pytest.mark.parametrize("value", ["0", "-5", "lots"])
def test_the_budget_must_be_a_positive_integer(
    value: str, client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANLLM_BUFFER_POINTS", value)
    with pytest.raises(wl.UsageError, match="positive integer"):
        wl.init(project="t-memory", mode="offline", system_metrics=False)


def test_the_budget_comes_from_the_environment(
    client_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANLLM_BUFFER_POINTS", "1234")
    run = wl.init(project="t-memory", mode="offline", system_metrics=False)
    assert run.sender is not None and run.sender.buffer_points == 1234
    wl.finish(quiet=True)


def test_a_stuck_sender_holds_log_only_briefly(
    online: JupyterServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_send_buffer, "HOLD_MAX", 0.3)
    run = wl.init(project="t-memory", system_metrics=False, buffer_points=1)
    sender = run.sender
    assert sender is not None
    with sender._lock:  # as a request hanging on a stuck server would
        started = time.monotonic()
        for i in range(200):
            run.log({"a": i})
        held = time.monotonic() - started
    assert 0.3 <= held < 2.0  # one wait of HOLD_MAX, not one per call
    run.finish(quiet=True)
    assert run.report is not None and run.report.sent_points == 200
