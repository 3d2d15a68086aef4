"""The query cache on both backends (in-memory, real Redis): entries are filed
under the run's generation read from the real store, so a read after a write is
fresh, race-free, with nothing to invalidate; a Redis outage is a miss, never an
error, and what a restarted Redis kept is never served stale."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

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
from wanllm_server.store import open_store
from wanllm_server.store.base import RunCreate, Store
from wanllm_server.store.batches import metric_batch_from_columns

from tests.services import RedisServer


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


@pytest.fixture(params=["sqlite", "timescaledb"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path, jp_asyncio_loop: asyncio.AbstractEventLoop
) -> Iterator[Store]:
    """A real store (pytest-jupyter's loop runs the async tests)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/wanllm.db"
    else:
        url = request.getfixturevalue("make_pg_database")(timescale=True, migrated=True)
    s = open_store(url)
    jp_asyncio_loop.run_until_complete(s.open())
    yield s
    jp_asyncio_loop.run_until_complete(s.close())


async def new_run(store: Store) -> uuid.UUID:
    run, _ = await store.create_run(RunCreate(project="cache"))
    return run.id


async def write(store: Store, run_id: uuid.UUID, step: int) -> None:
    batch = metric_batch_from_columns(str(run_id), ["loss"], [0], [step], None, [float(step)], None)
    assert not (await store.write_metrics(batch)).duplicate


class Producer:
    """A query: counts its calls and answers what it is told."""

    def __init__(self, value: bytes) -> None:
        self.value, self.calls = value, 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.value


async def fetch(cache: Cache, store: Store, run_id: uuid.UUID, value: bytes, ttl=60) -> bytes:
    return await cache.fetch(store, cache_key("latest", run_id, "loss"), ttl, Producer(value))


def test_seed_ttls() -> None:
    assert (LATEST_TTL, STATS_TTL, RUN_METRICS_TTL) == (60, 300, 300)


def test_make_cache_picks_backend(own_redis: RedisServer) -> None:
    assert isinstance(make_cache(None), MemoryCache)
    redis_cache = make_cache(own_redis.url)
    assert isinstance(redis_cache, RedisCache)
    asyncio.run(redis_cache.close())


async def test_hit_until_a_write_and_key_parts_matter(
    cache_factory: Callable[[], Cache], store: Store
) -> None:
    cache = cache_factory()
    run, other = await new_run(store), await new_run(store)
    assert await fetch(cache, store, run, b"v1") == b"v1"
    assert await fetch(cache, store, run, b"v2") == b"v1"  # a hit
    for key in (
        cache_key("latest", run, "acc"),
        cache_key("stats", run, "loss"),
        cache_key("latest", other, "loss"),
    ):
        assert await cache.fetch(store, key, 60, Producer(b"x")) == b"x"
    await write(store, run, 1)  # a write through any server
    assert await fetch(cache, store, run, b"v3") == b"v3"
    assert await fetch(cache, store, other, b"y") == b"x"  # other runs keep theirs
    await cache.close()


async def test_result_computed_before_a_write_is_never_served_after_it(
    cache_factory: Callable[[], Cache], store: Store
) -> None:
    cache = cache_factory()
    run = await new_run(store)

    async def slow_query() -> bytes:
        await write(store, run, 1)  # a write commits while the query runs
        return b"pre-write result"

    key = cache_key("stats", run, "loss")
    assert await cache.fetch(store, key, 300, slow_query) == b"pre-write result"
    assert await cache.fetch(store, key, 300, Producer(b"fresh")) == b"fresh"
    await cache.close()


async def test_unknown_and_deleted_runs_are_never_cached(
    cache_factory: Callable[[], Cache], store: Store
) -> None:
    cache = cache_factory()
    produce = Producer(b"answer")
    key = cache_key("run_metrics", uuid.uuid4(), "1000")
    for _ in range(2):
        assert await cache.fetch(store, key, 60, produce) == b"answer"
    assert produce.calls == 2
    run = await new_run(store)
    await fetch(cache, store, run, b"before delete")
    await store.delete_run(run)
    assert await fetch(cache, store, run, b"the store's answer") == b"the store's answer"
    await cache.close()


async def test_entries_expire(cache_factory: Callable[[], Cache], store: Store) -> None:
    cache = cache_factory()
    run = await new_run(store)
    await fetch(cache, store, run, b"v", ttl=0.05)
    await asyncio.sleep(0.15)
    assert await fetch(cache, store, run, b"w") == b"w"
    await cache.close()


async def test_memory_cache_is_bounded() -> None:
    cache = MemoryCache(max_entries=3, max_bytes=100)
    for i in range(5):
        await cache.set(f"k{i}", b"x", 60)
    assert cache.status()["entries"] == 3
    assert await cache.get("k0") is None
    assert await cache.get("k4") == b"x"
    await cache.set("big", b"y" * 90, 60)
    assert cache.status()["bytes"] <= 100
    await cache.set("huge", b"z" * 101, 60)  # larger than the whole cache
    assert await cache.get("huge") is None


async def test_redis_outage_is_a_miss_and_what_redis_kept_is_never_stale(
    own_redis: RedisServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_mod, "REDIS_RETRY_AFTER", 0.1)
    writer, reader = make_cache(own_redis.url), make_cache(own_redis.url)  # two servers
    run, other = await new_run(store), await new_run(store)
    assert await fetch(reader, store, run, b"before outage") == b"before outage"
    assert await fetch(reader, store, other, b"untouched") == b"untouched"
    own_redis.stop()
    started = time.monotonic()
    assert await fetch(writer, store, run, b"during outage") == b"during outage"
    await write(store, run, 1)  # committed while Redis is down: nobody can tell Redis
    assert time.monotonic() - started < 2
    assert writer.status() == {"backend": "redis", "ok": False}
    own_redis.start()  # data survived (AOF): the old entry is back...
    await asyncio.sleep(0.15)
    # ...but filed under the old generation: the reader, which saw no outage, misses it
    assert await fetch(reader, store, run, b"after") == b"after"
    assert await fetch(reader, store, other, b"x") == b"untouched"
    assert reader.status() == {"backend": "redis", "ok": True}
    await writer.close()
    await reader.close()
