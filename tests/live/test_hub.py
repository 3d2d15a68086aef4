"""LiveHub in-process behaviour: delivery, coalescing, filtering, slow
subscribers, run changes. Real hub, real asyncio; no Jupyter, no Redis."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
import pytest
from wanllm_server.live import LiveHub
from wanllm_server.live_subscriber import SubscriberClosed

from tests.live.live_helpers import OTHER, RUN, make_batch, make_run, next_message, publish


def run_hub(scenario: Callable[[LiveHub], Awaitable[None]], tick: float = 0.1) -> None:
    async def main() -> None:
        hub = LiveHub(None, log=logging.getLogger("test"), tick=tick)
        await hub.start()
        try:
            await scenario(hub)
        finally:
            await hub.stop()

    asyncio.run(main())


def test_points_reach_subscriber_with_wire_forms() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        seqs = publish(
            hub,
            make_batch(
                RUN,
                ["train/loss", "acc"],
                [0, 1, 0, 0],
                [1, 1, 2, 3],
                [0.5, 0.9, float("nan"), float("-inf")],
            ),
        )
        msg = await next_message(sub)
        seq = seqs[str(RUN)]
        assert msg == {
            "type": "metrics",
            "run_id": str(RUN),
            "seq": [seq, seq],
            "points": {
                "train/loss": {
                    "steps": [1, 2, 3],
                    "times": [1_700_000_000.000001, 1_700_000_000.000002, 1_700_000_000.000003],
                    "values": [0.5, "NaN", "-Infinity"],
                },
                "acc": {"steps": [1], "times": [1_700_000_000.000001], "values": [0.9]},
            },
        }
        assert hub.status() == {
            "mode": "in-process",
            "redis_ok": False,
            "subscribers": 1,
            "buffered_bytes": 0,
            "evictions": 0,
        }

    run_hub(scenario)


def test_many_batches_in_a_tick_make_one_message() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        for step in range(50):  # all published before the hub runs: one tick
            publish(hub, make_batch(RUN, ["loss", "lr"], [0, 1], [step, step], [float(step), 0.1]))
        msg = await next_message(sub)
        assert msg["points"]["loss"]["steps"] == list(range(50))
        assert msg["points"]["loss"]["values"] == [float(s) for s in range(50)]
        assert len(msg["points"]["lr"]["steps"]) == 50
        await asyncio.sleep(0.3)
        assert sub.pending() == 0

    run_hub(scenario)


def test_messages_are_at_least_a_tick_apart() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        loop = asyncio.get_running_loop()
        arrivals: list[float] = []
        steps: list[int] = []

        async def reader() -> None:
            while len(steps) < 40:
                msg = await next_message(sub)
                arrivals.append(loop.time())
                steps.extend(msg["points"]["loss"]["steps"])

        task = asyncio.create_task(reader())
        for step in range(40):
            publish(hub, make_batch(RUN, ["loss"], [0], [step], [1.0]))
            await asyncio.sleep(0.01)
        await asyncio.wait_for(task, 5)
        assert steps == list(range(40))
        assert len(arrivals) < 40
        gaps = np.diff(arrivals)
        assert gaps.min() >= hub.tick * 0.9, gaps

    run_hub(scenario, tick=0.1)


def test_name_filter_and_other_runs() -> None:
    async def scenario(hub: LiveHub) -> None:
        only_acc = hub.subscribe(str(RUN), {"acc"})
        everything = hub.subscribe(str(RUN), None)
        other_run = hub.subscribe(str(OTHER), None)
        publish(hub, make_batch(RUN, ["loss", "acc"], [0, 1], [1, 1], [0.5, 0.9]))
        assert set((await next_message(only_acc))["points"]) == {"acc"}
        assert set((await next_message(everything))["points"]) == {"loss", "acc"}
        publish(hub, make_batch(RUN, ["loss"], [0], [2], [0.4]))
        assert set((await next_message(everything))["points"]) == {"loss"}
        await asyncio.sleep(0.3)
        assert only_acc.pending() == 0  # nothing it selected: no empty message
        assert other_run.pending() == 0

    run_hub(scenario)


def test_batch_of_two_runs_is_split() -> None:
    async def scenario(hub: LiveHub) -> None:
        a, b = hub.subscribe(str(RUN), None), hub.subscribe(str(OTHER), None)
        publish(
            hub,
            make_batch(
                RUN,
                ["loss"],
                [0, 0, 0],
                [1, 2, 3],
                [1.0, 2.0, 3.0],
                run_idx=[0, 1, 0],
                runs=[RUN, OTHER],
            ),
        )
        assert (await next_message(a))["points"]["loss"]["steps"] == [1, 3]
        msg_b = await next_message(b)
        assert msg_b["run_id"] == str(OTHER)
        assert msg_b["points"]["loss"]["values"] == [2.0]

    run_hub(scenario)


def test_slow_subscriber_gets_gap_and_others_are_unaffected() -> None:
    async def scenario(hub: LiveHub) -> None:
        slow = hub.subscribe(str(RUN), None)  # never read until the end
        fast = hub.subscribe(str(RUN), None)
        received: list[int] = []

        async def read_fast() -> None:
            while len(received) < 100:
                received.extend((await next_message(fast))["points"]["loss"]["steps"])

        task = asyncio.create_task(read_fast())
        for step in range(100):  # one tick each: more messages than the slow buffer holds
            publish(hub, make_batch(RUN, ["loss"], [0], [step], [1.0]))
            await asyncio.sleep(hub.tick * 1.05)
        await asyncio.wait_for(task, 5)
        assert received == list(range(100))
        assert fast.gaps == 0
        assert slow.gaps >= 1
        first = await next_message(slow)
        assert first["type"] == "gap" and first["run_id"] == str(RUN)
        assert "too slow" in first["reason"]
        backlog = [orjson.loads(await slow.get()) for _ in range(slow.pending())]
        assert all(m["type"] == "metrics" for m in backlog)
        assert backlog[-1]["points"]["loss"]["steps"] == [99]  # newest kept, oldest dropped

    run_hub(scenario, tick=0.02)


def test_run_changes_reach_run_and_sidebar_subscribers() -> None:
    async def scenario(hub: LiveHub) -> None:
        run_sub, sidebar, other = (
            hub.subscribe(str(RUN), None),
            hub.subscribe(None, None),
            hub.subscribe(str(OTHER), None),
        )
        publish(hub, make_batch(RUN, ["loss"], [0], [7], [1.0]))
        hub.publish_run(make_run("finished"))
        first, second = await next_message(run_sub), await next_message(run_sub)
        assert first["type"] == "metrics"  # the last points come before the state change
        assert second["type"] == "run"
        assert second["run"]["state"] == "finished"
        assert second["run"]["id"] == str(RUN)
        assert second["run"]["created_at"] == "2023-11-14T22:13:20.000000Z"
        assert (await next_message(sidebar)) == second
        await asyncio.sleep(0.3)
        assert other.pending() == 0
        assert sidebar.pending() == 0  # no metrics on the runs feed

    run_hub(scenario)


def test_unsubscribe_closes_and_stops_delivery() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        waiter = asyncio.create_task(sub.get())
        await asyncio.sleep(0)
        hub.unsubscribe(sub)
        with pytest.raises(SubscriberClosed):
            await asyncio.wait_for(waiter, 1)
        publish(hub, make_batch(RUN, ["loss"], [0], [1], [1.0]))
        await asyncio.sleep(0.3)
        assert sub.pending() == 0
        assert hub.status()["subscribers"] == 0

    run_hub(scenario)


def test_stop_closes_subscribers() -> None:
    async def main() -> None:
        hub = LiveHub(None, log=logging.getLogger("test"))
        await hub.start()
        sub = hub.subscribe(str(RUN), None)
        await hub.stop()
        with pytest.raises(SubscriberClosed):
            await asyncio.wait_for(sub.get(), 1)

    asyncio.run(main())
