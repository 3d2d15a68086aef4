"""LiveHub across a real Redis: two hubs (two servers) share it; Redis faults
degrade fan-out to in-process and it recovers. Also the Redis payload codec."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
import orjson
import pytest
from wanllm_server.live import LiveHub
from wanllm_server.live_subscriber import Subscriber
from wanllm_server.live_wire import PayloadError, decode_chunk, encode_chunk, split_batch

from tests.live.live_helpers import OTHER, RUN, make_batch, make_run, next_message, publish


async def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def subscribed(hub: LiveHub, run_id: str) -> Subscriber:
    """Subscribe and give the Redis link time to SUBSCRIBE the run channel."""
    sub = hub.subscribe(run_id, None)
    await asyncio.sleep(0.3)
    return sub


def two_hubs(url: str, scenario: Callable[[LiveHub, LiveHub], Awaitable[None]]) -> None:
    async def main() -> None:
        a = LiveHub(url, log=logging.getLogger("hub-a"))
        b = LiveHub(url, log=logging.getLogger("hub-b"))
        await a.start()
        await b.start()
        try:
            await wait_for(lambda: a.status()["redis_ok"] and b.status()["redis_ok"])
            await scenario(a, b)
        finally:
            await a.stop()
            await b.stop()

    asyncio.run(main())


def test_points_cross_servers_once(own_redis) -> None:
    async def scenario(a: LiveHub, b: LiveHub) -> None:
        on_a, on_b = await subscribed(a, str(RUN)), await subscribed(b, str(RUN))
        publish(a, make_batch(RUN, ["loss"], [0, 0], [1, 2], [0.5, float("inf")]))
        for sub in (on_a, on_b):
            msg = await next_message(sub)
            assert msg["points"]["loss"]["steps"] == [1, 2]
            assert msg["points"]["loss"]["values"] == [0.5, "Infinity"]
        await asyncio.sleep(0.5)  # A's echo from Redis must not be delivered again
        assert on_a.pending() == 0 and on_b.pending() == 0
        assert a.status()["mode"] == "redis" and a.status()["redis_ok"] is True
        assert a.status()["subscribers"] == 1

    two_hubs(own_redis.url, scenario)


def test_run_changes_cross_servers(own_redis) -> None:
    async def scenario(a: LiveHub, b: LiveHub) -> None:
        sidebar_b = b.subscribe(None, None)
        await asyncio.sleep(0.1)
        a.publish_run(make_run("crashed"))
        msg = await next_message(sidebar_b)
        assert msg["type"] == "run" and msg["run"]["state"] == "crashed"
        a.publish_run_deleted(str(RUN))
        assert await next_message(sidebar_b) == {"type": "run_deleted", "run_id": str(RUN)}

    two_hubs(own_redis.url, scenario)


def test_redis_outage_degrades_to_in_process_and_recovers(own_redis) -> None:
    async def scenario(a: LiveHub, b: LiveHub) -> None:
        on_a, on_b = await subscribed(a, str(RUN)), await subscribed(b, str(RUN))
        own_redis.stop()
        await wait_for(lambda: not a.status()["redis_ok"] and not b.status()["redis_ok"])
        publish(a, make_batch(RUN, ["loss"], [0], [1], [1.0]))
        assert (await next_message(on_a))["points"]["loss"]["steps"] == [1]  # in-process
        own_redis.start()
        await wait_for(lambda: a.status()["redis_ok"] and b.status()["redis_ok"])
        gap = await next_message(on_b)
        assert gap["type"] == "gap" and gap["run_id"] == str(RUN)  # B missed step 1
        await asyncio.sleep(0.3)  # B resubscribes its run channel
        publish(a, make_batch(RUN, ["loss"], [0], [2], [2.0]))
        msg = await next_message(on_b)
        while msg["type"] == "gap":  # A's notice that it dropped step 1 may come too
            msg = await next_message(on_b)
        assert msg["points"]["loss"]["steps"] == [2]
        nxt = await next_message(on_a)
        if nxt["type"] == "gap":  # A's own reconnect notice
            nxt = await next_message(on_a)
        assert nxt["points"]["loss"]["steps"] == [2]

    two_hubs(own_redis.url, scenario)


def test_hub_starts_while_redis_is_down(own_redis, hub_log) -> None:
    async def main() -> None:
        own_redis.stop()
        hub = LiveHub(own_redis.url, log=hub_log)
        await hub.start()
        try:
            sub = hub.subscribe(str(RUN), None)
            publish(hub, make_batch(RUN, ["loss"], [0], [5], [1.0]))
            assert (await next_message(sub))["points"]["loss"]["steps"] == [5]
            assert hub.status()["redis_ok"] is False
            own_redis.start()
            await wait_for(lambda: hub.status()["redis_ok"])
        finally:
            await hub.stop()

    asyncio.run(main())


def test_payload_round_trip_keeps_nonfinite_and_order() -> None:
    batch = make_batch(
        RUN,
        ["a", "b/c"],
        [1, 0, 1],
        [3, 1, 2],
        [float("nan"), -0.0, float("-inf")],
        run_idx=[0, 1, 0],
        runs=[RUN, OTHER],
    )
    chunks = split_batch(batch, 123.5, {str(RUN): 7, str(OTHER): 3})
    assert [(c.run_id, c.seq) for c in chunks] == [(str(RUN), 7), (str(OTHER), 3)]
    decoded = decode_chunk(encode_chunk(chunks[0], "origin-1"))
    assert decoded.run_id == str(RUN) and decoded.names == ["a", "b/c"]
    assert decoded.committed == 123.5 and decoded.seq == 7 and not decoded.lost
    np.testing.assert_array_equal(decoded.steps, [3, 2])
    np.testing.assert_array_equal(decoded.name_idx, [1, 1])
    np.testing.assert_array_equal(decoded.values, [float("nan"), float("-inf")])


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"no header", "no JSON header"),
        (b"[1]\n", "no JSON header"),
        (b'{"o": "x"}\n', "bad live payload header"),
        (
            orjson.dumps({"o": "x", "r": "r", "s": 1, "n": ["a"], "c": 2, "t": 0})
            + b"\n"
            + b"\0" * 28,
            "has 28 bytes",
        ),
        (
            orjson.dumps({"o": "x", "r": "r", "s": 1, "n": ["a"], "c": 1, "t": 0})
            + b"\n"
            + np.int32(3).tobytes()
            + b"\0" * 24,
            "name index out of range",
        ),
    ],
)
def test_bad_payloads_are_rejected_precisely(payload: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode_chunk(payload)


def test_publish_says_when_the_batch_left_the_server(own_redis, hub_log) -> None:
    """The future of publish_points is done once Redis took the batch (the
    ingest path answers only then), or at once when Redis is down."""

    async def main() -> None:
        hub = LiveHub(own_redis.url, log=hub_log)
        await hub.start()
        try:
            await wait_for(lambda: hub.status()["redis_ok"])
            batch = make_batch(RUN, ["loss"], [0], [1], [1.0])
            sent = hub.publish_points(batch, {str(RUN): 1})
            assert not sent.done()  # not before the PUBLISH
            await asyncio.wait_for(sent, 2)
            own_redis.stop()
            await wait_for(lambda: not hub.status()["redis_ok"])
            started = time.monotonic()
            await hub.until_sent(hub.publish_points(batch, {str(RUN): 2}))
            assert time.monotonic() - started < 0.5  # dropped at once, not waited for
        finally:
            await hub.stop()

    asyncio.run(main())


def test_publish_without_redis_is_sent_at_once(hub_log) -> None:
    async def main() -> None:
        hub = LiveHub(None, log=hub_log)
        sent = hub.publish_points(make_batch(RUN, ["loss"], [0], [1], [1.0]), {str(RUN): 1})
        assert sent.done()

    asyncio.run(main())
