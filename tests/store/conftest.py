"""Fixtures of the storage contract suite: one ``store`` per backend.

Async tests are plain ``async def``: pytest-jupyter's plugin runs them on its
``jp_asyncio_loop``. Until the top-level conftest loads that plugin, the
small hook below runs them on this suite's own loop.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wanllm_server.store import Store, open_store

BACKENDS = ["sqlite", "timescaledb", "postgresql"]
JP_PLUGIN = "pytest_jupyter.jupyter_core"


@pytest.fixture
def store_loop(request: pytest.FixtureRequest) -> Iterator[asyncio.AbstractEventLoop]:
    """The loop async tests run on (pytest-jupyter's when loaded)."""
    if request.config.pluginmanager.has_plugin(JP_PLUGIN):
        yield request.getfixturevalue("jp_asyncio_loop")
        return
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    if pyfuncitem.config.pluginmanager.has_plugin(JP_PLUGIN):
        return None
    loop = pyfuncitem._request.getfixturevalue("store_loop")
    args = {a: pyfuncitem.funcargs[a] for a in pyfuncitem._fixtureinfo.argnames}
    loop.run_until_complete(pyfuncitem.obj(**args))
    return True


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
        try:
            make = request.getfixturevalue("make_pg_database")
        except pytest.FixtureLookupError:
            pytest.skip("the make_pg_database fixture (tests/conftest.py) is missing")
        url = make(timescale=backend == "timescaledb")
    s = open_store(url)
    store_loop.run_until_complete(s.open())
    assert s.backend == backend
    yield s
    store_loop.run_until_complete(s.close())
