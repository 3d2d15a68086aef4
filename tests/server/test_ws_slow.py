"""A subscriber that stops reading its socket gets a gap notice; a reading
subscriber on the same run misses nothing and ingest is not slowed.

Overflowing a stalled socket takes megabytes (the kernel and tornado buffer
that much first), so most points are handed to the server's real hub
directly, as the ingest handler does after a commit, rather than through a
few hundred HTTP batches; one batch goes through HTTP while the reader stalls."""

from __future__ import annotations

import asyncio
import socket
import uuid

import numpy as np
import orjson
import pytest
import websocket  # websocket-client, a jupyter_server dependency
from wanllm_server.store.base import MetricBatch

from tests.server.server_helpers import create_run, post_points
from tests.server.ws_helpers import commit_and_publish, next_message

BATCHES, POINTS = 30, 20_000


@pytest.fixture
def backend() -> str:
    return "sqlite"  # fan-out does not depend on the store


def committed_batch(run_id: str, first_step: int) -> MetricBatch:
    steps = np.arange(first_step, first_step + POINTS, dtype=np.int64)
    return MetricBatch(
        batch_id=uuid.uuid4().hex,
        run_ids=[uuid.UUID(run_id)],
        names=["loss"],
        run_idx=np.zeros(POINTS, np.int32),
        name_idx=np.zeros(POINTS, np.int32),
        steps=steps,
        times=1_700_000_000_000_000 + steps,
        values=steps * 0.5,
    )


async def test_stalled_reader_gets_gap_and_others_are_unaffected(
    api,
    jp_ws_fetch,
    wanllm_app,
    jp_http_port,
    jp_base_url,
    jp_auth_header,
):
    hub = wanllm_app.live
    hub.tick, hub.max_buffer = 0.02, 4
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
    total = BATCHES * POINTS + 1
    received: list[int] = []

    async def read_fast() -> None:
        while len(received) < total:
            msg = await next_message(fast)
            assert msg["type"] == "metrics", msg
            received.extend(msg["points"]["loss"]["steps"])

    reader = asyncio.create_task(read_fast())
    for b in range(BATCHES):
        await commit_and_publish(hub, wanllm_app, committed_batch(run["id"], b * POINTS))
        await asyncio.sleep(hub.tick * 1.5)
    await post_points(api, run["id"], {"loss": [(total - 1, 1.0)]})  # ingest still answers
    await asyncio.wait_for(reader, 30)
    assert received == list(range(total))

    def read_stalled() -> list[dict]:
        stalled.settimeout(1)
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
    assert got < total  # its backlog was dropped, not buffered without bound
    fast.close()
