"""The query cache on both backends (in-memory, real Redis): generations make
a read after a write fresh, race-free; a Redis outage is a miss, never an error."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
from wanllm_server import cache as cache_mod
from wanllm_server.cache import (
    LATEST_TTL,
    RUN_METRICS_TTL,
    STATS_TTL,
    Cache,
    MemoryCache,
    RedisCache,
    cache_key,
    make_cache,
)

from tests.services import RedisServer

RUN, OTHER = "run-1", "run-2"


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own (AOF on, so data survives a kill + start)."""
    server = RedisServer(appendonly=True).start()
    yield server
    server.destroy()


@pytest.fixture(params=["memory", "redis"])
def cache_factory(request: pytest.FixtureRequest) -> Callable[[], Cache]:
    if request.param == "memory":
        shared = MemoryCache()
        return lambda: shared  # one process: every "server" sees the same cache
    url = request.getfixturevalue("own_redis").url
    return lambda: make_cache(url)


def run(scenario: Awaitable[None]) -> None:
    asyncio.run(scenario)  # type: ignore[arg-type]


async def fill(cache: Cache, kind: str, run_id: str, value: bytes, ttl: float = 60) -> None:
    key = cache_key(kind, run_id, "loss")
    assert await cache.get(key) is None
    await cache.set(key, value, ttl)


def test_seed_ttls() -> None:
    assert (LATEST_TTL, STATS_TTL, RUN_METRICS_TTL) == (60, 300, 300)


def test_make_cache_picks_backend(own_redis: RedisServer) -> None:
    assert isinstance(make_cache(None), MemoryCache)
    redis_cache = make_cache(own_redis.url)
    assert isinstance(redis_cache, RedisCache)
    run(redis_cache.close())


def test_hit_after_set_and_key_parts_matter(cache_factory: Callable[[], Cache]) -> None:
    async def scenario() -> None:
        cache = cache_factory()
        await fill(cache, "latest", RUN, b"v1")
        assert await cache.get(cache_key("latest", RUN, "loss")) == b"v1"
        assert await cache.get(cache_key("latest", RUN, "acc")) is None
        assert await cache.get(cache_key("stats", RUN, "loss")) is None
        assert await cache.get(cache_key("latest", OTHER, "loss")) is None
        await cache.close()

    run(scenario())


def test_invalidation_is_per_run_and_seen_by_other_servers(
    cache_factory: Callable[[], Cache],
) -> None:
    async def scenario() -> None:
        server_a, server_b = cache_factory(), cache_factory()
        await fill(server_a, "latest", RUN, b"old")
        await fill(server_a, "latest", OTHER, b"other")
        assert await server_b.get(cache_key("latest", RUN, "loss")) == b"old"
        await server_b.invalidate_run(RUN)  # a write through server B
        assert await server_a.get(cache_key("latest", RUN, "loss")) is None
        assert await server_a.get(cache_key("latest", OTHER, "loss")) == b"other"
        await server_a.close()
        await server_b.close()

    run(scenario())


def test_result_computed_before_a_write_is_never_served_after_it(
    cache_factory: Callable[[], Cache],
) -> None:
    async def scenario() -> None:
        cache = cache_factory()
        slow_reader = cache_key("stats", RUN, "loss")
        assert await cache.get(slow_reader) is None  # reader starts its query...
        await cache.invalidate_run(RUN)  # ...a write commits meanwhile...
        await cache.set(slow_reader, b"pre-write result", 300)  # ...reader files its result
        assert await cache.get(cache_key("stats", RUN, "loss")) is None
        await fill(cache, "stats", RUN, b"fresh")
        assert await cache.get(cache_key("stats", RUN, "loss")) == b"fresh"
        await cache.close()

    run(scenario())


def test_entries_expire(cache_factory: Callable[[], Cache]) -> None:
    async def scenario() -> None:
        cache = cache_factory()
        await fill(cache, "latest", RUN, b"v", ttl=0.05)
        await asyncio.sleep(0.15)
        assert await cache.get(cache_key("latest", RUN, "loss")) is None
        await cache.close()

    run(scenario())


def test_set_without_get_is_a_precise_error(cache_factory: Callable[[], Cache]) -> None:
    async def scenario() -> None:
        cache = cache_factory()
        with pytest.raises(
            ValueError, match=r"cache.set\('latest' key of run run-1\) without a prior cache.get"
        ):
            await cache.set(cache_key("latest", RUN, "loss"), b"v", 60)
        await cache.close()

    run(scenario())


def test_memory_cache_is_bounded() -> None:
    async def scenario() -> None:
        cache = MemoryCache(max_entries=3, max_bytes=100)
        for i in range(5):
            await fill(cache, "latest", f"run-{i}", b"x")
        assert cache.status()["entries"] == 3
        assert await cache.get(cache_key("latest", "run-0", "loss")) is None
        assert await cache.get(cache_key("latest", "run-4", "loss")) == b"x"
        await fill(cache, "latest", "big", b"y" * 90)
        assert cache.status()["bytes"] <= 100
        await fill(cache, "latest", "huge", b"z" * 101)  # larger than the whole cache
        assert await cache.get(cache_key("latest", "huge", "loss")) is None

    run(scenario())


def test_redis_outage_is_a_miss_and_missed_invalidations_are_replayed(
    own_redis: RedisServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cache_mod, "REDIS_RETRY_AFTER", 0.1)

    async def scenario() -> None:
        cache = make_cache(own_redis.url)
        await fill(cache, "latest", RUN, b"before outage")
        await fill(cache, "latest", OTHER, b"untouched")
        own_redis.stop()
        started = time.monotonic()
        assert await cache.get(cache_key("latest", RUN, "loss")) is None
        await cache.invalidate_run(RUN)  # a write while Redis is down
        await fill(cache, "latest", RUN, b"during outage")  # silently not cached
        assert time.monotonic() - started < 2
        assert cache.status() == {"backend": "redis", "ok": False, "pending_invalidations": 1}
        own_redis.start()  # data survived (AOF): the old entry is back...
        await asyncio.sleep(0.15)
        assert await cache.get(cache_key("latest", RUN, "loss")) is None  # ...but is stale
        assert await cache.get(cache_key("latest", OTHER, "loss")) == b"untouched"
        assert cache.status() == {"backend": "redis", "ok": True, "pending_invalidations": 0}
        await fill(cache, "latest", RUN, b"after")
        assert await cache.get(cache_key("latest", RUN, "loss")) == b"after"
        await cache.close()

    run(scenario())
