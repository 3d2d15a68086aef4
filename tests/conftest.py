"""Shared test services: throwaway PostgreSQL clusters and a Redis server.

The clusters and Redis are started once per session on free ports and removed
at the end. Tests that stop or restart a service (fault tests) must start their
own instance from :mod:`services` instead of using these shared ones.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")
# No test starts the local service (into the real data dir) unless it asks to.
os.environ.setdefault("WANLLM_AUTOSTART", "0")

from tests.service_skip import start_or_skip
from tests.services import PostgresCluster, RedisServer

pytest_plugins = ("pytest_jupyter.jupyter_server",)

_database_numbers = itertools.count()
MIGRATED_TEMPLATE = "wanllm_migrated"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster with TimescaleDB preloaded (skips when not installed)."""
    cluster = start_or_skip(lambda: PostgresCluster(timescaledb=True).start())
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def plain_pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster without TimescaleDB: the extension cannot be created
    (skips when PostgreSQL is not installed)."""
    cluster = start_or_skip(lambda: PostgresCluster(timescaledb=False).start())
    yield cluster
    cluster.destroy()


def _migrate_template(cluster: PostgresCluster) -> None:
    """Create a database holding the current schema, to clone cheaply."""
    from wanllm_server.store import open_store

    if MIGRATED_TEMPLATE in cluster.psql("SELECT datname FROM pg_database"):
        return
    store = open_store(cluster.create_database(MIGRATED_TEMPLATE))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(store.open())
        loop.run_until_complete(store.close())
    finally:
        loop.close()
    # TimescaleDB's background workers connect to every database with the
    # extension; a template must have no connections while it is cloned.
    cluster.psql(f"ALTER DATABASE {MIGRATED_TEMPLATE} WITH ALLOW_CONNECTIONS false")
    cluster.psql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE datname = '{MIGRATED_TEMPLATE}' AND pid <> pg_backend_pid()"
    )


@pytest.fixture
def make_pg_database(
    request: pytest.FixtureRequest,
) -> Callable[..., str]:
    """Factory: ``make_pg_database(timescale=True, migrated=False) -> dsn`` of a fresh database.

    With ``timescale=True`` the database lives in a cluster that preloads
    TimescaleDB (the store creates the extension); with ``timescale=False`` in a
    cluster without it, so the store must fall back to ordinary tables.
    ``migrated=True`` clones a database that already holds the schema (fast).
    """

    def make(timescale: bool = True, migrated: bool = False) -> str:
        fixture = "pg_cluster" if timescale else "plain_pg_cluster"
        cluster: PostgresCluster = request.getfixturevalue(fixture)
        name = f"t{os.getpid()}_{next(_database_numbers)}"
        if not migrated:
            return cluster.create_database(name)
        _migrate_template(cluster)
        cluster.psql(f'CREATE DATABASE "{name}" TEMPLATE {MIGRATED_TEMPLATE}')
        return cluster.dsn_for(name)

    return make


@pytest.fixture
def timescale_dsn(make_pg_database: Callable[..., str]) -> str:
    """A fresh database in the TimescaleDB cluster."""
    return make_pg_database(timescale=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_or_skip(lambda: RedisServer().start())
    yield server
    server.destroy()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the shared Redis, emptied before the test."""
    subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "FLUSHALL"], check=True, capture_output=True
    )
    return redis_server.url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test's own, so a test can stop and restart it."""
    server = start_or_skip(lambda: RedisServer().start())
    yield server
    server.destroy()
