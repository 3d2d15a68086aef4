"""Live memory is bounded against hostile or slow clients (real Jupyter server,
SQLite): a cap on sockets, bounded client messages and name sets, and one byte
budget whose slowest sockets get a gap and are closed."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import orjson
import pytest
import websocket  # websocket-client, a jupyter_server dependency
from tornado.websocket import WebSocketClientConnection
from wanllm_server.live_subscriber import MAX_SUBSCRIBED_NAMES
from wanllm_server.ws import MAX_CLIENT_MESSAGE_BYTES, TRY_AGAIN_LATER

from tests.live.live_helpers import publish
from tests.server.server_helpers import create_run
from tests.server.test_ws_slow import committed_batch
from tests.server.ws_helpers import next_message, sync


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the live path does not depend on the store


@pytest.fixture
def wanllm_config() -> dict[str, Any]:
    return {"max_live_sockets": 2, "max_live_buffer_bytes": 2 * 1024 * 1024}


async def closed(ws: WebSocketClientConnection) -> tuple[int | None, str | None]:
    """Read until the server closes the socket: its close code and reason."""
    while await asyncio.wait_for(ws.read_message(), 10) is not None:
        pass
    return ws.close_code, ws.close_reason


async def test_sockets_past_the_cap_are_refused(api, jp_ws_fetch, wanllm_app):
    run = await create_run(api)
    first = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    sidebar = await jp_ws_fetch("wanllm", "ws", "runs")
    assert (await next_message(first))["type"] == "run"
    third = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    code, reason = await closed(third)
    assert code == TRY_AGAIN_LATER and "max_live_sockets=2" in (reason or "")
    sidebar.close()
    for _ in range(100):  # the server sees the close
        if wanllm_app.live.subscriber_count == 1:
            break
        await asyncio.sleep(0.02)
    again = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    assert (await next_message(again))["type"] == "run"
    first.close()
    again.close()


async def test_client_messages_and_name_sets_are_bounded(api, jp_ws_fetch):
    run = await create_run(api)
    ws = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    assert (await next_message(ws))["type"] == "run"
    names = [f"m{i}" for i in range(MAX_SUBSCRIBED_NAMES + 1)]
    await sync(ws, {"type": "subscribe", "metrics": names}, expect="at most 1000 metrics")
    await sync(ws, {"type": "subscribe", "metrics": names[:10]})  # still usable
    huge = orjson.dumps({"type": "subscribe", "metrics": ["x" * 200] * 400}).decode()
    assert len(huge) > MAX_CLIENT_MESSAGE_BYTES
    await ws.write_message(huge)
    assert (await closed(ws))[0] == 1009  # tornado: message too big


async def test_slowest_socket_is_evicted_past_the_budget(
    api, jp_ws_fetch, wanllm_app, jp_http_port, jp_base_url, jp_auth_header
):
    hub = wanllm_app.live
    hub.tick = 0.02
    run = await create_run(api)
    fast = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    assert (await next_message(fast))["type"] == "run"
    url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}wanllm/ws/metrics/{run['id']}"
    stalled = await asyncio.to_thread(
        websocket.create_connection,
        url,
        header=[f"Authorization: {jp_auth_header['Authorization']}"],
        skip_utf8_validation=True,
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],  # then it never reads
    )
    batches, points = 12, 20_000  # ~0.5 MB a message
    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < batches * points:
            msg = await next_message(fast)
            assert msg["type"] == "metrics", msg
            received.extend(msg["points"]["loss"]["steps"])

    reader = asyncio.create_task(read_fast())
    for b in range(batches):
        publish(hub, committed_batch(run["id"], b * points))
        await asyncio.sleep(hub.tick * 2)
    await asyncio.wait_for(reader, 30)
    assert received == list(range(batches * points))  # the fast one lost nothing
    assert hub.status()["evictions"] == 1 and hub.status()["subscribers"] == 1
    assert hub.budget.used <= hub.budget.limit

    def read_stalled() -> tuple[list[dict], int]:
        stalled.settimeout(10)
        messages = []
        while True:
            opcode, data = stalled.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                return messages, int.from_bytes(data[:2], "big")
            if opcode == websocket.ABNF.OPCODE_TEXT:
                messages.append(orjson.loads(data))

    messages, code = await asyncio.to_thread(read_stalled)
    stalled.close()
    assert code == TRY_AGAIN_LATER
    assert messages[-1]["type"] == "gap" and "budget" in messages[-1]["reason"]
    fast.close()
