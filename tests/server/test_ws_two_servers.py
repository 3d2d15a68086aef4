"""Two real Jupyter servers sharing one TimescaleDB and one Redis: a point
posted to server A reaches a WebSocket subscriber on server B, exactly once,
and so do run state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import orjson
import pytest
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from tests.jupyter_process import JupyterServer
from tests.server.server_helpers import call
from tests.server.ws_helpers import expect_quiet, next_message

pytestmark = pytest.mark.slow
BASE_URL = "/user/wanllm/"  # not "/": every URL must honour base_url


@pytest.fixture
def servers(timescale_dsn: str, redis_url: str) -> Iterator[tuple[JupyterServer, JupyterServer]]:
    def server() -> JupyterServer:
        return JupyterServer(database_url=timescale_dsn, redis_url=redis_url, base_url=BASE_URL)

    a = server().start()  # A migrates the database first
    try:
        b = server().start()
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.terminate()  # both shut down at once
    a.stop()
    b.stop()


async def connect(server: JupyterServer, path: str) -> WebSocketClientConnection:
    return await websocket_connect(HTTPRequest(server.ws_url + path, headers=server.headers))


async def drain_creation_echo(ws: WebSocketClientConnection, run_id: str) -> None:
    """The run's creation also reaches B through Redis, possibly after B greeted a
    socket with the run's state: what arrives now may only be that (running) run."""
    while True:
        try:
            text = await asyncio.wait_for(ws.read_message(), 0.3)
        except TimeoutError:
            return
        msg = orjson.loads(text)
        assert msg["type"] == "run" and msg["run"]["id"] == run_id, msg
        assert msg["run"]["state"] == "running", msg


async def test_point_posted_to_a_reaches_subscriber_on_b(servers):
    a, b = servers
    run = await call(a, "POST", "runs", {"project": "scale-out"})
    on_b = await connect(b, f"wanllm/ws/metrics/{run['id']}")
    assert (await next_message(on_b))["run"]["id"] == run["id"]  # B reads A's run
    sidebar_b = await connect(b, "wanllm/ws/runs")
    await asyncio.sleep(0.5)  # B's hub subscribes the run channel in Redis
    for sock in (on_b, sidebar_b):
        await drain_creation_echo(sock, run["id"])

    rows = [
        {"run_id": run["id"], "metric_name": "train/loss", "step": 1, "value": 0.25},
        {"run_id": run["id"], "metric_name": "train/loss", "step": 2, "value": "NaN"},
    ]
    assert (await call(a, "POST", "metrics/batch", {"metrics": rows}))["written"] == 2
    msg = await next_message(on_b)
    assert msg["type"] == "metrics" and msg["run_id"] == run["id"]
    assert msg["points"]["train/loss"]["steps"] == [1, 2]
    assert msg["points"]["train/loss"]["values"] == [0.25, "NaN"]

    rows = [{"run_id": run["id"], "metric_name": "train/loss", "step": 3, "value": 0.5}]
    await call(b, "POST", "metrics/batch", {"metrics": rows})  # B's own ingest: once, too
    assert (await next_message(on_b))["points"]["train/loss"]["steps"] == [3]
    await expect_quiet(on_b)

    await call(a, "PATCH", f"runs/{run['id']}", {"state": "finished"})
    for sock in (on_b, sidebar_b):
        msg = await next_message(sock)
        assert msg["type"] == "run" and msg["run"]["state"] == "finished"
    on_b.close()
    sidebar_b.close()
