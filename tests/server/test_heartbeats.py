"""Signs of life on both backends: batches count as heartbeats (throttled), the
timeout cannot undercut the clients' interval, a crashed run that shows life is
running again, and end times are the real ends."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import pytest
from traitlets import TraitError
from wanllm_server.app import WanllmApp

from tests.server.server_helpers import body, create_run, post_points
from wanllm_jupyter.core.heartbeat import HEARTBEAT_INTERVAL, MIN_HEARTBEAT_TIMEOUT


def at(iso: str | None) -> float:
    assert iso is not None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def test_timeout_cannot_be_shorter_than_twice_the_client_interval() -> None:
    assert MIN_HEARTBEAT_TIMEOUT == 2 * HEARTBEAT_INTERVAL
    assert WanllmApp(heartbeat_timeout=MIN_HEARTBEAT_TIMEOUT).heartbeat_timeout == 10
    message = (
        r"heartbeat_timeout must be >= 10 s \(twice the clients' heartbeat interval of 5 s\), "
        r"got 9.9"
    )
    with pytest.raises(TraitError, match=message):
        WanllmApp(heartbeat_timeout=9.9)


async def test_batches_are_heartbeats_recorded_once_per_interval(api):
    rid = (await create_run(api))["id"]
    created = body(await api("GET", f"runs/{rid}"))
    await asyncio.sleep(0.05)
    await post_points(api, rid, {"m": [(0, 1.0)]})
    first = body(await api("GET", f"runs/{rid}"))
    assert at(first["heartbeat_at"]) > at(created["heartbeat_at"])
    assert first["updated_at"] == created["updated_at"]  # a sign of life is no update
    await post_points(api, rid, {"m": [(1, 1.0)]})  # within the interval: no run write
    assert body(await api("GET", f"runs/{rid}"))["heartbeat_at"] == first["heartbeat_at"]


async def crash(wanllm_app, rid: str, api) -> dict:
    """Run the crash sweep as if the run had been silent past the timeout."""
    await wanllm_app.detect_crashes(now=time.time() + wanllm_app.heartbeat_timeout + 1)
    run = body(await api("GET", f"runs/{rid}"))
    assert run["state"] == "crashed"
    return run


@pytest.mark.parametrize("sign_of_life", ["heartbeat", "batch", "system batch"])
async def test_a_crashed_run_showing_life_is_running_again(
    api, wanllm_app, monkeypatch, sign_of_life
):
    rid = (await create_run(api))["id"]
    changes = []
    monkeypatch.setattr(wanllm_app.live, "publish_run", changes.append)
    crashed = await crash(wanllm_app, rid, api)
    assert crashed["finished_at"] == crashed["heartbeat_at"]  # ended at its last sign of life
    if sign_of_life == "heartbeat":
        assert (await api("POST", f"runs/{rid}/heartbeat")).code == 204
    elif sign_of_life == "batch":
        await post_points(api, rid, {"m": [(0, 1.0)]})
    else:
        system = {"metrics": [{"run_id": rid, "metric_type": "cpu", "value": 0.5}]}
        assert (await api("POST", "metrics/system/batch", body=system)).code == 200
    run = body(await api("GET", f"runs/{rid}"))
    assert (run["state"], run["finished_at"]) == ("running", None)
    assert [(str(r.id), r.state) for r in changes] == [(rid, "crashed"), (rid, "running")]
    assert (await api("POST", f"runs/{rid}/heartbeat")).code == 204  # no change: not published
    assert len(changes) == 2


async def test_a_crashed_run_that_finishes_ends_when_it_finishes(api, wanllm_app):
    rid = (await create_run(api))["id"]
    crashed = await crash(wanllm_app, rid, api)
    await asyncio.sleep(0.05)
    before = time.time()
    resp = await api("PATCH", f"runs/{rid}", body={"state": "finished", "exit_code": 0})
    finished = body(resp)
    assert finished["state"] == "finished"
    assert at(finished["finished_at"]) >= before - 0.001 > at(crashed["finished_at"])
    again = body(await api("PATCH", f"runs/{rid}", body={"state": "finished"}))  # a replay
    assert again["finished_at"] == finished["finished_at"]
