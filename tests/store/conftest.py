"""Fixtures of the storage contract suite: one ``store`` per backend.

Async tests are plain ``async def``: pytest-jupyter's plugin (loaded by the
top-level conftest) runs them on its ``jp_asyncio_loop``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wanllm_server.store import Store, open_store

BACKENDS = ["sqlite", "timescaledb", "postgresql"]


@pytest.fixture
def store_loop(jp_asyncio_loop: asyncio.AbstractEventLoop) -> asyncio.AbstractEventLoop:
    """The loop async tests run on: pytest-jupyter's."""
    return jp_asyncio_loop


@pytest.fixture
def run(store_loop: asyncio.AbstractEventLoop) -> Callable[[Any], Any]:
    """Drive a coroutine to completion from sync code (hypothesis tests)."""
    return store_loop.run_until_complete


@pytest.fixture(params=BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Any, store_loop: asyncio.AbstractEventLoop
) -> Iterator[Store]:
    backend = request.param
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        make = request.getfixturevalue("make_pg_database")
        url = make(timescale=backend == "timescaledb", migrated=True)
    s = open_store(url)
    store_loop.run_until_complete(s.open())
    assert s.backend == backend
    yield s
    store_loop.run_until_complete(s.close())
