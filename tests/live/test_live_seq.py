"""Live sequence numbers through a real LiveHub (no Jupyter, no Redis): every
message says which batches it accounts for, replays are dropped, holes and
unknown replays show, and the kernel's follower (core/live_seq.py) reads them."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from wanllm_server.live import LiveHub
from wanllm_server.live_subscriber import Subscriber

from tests.live.live_helpers import RUN, make_batch, next_message
from wanllm_jupyter.core.live_seq import LiveSequence

TICK = 0.05


def run_hub(scenario: Callable[[LiveHub], Awaitable[None]]) -> None:
    async def main() -> None:
        hub = LiveHub(None, log=logging.getLogger("test"), tick=TICK)
        await hub.start()
        try:
            await scenario(hub)
        finally:
            await hub.stop()

    asyncio.run(main())


def points(hub: LiveHub, seq: int, name: str = "loss", *, lost: bool = False) -> None:
    """Publish a one-point batch (step = seq) that took live number ``seq``."""
    batch = make_batch(RUN, [name], [0], [seq], [float(seq)])
    hub.publish_points(batch, {str(RUN): seq}, lost=lost)


async def quiet(sub: Subscriber, seconds: float = 4 * TICK) -> None:
    await asyncio.sleep(seconds)
    assert sub.pending() == 0, [sub.pop() for _ in range(sub.pending())]


def test_messages_carry_their_numbers_and_replays_are_dropped() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        points(hub, 1)
        msg = await next_message(sub)
        assert msg["seq"] == [1, 1] and msg["points"]["loss"]["steps"] == [1]
        points(hub, 3)
        points(hub, 2)  # committed first, published late: put back in order
        msg = await next_message(sub)
        assert msg["seq"] == [2, 3] and msg["points"]["loss"]["steps"] == [2, 3]
        points(hub, 2)  # a client's retry of batch 2, published again
        await quiet(sub)

    run_hub(scenario)


def test_a_hole_shows_as_a_jump_and_the_follower_reports_it() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub, follower = hub.subscribe(str(RUN), None), LiveSequence()
        points(hub, 1)
        assert follower.metrics(await next_message(sub)) == (True, False)
        points(hub, 3)  # 2 died with its server
        msg = await next_message(sub)
        assert msg["seq"] == [3, 3]
        assert follower.metrics(msg) == (True, True)  # re-query
        points(hub, 2)  # the retry of 2, after 3 went out: the re-query had it
        await quiet(sub)

    run_hub(scenario)


def test_a_filtered_subscriber_sees_no_false_jump_but_real_holes() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub, follower = hub.subscribe(str(RUN), None), LiveSequence()
        sub.select(["acc"])
        points(hub, 1, "acc")
        assert (await next_message(sub))["seq"] == [1, 1]
        points(hub, 2, "loss")  # not wanted: no message...
        await quiet(sub)
        points(hub, 3, "acc")  # ...and the next one continues from 1
        msg = await next_message(sub)
        assert msg["seq"] == [2, 3] and follower.metrics({"seq": [1, 1]}) == (True, False)
        assert follower.metrics(msg) == (True, False)
        points(hub, 5, "loss")  # 4 is missing, and 5 is not wanted
        points(hub, 6, "acc")
        msg = await next_message(sub)
        assert msg["seq"] == [5, 6] and follower.metrics(msg) == (True, True)

    run_hub(scenario)


def test_a_replay_without_known_points_is_a_gap_with_its_number() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub, follower = hub.subscribe(str(RUN), None), LiveSequence()
        points(hub, 1)
        follower.metrics(await next_message(sub))
        points(hub, 2, lost=True)  # auto steps: only its number is known
        gap = await next_message(sub)
        assert gap["type"] == "gap" and gap["seq"] == 2
        follower.gap(gap)
        points(hub, 3)
        assert follower.metrics(await next_message(sub)) == (True, False)
        points(hub, 3, lost=True)  # already delivered: nothing
        await quiet(sub)

    run_hub(scenario)


def test_an_overflow_gap_accounts_for_what_it_dropped() -> None:
    async def scenario(hub: LiveHub) -> None:
        sub, follower = hub.subscribe(str(RUN), None), LiveSequence()
        sub._max_messages = 2  # a slow reader: its third message overflows
        for seq in (1, 2, 3):
            points(hub, seq)
            await asyncio.sleep(2 * TICK)
        first, second = await next_message(sub), await next_message(sub)
        assert first["type"] == "gap" and first["seq"] == 2
        follower.gap(first)
        assert second["seq"] == [3, 3] and follower.metrics(second) == (True, False)

    run_hub(scenario)


def test_each_run_of_a_batch_gets_its_own_number() -> None:
    other = uuid.UUID("00000000-0000-4000-8000-000000000009")

    async def scenario(hub: LiveHub) -> None:
        a, b = hub.subscribe(str(RUN), None), hub.subscribe(str(other), None)
        runs = [RUN, other]
        batch = make_batch(RUN, ["x"], [0, 0], [1, 2], [1.0, 2.0], run_idx=[0, 1], runs=runs)
        hub.publish_points(batch, {str(RUN): 7, str(other): 1})
        assert (await next_message(a))["seq"] == [7, 7]
        assert (await next_message(b))["seq"] == [1, 1]

    run_hub(scenario)


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        ({"seq": [4, 6]}, (True, False)),  # contiguous with 3
        ({"seq": [5, 6]}, (True, True)),  # 4 missed
        ({"seq": [2, 3]}, (False, False)),  # a replay
        ({"seq": None}, (True, False)),  # a server without numbers
        ({"seq": [1.5, 4]}, (True, False)),
    ],
)
def test_follower_rules(msg: dict[str, Any], expected: tuple[bool, bool]) -> None:
    follower = LiveSequence()
    follower.metrics({"seq": [1, 3]})
    assert follower.metrics(msg) == expected


def test_a_deleted_run_forgets_its_numbers() -> None:
    """A run re-created under the same id numbers its batches from 1 again."""

    async def scenario(hub: LiveHub) -> None:
        sub = hub.subscribe(str(RUN), None)
        points(hub, 1)
        points(hub, 2)
        assert (await next_message(sub))["seq"] == [1, 2]
        hub.publish_run_deleted(str(RUN))
        assert (await next_message(sub))["type"] == "run_deleted"
        points(hub, 1)
        assert (await next_message(sub))["seq"] == [1, 1]

    run_hub(scenario)
