"""The PostgreSQL store's two pools (store/postgres_pools.py): they share
``max_pool``, and a long wait for a connection is logged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from wanllm_server.store import postgres_pools
from wanllm_server.store.postgres import PostgresStore


def test_the_pools_share_max_pool_and_a_long_wait_is_logged(
    make_pg_database: Callable[..., str],
    run: Callable[[Any], Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres_pools, "SLOW_ACQUIRE_SECONDS", 0.2)
    store = PostgresStore(make_pg_database(timescale=False), min_pool=1, max_pool=4)

    async def go() -> None:
        await store.open()
        try:
            async with store._conn() as a, store._conn(), store._read_conn() as c:
                assert await a.fetchval("SHOW plan_cache_mode") == "auto"
                assert await c.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
                waiting = asyncio.create_task(_one_query(store))
                await asyncio.sleep(0.5)  # the general pool's 2 connections are taken
                assert not waiting.done()
            assert await waiting == 1
            info = (await store.info())["pool"]
            assert info["size"] <= 4 and (info["min"], info["max"]) == (1, 4)
        finally:
            await store.close()

    caplog.set_level(logging.WARNING, logger=postgres_pools.__name__)
    run(go())
    assert any("for a PostgreSQL connection (pool of 2" in r.message for r in caplog.records)


async def _one_query(store: PostgresStore) -> int:
    async with store._conn() as conn:
        return int(await conn.fetchval("SELECT 1"))
