"""The live WebSockets on a real Jupyter server: SQLite + in-process fan-out
and TimescaleDB + Redis (the ``backend`` parameter of tests/server/conftest.py)."""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Any

import orjson
import pytest
from tornado.httpclient import HTTPClientError
from tornado.websocket import WebSocketClientConnection
from wanllm_server.ws import parse_client_message

from tests.server.server_helpers import body, create_run, post_points
from tests.server.ws_helpers import expect_quiet, next_message, sync


@pytest.fixture
def wanllm_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """TimescaleDB runs use Redis for live fan-out and cache; SQLite runs none."""
    if backend == "timescaledb":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def open_run_socket(jp_ws_fetch, run_id: str) -> tuple[WebSocketClientConnection, dict]:
    ws = await jp_ws_fetch("wanllm", "ws", "metrics", run_id)
    first = await next_message(ws)
    assert first["type"] == "run"
    return ws, first


async def test_run_socket_sends_state_then_points(api, jp_ws_fetch, backend, wanllm_app):
    run = await create_run(api, name="ws-run")
    ws, first = await open_run_socket(jp_ws_fetch, run["id"])
    assert first["run"] == run
    assert wanllm_app.live.status()["mode"] == (
        "redis" if backend == "timescaledb" else "in-process"
    )
    await post_points(
        api, run["id"], {"train/loss": [(0, 1.5), (1, math.nan)], "acc": [(1, -math.inf)]}
    )
    msg = await next_message(ws)
    assert msg["type"] == "metrics" and msg["run_id"] == run["id"]
    assert msg["points"]["train/loss"]["steps"] == [0, 1]
    assert msg["points"]["train/loss"]["values"] == [1.5, "NaN"]
    assert msg["points"]["acc"]["values"] == ["-Infinity"]
    assert all(isinstance(t, float) and t > 1.7e9 for t in msg["points"]["acc"]["times"])
    await expect_quiet(ws)  # exactly once, even with Redis echoing our own batch
    ws.close()


async def test_subscribe_and_unsubscribe_select_metrics(api, jp_ws_fetch):
    run = await create_run(api)
    ws, _ = await open_run_socket(jp_ws_fetch, run["id"])
    await sync(ws, {"type": "subscribe", "metrics": ["acc"]})
    await post_points(api, run["id"], {"loss": [(0, 1.0)], "acc": [(0, 0.5)]})
    assert set((await next_message(ws))["points"]) == {"acc"}
    await sync(ws, {"type": "subscribe", "metrics": ["loss"]})
    await sync(ws, {"type": "unsubscribe", "metrics": ["acc"]})
    await post_points(api, run["id"], {"loss": [(1, 1.0)], "acc": [(1, 0.5)]})
    assert set((await next_message(ws))["points"]) == {"loss"}
    await sync(ws, {"type": "unsubscribe"})
    await post_points(api, run["id"], {"loss": [(2, 1.0)]})
    await expect_quiet(ws)
    await sync(ws, {"type": "subscribe", "metrics": []})  # empty = all again
    await post_points(api, run["id"], {"loss": [(3, 1.0)], "acc": [(3, 0.5)]})
    assert set((await next_message(ws))["points"]) == {"loss", "acc"}
    ws.close()


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("not json", "malformed JSON message"),
        ("[1, 2]", "message must be a JSON object"),
        ('{"type": "hello"}', "unknown message type 'hello'"),
        ('{"type": "subscribe", "metrics": "loss"}', "'metrics' must be a list"),
        ('{"type": "subscribe", "metrics": ["ok", 3]}', "metrics[1] must be a metric name"),
        ('{"type": "subscribe", "metrics": [""]}', "metrics[0] must be a metric name"),
        ('{"type": "subscribe", "names": ["a"]}', "unknown field(s) 'names'"),
        ('{"metrics": ["a"]}', "unknown message type missing"),
        (
            '{"type": "subscribe", "metrics": ["a\\u0000"]}',
            "metrics[0] must be a metric name: contains a NUL",
        ),
        (
            '{"type": "subscribe", "metrics": ["' + "m" * 256 + '"]}',
            "metrics[0] must be a metric name",
        ),
    ],
)
def test_bad_client_messages_are_named(message: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_client_message(message)


async def test_bad_messages_get_errors_and_socket_stays_open(api, jp_ws_fetch):
    run = await create_run(api)
    ws, _ = await open_run_socket(jp_ws_fetch, run["id"])
    for bad in ("not json", '{"type": "subscribe", "metrics": [1]}', b"\x00binary"):
        await ws.write_message(bad, binary=isinstance(bad, bytes))
        reply = await next_message(ws)
        assert reply["type"] == "error" and reply["message"]
    await post_points(api, run["id"], {"loss": [(0, 1.0)]})
    assert (await next_message(ws))["points"]["loss"]["steps"] == [0]
    ws.close()


async def test_run_changes_reach_run_and_runs_sockets(api, jp_ws_fetch):
    run = await create_run(api)
    ws, _ = await open_run_socket(jp_ws_fetch, run["id"])
    sidebar = await jp_ws_fetch("wanllm", "ws", "runs")
    await sync(sidebar, {"type": "subscribe"}, expect="only carries run changes")
    resp = await api("PATCH", f"runs/{run['id']}", body={"state": "finished", "exit_code": 0})
    assert resp.code == 200, resp.body
    for sock in (ws, sidebar):
        msg = await next_message(sock)
        assert msg["type"] == "run" and msg["run"]["id"] == run["id"]
        assert msg["run"]["state"] == "finished" and msg["run"]["exit_code"] == 0
    other = await create_run(api, name="second")  # creation is a change too
    msg = await next_message(sidebar)
    assert msg["run"]["id"] == other["id"] and msg["run"]["state"] == "running"
    await expect_quiet(ws)  # not this socket's run
    assert (await api("DELETE", f"runs/{run['id']}")).code == 204  # and so is a deletion
    for sock in (ws, sidebar):
        assert await next_message(sock) == {"type": "run_deleted", "run_id": run["id"]}
    ws.close()
    sidebar.close()


async def test_many_batches_in_a_tick_are_coalesced(api, jp_ws_fetch, wanllm_app):
    run = await create_run(api)
    ws, _ = await open_run_socket(jp_ws_fetch, run["id"])
    hub = wanllm_app.live
    hub.tick = 0.5  # a long tick: several batches commit within each
    started = time.monotonic()
    await asyncio.gather(
        *(post_points(api, run["id"], {"loss": [(i, float(i))]}) for i in range(20))
    )
    steps: list[int] = []
    messages = 0
    while len(steps) < 20:
        steps.extend((await next_message(ws))["points"]["loss"]["steps"])
        messages += 1
    elapsed = time.monotonic() - started
    assert sorted(steps) == list(range(20))
    assert messages <= elapsed / hub.tick + 1  # at most one message per tick
    assert messages < 10
    ws.close()


async def test_unknown_or_malformed_run_is_refused(api, jp_ws_fetch):
    for run_id, code, text in (
        ("00000000-0000-4000-8000-00000000dead", 404, "not found"),
        ("not-a-uuid", 400, "is not a UUID"),
    ):
        with pytest.raises(HTTPClientError) as err:
            await jp_ws_fetch("wanllm", "ws", "metrics", run_id)
        assert err.value.code == code
        assert text in body(err.value.response)["message"]


@pytest.mark.parametrize("path", ["metrics/00000000-0000-4000-8000-000000000001", "runs"])
@pytest.mark.parametrize("authorization", ["", "token wrong"])
async def test_upgrade_without_valid_token_is_403(jp_ws_fetch, path, authorization):
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch(
            "wanllm", "ws", *path.split("/"), headers={"Authorization": authorization}
        )
    assert err.value.code == 403


async def test_client_gauge_tracks_open_sockets(api, jp_ws_fetch, wanllm_app):
    from wanllm_server import telemetry

    before = telemetry.WEBSOCKET_CLIENTS._value.get()
    sidebar = await jp_ws_fetch("wanllm", "ws", "runs")
    await sync(sidebar, {"type": "subscribe"}, expect="only carries run changes")
    assert telemetry.WEBSOCKET_CLIENTS._value.get() == before + 1
    assert wanllm_app.live.status()["subscribers"] == 1
    sidebar.close()
    for _ in range(100):
        if wanllm_app.live.status()["subscribers"] == 0:
            break
        await asyncio.sleep(0.02)
    assert telemetry.WEBSOCKET_CLIENTS._value.get() == before
    assert wanllm_app.live.status()["subscribers"] == 0


async def test_public_write_path_sends_the_same_messages(api, jp_ws_fetch, monkeypatch):
    """With the raw-frame shortcut off (a tornado it was not verified with), live
    messages go through tornado's public write_message and read the same."""
    from wanllm_server import ws as ws_module

    monkeypatch.setattr(ws_module, "RAW_FRAMES", False)
    sent = []
    public = ws_module.LiveSocket.write_message
    monkeypatch.setattr(
        ws_module.LiveSocket,
        "write_message",
        lambda self, m, binary=False: sent.append(m) or public(self, m, binary),
    )
    run = await create_run(api)
    ws, _ = await open_run_socket(jp_ws_fetch, run["id"])
    await post_points(api, run["id"], {"loss": [(0, 1.0), (1, 0.5)]})
    msg = await next_message(ws)
    assert msg["type"] == "metrics" and msg["points"]["loss"]["steps"] == [0, 1]
    assert "metrics" in [orjson.loads(m)["type"] for m in sent]  # through the public path
    ws.close()
