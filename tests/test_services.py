"""Tests for the throwaway service helpers in tests/services.py.

They prove that the machine is provisioned (TimescaleDB, redis-server) and that
the helpers support the fault tests: a crash (immediate stop) of PostgreSQL
keeps committed rows, and Redis can be killed and restarted on the same port.
Nothing here skips: missing software fails with a hint to run scripts/provision.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.services import (
    PROVISION_HINT,
    PostgresCluster,
    RedisServer,
    free_port,
    pg_bindir,
    timescaledb_installed,
)


def _require(ok: bool, what: str) -> None:
    if not ok:
        pytest.fail(f"{what} is not installed: {PROVISION_HINT}", pytrace=False)


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    _require(timescaledb_installed(pg_bindir()), "TimescaleDB")
    t0 = time.monotonic()
    cluster = PostgresCluster().start()
    print(f"\nthrowaway cluster initdb+start: {time.monotonic() - t0:.2f}s ({cluster.dsn})")
    try:
        yield cluster
    finally:
        cluster.destroy()
    assert not cluster.root.exists()


def _redis_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    _require(shutil.which("redis-cli") is not None, "redis-cli (redis-tools)")
    return subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_cluster_is_isolated_and_preloads_timescaledb(pg: PostgresCluster) -> None:
    assert pg.running
    assert pg.port != 5432
    assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    assert "timescaledb" in pg.psql("SHOW shared_preload_libraries")
    assert pg.psql("SHOW timescaledb.telemetry_level") == "off"
    assert pg.psql("SHOW fsync") == "on"
    assert pg.psql("SHOW synchronous_commit") == "on"
    assert pg.psql("SHOW max_connections") == "200"
    assert pg.psql("SELECT current_setting('data_directory')") == str(pg.datadir)


def test_timescaledb_hypertable(pg: PostgresCluster) -> None:
    dsn = pg.create_database("tsdb_smoke")
    assert dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/tsdb_smoke"
    pg.psql("CREATE EXTENSION IF NOT EXISTS timescaledb", "tsdb_smoke")
    assert pg.psql("SHOW timescaledb.license", "tsdb_smoke") in ("apache", "timescale")
    pg.psql(
        "CREATE TABLE metrics (t timestamptz NOT NULL, run_id text NOT NULL, value float8);"
        "SELECT create_hypertable('metrics', 't');"
        "INSERT INTO metrics SELECT now() - i * interval '1 hour', 'r1', i"
        "  FROM generate_series(1, 100) i;",
        "tsdb_smoke",
    )
    listed = pg.psql(
        "SELECT hypertable_schema || '.' || hypertable_name"
        " FROM timescaledb_information.hypertables",
        "tsdb_smoke",
    )
    assert listed.splitlines() == ["public.metrics"]
    assert int(pg.psql("SELECT count(*) FROM metrics", "tsdb_smoke")) == 100
    chunks = int(pg.psql("SELECT count(*) FROM show_chunks('metrics')", "tsdb_smoke"))
    assert chunks >= 1


def test_immediate_stop_keeps_committed_rows(pg: PostgresCluster) -> None:
    pg.create_database("crash")
    pg.psql(
        "CREATE TABLE t (id int PRIMARY KEY, v text);"
        "INSERT INTO t SELECT i, md5(i::text) FROM generate_series(1, 1000) i;",
        "crash",
    )
    port = pg.port
    pg.stop("immediate")  # crash: no shutdown checkpoint
    assert not pg.running
    with pytest.raises(subprocess.CalledProcessError):
        pg.psql("SELECT 1", "crash", timeout=10)
    pg.start()  # crash recovery replays the WAL
    assert pg.port == port
    assert pg.psql("SELECT count(*) FROM t", "crash") == "1000"
    assert "database system was interrupted" in pg.logfile.read_text()
    pg.restart()  # clean restart still works after recovery
    assert pg.psql("SELECT count(*) FROM t", "crash") == "1000"


def test_cluster_without_timescaledb() -> None:
    with PostgresCluster(timescaledb=False) as plain:
        assert "timescaledb" not in plain.psql("SHOW shared_preload_libraries")
        assert plain.psql("SELECT 1") == "1"


def test_redis_stop_restart_same_port() -> None:
    with RedisServer() as r:
        assert r.url == f"redis://127.0.0.1:{r.port}/0"
        assert _redis_cli(r.port, "ping").stdout.strip() == "PONG"
        assert _redis_cli(r.port, "config", "get", "appendonly").stdout.split() == [
            "appendonly",
            "no",
        ]
        assert _redis_cli(r.port, "set", "k", "v").stdout.strip() == "OK"
        r.stop()
        assert not r.running
        assert _redis_cli(r.port, "ping").returncode != 0
        r.start()
        assert _redis_cli(r.port, "ping").stdout.strip() == "PONG"
        # no persistence by default: the key is gone after the kill
        assert _redis_cli(r.port, "get", "k").stdout.strip() == ""
        port = r.port
        r.restart()
        assert r.port == port
        assert _redis_cli(r.port, "ping").stdout.strip() == "PONG"
        root = r.root
    assert not root.exists()


def test_redis_appendonly_survives_kill() -> None:
    with RedisServer(appendonly=True) as r:
        assert _redis_cli(r.port, "set", "k", "v").stdout.strip() == "OK"
        r.restart()  # SIGKILL + start
        assert _redis_cli(r.port, "get", "k").stdout.strip() == "v"
