"""Bounded live memory through a real LiveHub: one byte budget for all
subscribers (shared messages counted once; the slowest evicted past it), and
bounded name sets."""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest
from wanllm_server.live import LiveHub
from wanllm_server.live_subscriber import MAX_SUBSCRIBED_NAMES, Budget, Subscriber

from tests.live.live_helpers import RUN, make_batch, next_message, publish

TICK = 0.02


def test_budget_counts_a_shared_object_once() -> None:
    budget = Budget(100)
    message = "x" * 60
    budget.hold(message)
    budget.hold(message)  # a second subscriber holding the same message
    assert budget.used == 60 and not budget.over
    budget.hold("y" * 50)
    assert budget.used == 110 and budget.over
    budget.release(message)
    assert budget.used == 110  # still held once
    budget.release(message)
    assert budget.used == 50


def test_subscriber_releases_what_it_held() -> None:
    async def main() -> None:
        budget = Budget(1 << 20)
        sub = Subscriber(str(RUN), None, budget=budget)
        sub.offer("a" * 10)
        sub.offer("b" * 20)
        sub.writing(b"f" * 5)
        assert budget.used == 35 and sub.buffered == 35
        sub.pop()
        sub.writing(None)
        assert budget.used == 20
        sub.close()
        assert budget.used == 0

    asyncio.run(main())


def test_slowest_subscriber_is_evicted_past_the_budget_and_others_keep_flowing() -> None:
    async def main() -> None:
        hub = LiveHub(None, log=logging.getLogger("test"), tick=TICK, budget_bytes=64 * 1024)
        await hub.start()
        try:
            fast, slow = hub.subscribe(str(RUN), None), hub.subscribe(str(RUN), None)
            received: list[int] = []

            async def read() -> None:
                while True:
                    msg = await next_message(fast)
                    received.extend(msg["points"]["loss"]["steps"])

            reader = asyncio.create_task(read())
            steps = np.arange(1000)
            for i in range(20):  # ~20 KB a message; the slow one never reads
                chunk = steps + i * 1000
                publish(hub, make_batch(RUN, ["loss"], [0] * 1000, chunk.tolist(), [0.5] * 1000))
                await asyncio.sleep(2 * TICK)
            await asyncio.sleep(2 * TICK)
            reader.cancel()
            assert slow.evicted is not None and "budget" in slow.evicted
            assert slow.closed and hub.status()["evictions"] == 1
            gap = await next_message(slow)  # all it keeps: the gap notice
            assert gap["type"] == "gap" and slow.pending() == 0
            assert received == list(range(20_000))  # the fast one missed nothing
            assert hub.status()["subscribers"] == 1
            assert hub.budget.used <= hub.budget.limit
        finally:
            await hub.stop()

    asyncio.run(main())


def test_name_sets_are_bounded() -> None:
    async def main() -> None:
        sub = Subscriber(str(RUN), None)
        names = [f"m{i}" for i in range(MAX_SUBSCRIBED_NAMES)]
        sub.select(names)
        with pytest.raises(ValueError, match=f"at most {MAX_SUBSCRIBED_NAMES} metrics"):
            sub.select(["one-too-many"])
        assert sub.names == set(names)  # unchanged
        sub.select([])  # every metric
        sub.deselect(names)
        with pytest.raises(ValueError, match="at most"):
            sub.deselect(["one-too-many"])
        assert sub.names is None and len(sub.excluded) == MAX_SUBSCRIBED_NAMES

    asyncio.run(main())
