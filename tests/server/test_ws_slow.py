"""A subscriber that stops reading its socket gets a gap notice; a reading
subscriber on the same run misses nothing and ingest is not slowed."""

from __future__ import annotations

import asyncio
import socket

import orjson
import websocket  # websocket-client, a jupyter_server dependency
from server_helpers import create_run
from ws_helpers import next_message

COLUMNAR = "application/vnd.wanllm.columnar+json"
BATCHES, POINTS = 120, 1000


async def test_stalled_reader_gets_gap_and_others_are_unaffected(
    api, jp_ws_fetch, wanllm_app, jp_http_port, jp_base_url, jp_auth_header,
):
    hub = wanllm_app.live
    hub.tick, hub.max_buffer = 0.02, 4  # small bounds so a few MB overflow them
    run = await create_run(api)
    fast = await jp_ws_fetch("wanllm", "ws", "metrics", run["id"])
    assert (await next_message(fast))["type"] == "run"
    url = f"ws://127.0.0.1:{jp_http_port}{jp_base_url}wanllm/ws/metrics/{run['id']}"
    stalled = await asyncio.to_thread(
        websocket.create_connection, url,
        header=[f"Authorization: {jp_auth_header['Authorization']}"],
        sockopt=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)],  # then it never reads
    )

    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < BATCHES * POINTS:
            msg = await next_message(fast)
            assert msg["type"] == "metrics", msg
            received.extend(msg["points"]["loss"]["steps"])

    reader = asyncio.create_task(read_fast())
    for b in range(BATCHES):
        steps = list(range(b * POINTS, (b + 1) * POINTS))
        batch = {"batch_id": f"slow-{b}", "run_id": run["id"], "names": ["loss"],
                 "k": [0] * POINTS, "s": steps, "t": [1.7e9 + s for s in steps],
                 "v": [s * 1.000001 for s in steps]}
        resp = await api("POST", "metrics/batch", body=batch,
                         headers={"Content-Type": COLUMNAR})
        assert resp.code == 200, resp.body
    await asyncio.wait_for(reader, 30)
    assert received == list(range(BATCHES * POINTS))

    def read_stalled() -> list[dict]:
        stalled.settimeout(2)
        messages = []
        try:
            while True:
                messages.append(orjson.loads(stalled.recv()))
        except websocket.WebSocketTimeoutException:
            return messages
        finally:
            stalled.close()

    messages = await asyncio.to_thread(read_stalled)
    assert messages[0]["type"] == "run"
    gaps = [m for m in messages if m["type"] == "gap"]
    assert gaps and gaps[0]["run_id"] == run["id"] and "too slow" in gaps[0]["reason"]
    got = sum(len(m["points"]["loss"]["steps"]) for m in messages if m["type"] == "metrics")
    assert got < BATCHES * POINTS  # its backlog was dropped, not buffered without bound
    fast.close()
