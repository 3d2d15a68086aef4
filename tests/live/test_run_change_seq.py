"""A run change is followed by the run's stored live sequence number: a batch committed
but lost with its publisher (the server died before its PUBLISH) shows as a
gap on another server when the run next changes, even if it was the run's
last batch. Two hubs on a real Redis, one real SQLite store."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from wanllm_server.live import LiveHub
from wanllm_server.store.base import RunCreate, RunUpdate, Store
from wanllm_server.store.sqlite import SQLiteStore

from tests.live.live_helpers import make_batch, next_message
from tests.live.test_hub_redis import subscribed, wait_for
from wanllm_jupyter.core.live_seq import LiveSequence


def test_a_run_change_reveals_batches_lost_with_their_publisher(own_redis, tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "wanllm.db")
        await store.open()

        async def opened() -> Store:
            return store

        a = LiveHub(own_redis.url, log=logging.getLogger("hub-a"), store=opened)
        b = LiveHub(own_redis.url, log=logging.getLogger("hub-b"), store=opened)
        await a.start()
        await b.start()
        try:
            await wait_for(lambda: a.status()["redis_ok"] and b.status()["redis_ok"])
            run, _ = await store.create_run(RunCreate(project="p", name="r"))
            rid = str(run.id)
            on_b = await subscribed(b, rid)
            follower = LiveSequence()
            first = make_batch(run.id, ["loss"], [0], [1], [0.5])
            a.publish_points(first, (await store.write_metrics(first)).live_seq)
            msg = await next_message(on_b)
            assert msg["seq"] == [1, 1] and follower.metrics(msg) == (True, False)
            # a change with nothing missed: no gap
            a.publish_run(await store.update_run(run.id, RunUpdate(tags=["x"])))
            assert (await next_message(on_b))["type"] == "run"
            # the last batch commits, then its server dies before publishing it
            last = make_batch(run.id, ["loss"], [0], [2], [0.25])
            assert (await store.write_metrics(last)).live_seq == {rid: 2}
            a.publish_run(await store.update_run(run.id, RunUpdate(state="finished")))
            assert (await next_message(on_b))["run"]["state"] == "finished"
            gap = await next_message(on_b)
            assert (gap["type"], gap["run_id"], gap["seq"]) == ("gap", rid, 2)
            follower.gap(gap)
            assert follower.last == 2
            # accounted for: the next change brings no second gap
            b.publish_run(await store.update_run(run.id, RunUpdate(name="renamed")))
            assert (await next_message(on_b))["run"]["name"] == "renamed"
            await asyncio.sleep(0.3)
            assert on_b.pending() == 0
        finally:
            await a.stop()
            await b.stop()
            await store.close()

    asyncio.run(main())
