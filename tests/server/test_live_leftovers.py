"""Issue 9 live leftovers on a real Jupyter server, SQLite and TimescaleDB +
Redis: a run change reveals committed batches that were never published; a
PATCH heartbeat reviving a crashed run is published; subscribe messages reject
the metric names the REST API rejects, with the same reason."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.live.live_helpers import make_batch
from tests.server.server_helpers import body, create_run, post_points
from tests.server.ws_helpers import expect_quiet, next_message, sync


@pytest.fixture
def wanllm_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    if backend == "timescaledb":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def test_finish_after_an_unpublished_batch_is_a_gap(api, jp_ws_fetch, wanllm_app):
    rid = (await create_run(api))["id"]
    ws = await jp_ws_fetch("wanllm", "ws", "metrics", rid)
    assert (await next_message(ws))["type"] == "run"
    await post_points(api, rid, {"loss": [(0, 1.0)]})
    assert (await next_message(ws))["seq"] == [1, 1]
    # committed by a server that died before publishing it (nothing is published)
    lost = make_batch(uuid.UUID(rid), ["loss"], [0], [1], [0.5])
    assert (await (await wanllm_app.store()).write_metrics(lost)).live_seq == {rid: 2}
    await expect_quiet(ws)
    assert (await api("PATCH", f"runs/{rid}", body={"state": "finished"})).code == 200
    assert (await next_message(ws))["run"]["state"] == "finished"
    gap = await next_message(ws)
    assert (gap["type"], gap["seq"]) == ("gap", 2)
    ws.close()


async def test_a_patch_heartbeat_reviving_a_crashed_run_is_published(api, jp_ws_fetch, wanllm_app):
    rid = (await create_run(api))["id"]
    sidebar = await jp_ws_fetch("wanllm", "ws", "runs")
    await wanllm_app.detect_crashes(now=time.time() + wanllm_app.heartbeat_timeout + 1)
    crashed = await next_message(sidebar)
    assert (crashed["run"]["id"], crashed["run"]["state"]) == (rid, "crashed")
    resp = await api("PATCH", f"runs/{rid}", body={"heartbeat": True})
    assert body(resp)["state"] == "running"
    revived = await next_message(sidebar)
    assert (revived["run"]["id"], revived["run"]["state"]) == (rid, "running")
    assert (await api("PATCH", f"runs/{rid}", body={"heartbeat": True})).code == 200
    await expect_quiet(sidebar)  # a heartbeat of a running run is no news
    sidebar.close()


@pytest.mark.parametrize("name", ["bad\x00name", "x" * 256], ids=["nul", "too-long"])
async def test_subscribe_names_are_checked_like_rest(api, jp_ws_fetch, name, backend):
    if backend == "timescaledb":
        pytest.skip("the check runs before any backend is involved (the SQLite case covers it)")
    rid = (await create_run(api))["id"]
    rest = await api("POST", "history", body={"run_ids": [rid], "names": ["ok", name]})
    assert rest.code == 422
    reason = body(rest)["errors"][0]["reason"]
    ws = await jp_ws_fetch("wanllm", "ws", "metrics", rid)
    assert (await next_message(ws))["type"] == "run"
    await sync(
        ws,
        {"type": "subscribe", "metrics": ["ok", name]},
        expect=f"metrics[1] must be a metric name: {reason}",
    )
    await sync(ws, {"type": "subscribe", "metrics": ["loss"]})  # the selection is unchanged
    await post_points(api, rid, {"loss": [(0, 1.0)], "ok": [(0, 2.0)]})
    assert set((await next_message(ws))["points"]) == {"loss"}
    ws.close()
