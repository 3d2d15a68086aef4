"""Team mode: two real Jupyter servers on one TimescaleDB and one Redis that keeps
its data across restarts (AOF). Server B never serves latest/stats staler than
the database after a Redis outage during A's ingest; a logging run is never
marked crashed under the shortest heartbeat timeout; a crashed run that logs
again is running, and one that finishes ends when it finishes."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import asyncpg
import pytest
import redis

from tests.jupyter_process import JupyterServer
from tests.server.server_helpers import call
from tests.services import PostgresCluster, RedisServer
from wanllm_jupyter.core.heartbeat import MIN_HEARTBEAT_TIMEOUT

pytestmark = pytest.mark.slow
Servers = tuple[JupyterServer, JupyterServer]


@pytest.fixture(scope="module")
def aof_redis() -> Iterator[RedisServer]:
    server = RedisServer(appendonly=True).start()
    yield server
    server.destroy()


@pytest.fixture(scope="module")
def team_dsn(pg_cluster: PostgresCluster) -> str:
    return pg_cluster.create_database(f"team{os.getpid()}")


@pytest.fixture(scope="module")
def servers(team_dsn: str, aof_redis: RedisServer) -> Iterator[Servers]:
    def server() -> JupyterServer:
        return JupyterServer(
            database_url=team_dsn,
            redis_url=aof_redis.url,
            extra_args=[f"--WanllmApp.heartbeat_timeout={MIN_HEARTBEAT_TIMEOUT}"],
        )

    a = server().start()  # A migrates the database first
    try:
        b = server().start()
    except BaseException:
        a.stop()
        raise
    yield a, b
    b.terminate()
    a.stop()
    b.stop()


async def log_steps(server: JupyterServer, run_id: str, steps: range) -> None:
    rows = [{"run_id": run_id, "metric_name": "loss", "step": s, "value": s / 2} for s in steps]
    for i in range(0, len(rows), 1000):
        await call(server, "POST", "metrics/batch", {"metrics": rows[i : i + 1000]})


def at(iso: str | None) -> float:
    assert iso is not None
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def test_b_serves_no_stale_latest_or_stats_after_a_redis_restart(
    servers, team_dsn, aof_redis
):
    a, b = servers
    rid = (await call(a, "POST", "runs", {"project": "team"}))["id"]
    await log_steps(a, rid, range(4020))
    latest, stats = f"runs/{rid}/metrics/loss/latest", f"runs/{rid}/metrics/loss/stats"
    assert (await call(b, "GET", latest))["step"] == 4019
    assert (await call(b, "GET", stats))["count"] == 4020
    assert redis.Redis.from_url(aof_redis.url).keys(f"wanllm:cache:{rid}:*")  # B cached them

    aof_redis.stop()  # SIGKILL; the AOF keeps B's entries
    await log_steps(a, rid, range(4020, 6000))  # committed while Redis is down
    aof_redis.start()

    conn = await asyncpg.connect(team_dsn)
    try:
        truth = await conn.fetchrow(
            "SELECT latest_step, latest_value, count, last_step FROM metric_summaries "
            "WHERE run_id = $1 AND metric_name = 'loss'",
            uuid.UUID(rid),
        )
    finally:
        await conn.close()
    assert (truth["latest_step"], truth["count"]) == (5999, 6000)
    for _ in range(5):  # B's cache misses what Redis kept, then serves the fresh values
        got = await call(b, "GET", latest)
        assert (got["step"], got["value"]) == (truth["latest_step"], truth["latest_value"])
        got = await call(b, "GET", stats)
        assert (got["count"], got["last_step"]) == (truth["count"], truth["last_step"])
        await asyncio.sleep(0.1)


async def test_logging_keeps_a_run_alive_under_the_shortest_timeout(servers):
    a, b = servers
    logging = (await call(a, "POST", "runs", {"project": "team"}))["id"]
    silent = (await call(a, "POST", "runs", {"project": "team"}))["id"]
    silent_crashed = None
    started = time.monotonic()
    step = 0
    while time.monotonic() - started < 25:  # batches to either server, no heartbeats
        await log_steps((a, b)[step % 2], logging, range(step, step + 1))
        step += 1
        assert (await call(b, "GET", f"runs/{logging}"))["state"] == "running", step
        if (
            silent_crashed is None
            and (await call(a, "GET", f"runs/{silent}"))["state"] == "crashed"
        ):
            silent_crashed = time.monotonic() - started
        await asyncio.sleep(1.0)
    timeout = MIN_HEARTBEAT_TIMEOUT
    assert silent_crashed is not None and timeout - 1 < silent_crashed < timeout + 8  # swept

    crashed = await call(b, "GET", f"runs/{silent}")
    assert crashed["finished_at"] == crashed["heartbeat_at"]  # its last sign of life
    await log_steps(b, silent, range(1))  # it logs again: running
    revived = await call(a, "GET", f"runs/{silent}")
    assert (revived["state"], revived["finished_at"]) == ("running", None)
    before = time.time()
    await call(a, "PATCH", f"runs/{silent}", {"state": "finished"})
    finished = await call(b, "GET", f"runs/{silent}")
    assert finished["state"] == "finished" and at(finished["finished_at"]) >= before - 0.001
