"""Redis stopped mid-stream (TimescaleDB + Redis server): ingest and queries
keep working, live fan-out degrades to in-process, and when Redis returns
points from another server flow again (after a gap notice); ``ws/runs``
subscribers get a gap too and can recover the true run states."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from wanllm_server.live import LiveHub
from wanllm_server.store.base import MetricBatch, RunUpdate

from tests.server.server_helpers import body, create_run, post_points
from tests.server.ws_helpers import commit_and_publish, next_message
from tests.services import RedisServer


@pytest.fixture
def backend() -> str:
    return "timescaledb"


@pytest.fixture
def wanllm_config(own_redis: RedisServer) -> dict[str, Any]:
    return {"redis_url": own_redis.url}


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def one_point(run_id: str, step: int) -> MetricBatch:
    return MetricBatch(
        batch_id=uuid.uuid4().hex,
        run_ids=[uuid.UUID(run_id)],
        names=["loss"],
        run_idx=np.zeros(1, np.int32),
        name_idx=np.zeros(1, np.int32),
        steps=np.array([step], np.int64),
        times=np.array([1_700_000_000_000_000], np.int64),
        values=np.array([float(step)]),
    )


async def test_redis_outage_mid_stream(api, jp_ws_fetch, wanllm_app, own_redis):
    live = wanllm_app.live
    other_server = LiveHub(own_redis.url, log=logging.getLogger("other-server"))
    await other_server.start()
    try:
        run = await create_run(api)
        rid = run["id"]
        ws = await jp_ws_fetch("wanllm", "ws", "metrics", rid)
        assert (await next_message(ws))["type"] == "run"
        await wait_until(lambda: live.status()["redis_ok"] and other_server.status()["redis_ok"])
        await asyncio.sleep(0.3)  # the run channel subscription reaches Redis
        await commit_and_publish(other_server, wanllm_app, one_point(rid, 0))
        assert (await next_message(ws))["points"]["loss"]["steps"] == [0]  # via Redis

        await post_points(api, rid, {"loss": [(1, 1.0)]})
        assert (await next_message(ws))["points"]["loss"]["steps"] == [1]
        assert body(await api("GET", f"runs/{rid}/metrics/loss/latest"))["step"] == 1  # cached

        own_redis.stop()
        await post_points(api, rid, {"loss": [(2, 2.0)]})  # ingest keeps working
        assert (await next_message(ws))["points"]["loss"]["steps"] == [2]  # in-process
        assert live.status()["redis_ok"] is False and live.status()["subscribers"] == 1
        latest = await api("GET", f"runs/{rid}/metrics/loss/latest")
        assert latest.code == 200 and body(latest)["step"] == 2  # a query, never stale
        history = body(await api("GET", f"runs/{rid}/metrics/loss"))
        assert history["steps"] == [0, 1, 2]

        own_redis.start()
        await wait_until(lambda: live.status()["redis_ok"] and other_server.status()["redis_ok"])
        gap = await next_message(ws)
        assert gap["type"] == "gap" and gap["run_id"] == rid
        await asyncio.sleep(0.3)  # resubscribed
        await commit_and_publish(other_server, wanllm_app, one_point(rid, 3))
        assert (await next_message(ws))["points"]["loss"]["steps"] == [3]  # cross-server again
        await post_points(api, rid, {"loss": [(4, 4.0)]})
        assert (await next_message(ws))["points"]["loss"]["steps"] == [4]
        assert body(await api("GET", f"runs/{rid}/metrics/loss/latest"))["step"] == 4
        ws.close()
    finally:
        await other_server.stop()


async def test_runs_socket_gets_a_gap_after_an_outage_and_recovers_states(
    api, jp_ws_fetch, wanllm_app, own_redis
):
    """A run finished through another server while Redis was down: the sidebar's
    socket misses the change, gets a gap once Redis is back, and a re-fetch
    shows the true state (it would show "running" forever otherwise)."""
    live = wanllm_app.live
    other_server = LiveHub(own_redis.url, log=logging.getLogger("other-server"))
    await other_server.start()
    try:
        rid = (await create_run(api))["id"]
        sidebar = await jp_ws_fetch("wanllm", "ws", "runs")
        await wait_until(lambda: live.status()["redis_ok"] and other_server.status()["redis_ok"])
        own_redis.stop()
        await wait_until(lambda: not live.status()["redis_ok"])
        store = await wanllm_app.store()
        finished = await store.update_run(uuid.UUID(rid), RunUpdate(state="finished"))
        other_server.publish_run(finished)  # lost: Redis is down
        own_redis.start()
        await wait_until(lambda: live.status()["redis_ok"])
        msg = await next_message(sidebar)
        while msg["type"] == "run":  # the run's own creation, from this server
            assert msg["run"]["state"] == "running"
            msg = await next_message(sidebar)
        assert msg["type"] == "gap" and msg["run_id"] is None, msg
        runs = body(await api("GET", "runs"))["runs"]
        assert [r["state"] for r in runs if r["id"] == rid] == ["finished"]
        sidebar.close()
    finally:
        await other_server.stop()
