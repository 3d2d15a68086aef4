"""Shared test services: throwaway PostgreSQL clusters and a Redis server.

The clusters and Redis are started once per session on free ports and removed
at the end. Tests that stop or restart a service (fault tests) must start their
own instance from :mod:`services` instead of using these shared ones.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")

try:
    from services import PostgresCluster, RedisServer
except ImportError:  # tests/ imported as a package
    from tests.services import PostgresCluster, RedisServer

_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster with TimescaleDB preloaded."""
    cluster = PostgresCluster(timescaledb=True).start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def plain_pg_cluster() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster without TimescaleDB: the extension cannot be created."""
    cluster = PostgresCluster(timescaledb=False).start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def make_pg_database(
    request: pytest.FixtureRequest,
) -> Callable[..., str]:
    """Factory: ``make_pg_database(timescale=True) -> dsn`` of a fresh empty database.

    With ``timescale=True`` the database lives in a cluster that preloads
    TimescaleDB (the store creates the extension); with ``timescale=False`` in a
    cluster without it, so the store must fall back to ordinary tables.
    """

    def make(timescale: bool = True) -> str:
        fixture = "pg_cluster" if timescale else "plain_pg_cluster"
        cluster: PostgresCluster = request.getfixturevalue(fixture)
        return cluster.create_database(f"t{os.getpid()}_{next(_database_numbers)}")

    return make


@pytest.fixture
def timescale_dsn(make_pg_database: Callable[..., str]) -> str:
    """A fresh database in the TimescaleDB cluster."""
    return make_pg_database(timescale=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.destroy()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """URL of the shared Redis, emptied before the test."""
    subprocess.run(
        ["redis-cli", "-p", str(redis_server.port), "FLUSHALL"], check=True, capture_output=True
    )
    return redis_server.url
