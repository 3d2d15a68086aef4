"""Nothing CPU-heavy runs on the event loop: the worst history requests on a
100k-point metric leave ``health`` answered promptly while they are in flight.

The Jupyter server runs on the test's own event loop, so a request that blocked
the loop would hold back every ``health`` call until it finished (before the
fix, Gaussian smoothing of 100k points blocked it for 18 s to 130 s).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
import time

import numpy as np
import pytest
from tornado import web
from traitlets import TraitError
from wanllm_server import offload
from wanllm_server.app import WanllmApp
from wanllm_server.handlers import history, wire
from wanllm_server.handlers.metrics import MetricBatchHandler

from wanllm_jupyter.core import smoothing

from .server_helpers import body, create_run, post_points

COLUMNAR = "application/vnd.wanllm.columnar+json"
N_POINTS = 100_000
HEALTH_BOUND_SECONDS = 1.0  # generous: a blocked loop took 18 s and more
# The worst requests known on one metric (query parameters of runs/{id}/metrics/loss).
WORST_REQUESTS = [
    {"smoothing": "gaussian", "smoothing_param": 1.7976931348623157e308},
    {"smoothing": "gaussian"},  # the chart's default strength: σ = 0.018·span
    {"smoothing": "gaussian", "smoothing_param": 20000, "samples": 2000},
    {"smoothing": "ema", "smoothing_param": 1e-300},
    {"smoothing": "tb_ema", "smoothing_param": 1e-300},
    {"smoothing": "running_avg", "smoothing_param": 1e300},
]


async def _run_with_points(api) -> tuple[str, np.ndarray]:
    rid = (await create_run(api))["id"]
    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(size=N_POINTS))
    batch = {
        "run_id": rid,
        "names": ["loss"],
        "k": [0] * N_POINTS,
        "s": list(range(N_POINTS)),
        "t": (time.time() + np.arange(N_POINTS) * 1e-3).tolist(),
        "v": values.tolist(),
    }
    resp = await api("POST", "metrics/batch", body=batch, headers={"Content-Type": COLUMNAR})
    assert resp.code == 200, resp.body
    assert body(resp)["written"] == N_POINTS
    return rid, values


@pytest.mark.timeout(300)
async def test_health_answers_while_the_worst_smoothing_requests_run(api) -> None:
    rid, values = await _run_with_points(api)
    heavy = [
        asyncio.ensure_future(api("GET", f"runs/{rid}/metrics/loss", params=params))
        for params in WORST_REQUESTS
    ]
    latencies: list[float] = []
    while not all(task.done() for task in heavy):
        start = time.perf_counter()
        resp = await api("GET", "health")
        latencies.append(time.perf_counter() - start)
        assert resp.code == 200, resp.body
        await asyncio.sleep(0.01)
    answers = [await task for task in heavy]

    assert len(latencies) >= 3, "the heavy requests finished before health was asked twice"
    assert max(latencies) < HEALTH_BOUND_SECONDS, f"health took {max(latencies):.2f} s"
    for params, resp in zip(WORST_REQUESTS, answers, strict=True):
        assert resp.code == 200, (params, resp.body)
        got = body(resp)
        assert len(got["smoothed"]["values"]) == len(got["steps"]), params
    # the answers are the shared core's definitions (spot-check two)
    steps = np.arange(N_POINTS, dtype=float)
    widest = np.asarray(body(answers[0])["smoothed"]["values"])
    np.testing.assert_allclose(widest, np.full(N_POINTS, values.mean()), rtol=1e-9)
    default = body(answers[1])["smoothed"]
    expected = smoothing.gaussian(steps, values, default["param"])
    np.testing.assert_allclose(default["values"], expected, rtol=1e-9, atol=1e-9)


async def test_big_bodies_and_answers_are_handled_off_the_loop_small_ones_inline(
    api, monkeypatch
) -> None:
    readers: list[str] = []
    real_read = MetricBatchHandler.read_batch

    def read_spy(self):
        readers.append(threading.current_thread().name)
        return real_read(self)

    monkeypatch.setattr(MetricBatchHandler, "read_batch", read_spy)
    rid, _ = await _run_with_points(api)  # a 100k-point columnar body: ~4 MB
    await post_points(api, rid, {"acc": [(0, 1.0)]})
    assert readers[0].startswith("wanllm-cpu")
    assert readers[1] == threading.current_thread().name

    threads: list[str] = []
    real = history.render_history

    def spy(*args):
        threads.append(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(history, "render_history", spy)
    for params in ({"smoothing": "gaussian"}, {"format": "arrow"}, {"samples": 500}):
        resp = await api("GET", f"runs/{rid}/metrics/loss", params=params)
        assert resp.code == 200, resp.body
    assert threads[0].startswith("wanllm-cpu") and threads[1].startswith("wanllm-cpu")
    assert threads[2] == threading.current_thread().name  # 2,000 points: inline is cheaper


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"smoothing": "lowess"}, "query argument smoothing='lowess': unknown smoothing method"),
        ({"smoothing": "gaussian", "smoothing_param": -1}, "smoothing_param for 'gaussian'"),
        ({"smoothing": "ema", "smoothing_param": "1e400"}, "smoothing_param='1e400'"),
        ({"smoothing": "tb_ema", "smoothing_param": 1}, "smoothing_param for 'tb_ema'"),
        ({"smoothing": "running_avg", "smoothing_param": 2.5}, "smoothing_param for 'running_avg'"),
    ],
)
async def test_bad_smoothing_arguments_are_a_400_naming_the_parameter(
    api, params: dict, message: str
) -> None:
    rid = (await create_run(api))["id"]
    resp = await api("GET", f"runs/{rid}/metrics/loss", params=params)
    assert resp.code == 400, resp.body
    assert message in body(resp)["message"]


def test_scheduling_settings_defaults_env_and_bounds(monkeypatch) -> None:
    monkeypatch.delenv("WANLLM_GIL_SWITCH_INTERVAL", raising=False)
    monkeypatch.delenv("WANLLM_OFFLOAD_NICE", raising=False)
    app = WanllmApp()
    assert (app.gil_switch_interval, app.offload_nice) == (0.001, 0)
    monkeypatch.setenv("WANLLM_GIL_SWITCH_INTERVAL", "0.002")
    monkeypatch.setenv("WANLLM_OFFLOAD_NICE", "5")
    app = WanllmApp()
    assert (app.gil_switch_interval, app.offload_nice) == (0.002, 5)
    assert WanllmApp(gil_switch_interval=0.003).gil_switch_interval == 0.003  # config wins
    with pytest.raises(TraitError, match=r"offload_nice must be 0\.\.19, got 20"):
        WanllmApp(offload_nice=20)
    with pytest.raises(TraitError, match=r"gil_switch_interval must be 0\.\.1 s, got -1"):
        WanllmApp(gil_switch_interval=-1)


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.parametrize("backend", ["sqlite"])  # no store involved
@pytest.mark.parametrize("wanllm_config", [{"offload_nice": 7}])
async def test_the_server_yields_the_gil_often_and_runs_heavy_work_as_configured(
    wanllm_app,
) -> None:
    assert sys.getswitchinterval() == pytest.approx(0.001)  # Python's default: 0.005
    assert offload.pool() is wanllm_app.offload  # the store's reads use the app's pool
    mine = _niceness()
    assert await wanllm_app.offload(_niceness) == min(mine + 7, 19)


async def test_a_body_of_many_pieces_lets_the_loop_run_between_them(api, monkeypatch) -> None:
    """A flush the socket takes at once does not suspend: each piece must yield, or a
    multi-megabyte answer is copied and sent in one loop step."""
    rid = (await create_run(api))["id"]
    await post_points(api, rid, {"loss": [(i, i / 7) for i in range(1000)]})
    monkeypatch.setattr(wire, "WRITE_BYTES", 1024)  # ~20 KB answers: many pieces
    monkeypatch.setattr(wire, "JSON_SLICE", 64)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []

    def write(self: web.RequestHandler, chunk: bytes) -> None:
        seen.append(ticks)
        web.RequestHandler.write(self, chunk)

    for handler in (history.MetricHistoryHandler, history.BulkHistoryHandler):
        monkeypatch.setattr(handler, "write", write, raising=False)
    task = asyncio.ensure_future(ticker())
    try:
        for method, path, payload in (
            ("GET", f"runs/{rid}/metrics/loss", None),
            ("POST", "history", {"run_ids": [rid]}),
        ):
            seen.clear()
            resp = await api(method, path, body=payload)
            assert resp.code == 200, resp.body
            assert len(seen) >= 10, (path, seen)
            pieces = seen[2:] if method == "POST" else seen  # bulk: opening and separator
            assert all(b > a for a, b in itertools.pairwise(pieces)), (path, seen)
    finally:
        task.cancel()
