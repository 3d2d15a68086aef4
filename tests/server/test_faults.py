"""Database stopped mid-ingest: 503 + Retry-After, nothing half-written, and after
the database returns every acknowledged (and replayed) point is there exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from tests.server.server_helpers import body, create_run
from tests.services import PostgresCluster, ServiceUnavailable

BATCH_POINTS = 100


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    """A TimescaleDB cluster of this test's own, so it can be stopped."""
    try:
        cluster = PostgresCluster(timescaledb=True).start()
    except ServiceUnavailable as e:
        pytest.skip(f"TimescaleDB not provisioned: {e}")
    yield cluster
    cluster.destroy()


@pytest.fixture
def backend() -> str:
    return "timescaledb"


@pytest.fixture
def database_url(cluster: PostgresCluster) -> str:
    return cluster.create_database("faults")


def batch(run_id: str, n: int) -> dict:
    """Batch ``n``: steps [n*100, n*100+100) of metric ``m``, idempotency key ``b<n>``."""
    return {
        "batch_id": f"b{n}",
        "run_id": run_id,
        "names": ["m"],
        "k": [0] * BATCH_POINTS,
        "s": list(range(n * BATCH_POINTS, (n + 1) * BATCH_POINTS)),
        "v": [float(n)] * BATCH_POINTS,
        "format": "columnar",
    }


@pytest.mark.slow
async def test_database_stopped_mid_ingest(api, cluster):
    rid = (await create_run(api))["id"]
    acked: set[int] = set()
    failed: set[int] = set()
    stopped = asyncio.Event()

    async def client(first: int) -> None:
        for n in range(first, first + 200, 4):
            resp = await api("POST", "metrics/batch", body=batch(rid, n))
            if resp.code == 200:
                acked.add(n)
            else:
                assert resp.code == 503, resp.body
                assert resp.headers["Retry-After"] == "5"
                assert body(resp)["message"].startswith("database unavailable: ")
                failed.add(n)
            if len(acked) >= 40 and not stopped.is_set():
                stopped.set()
                await asyncio.to_thread(cluster.stop, "immediate")  # a crash, mid-stream

    await asyncio.gather(*(client(i) for i in range(4)))  # 4 concurrent clients
    assert len(acked) >= 40 and len(failed) > 20, (len(acked), len(failed))

    await asyncio.to_thread(cluster.start)
    for _ in range(100):  # the pool reconnects on its own
        if (await api("GET", f"runs/{rid}/metric-names")).code == 200:
            break
        await asyncio.sleep(0.2)
    steps = np.asarray(body(await api("GET", f"runs/{rid}/metrics/m"))["steps"])
    per_batch = np.bincount(steps // BATCH_POINTS, minlength=200)
    assert set(np.unique(per_batch)) <= {0, BATCH_POINTS}, "a batch was half-written"
    assert all(per_batch[n] == BATCH_POINTS for n in acked), "an acknowledged batch was lost"

    # the client replays everything it is unsure of (its spool), plus acked ones
    for n in sorted(failed | set(list(acked)[:10])):
        resp = await api("POST", "metrics/batch", body=batch(rid, n))
        assert resp.code == 200, resp.body
        assert body(resp)["duplicate"] == (per_batch[n] == BATCH_POINTS)
    h = body(await api("GET", f"runs/{rid}/metrics/m"))
    assert h["steps"] == list(range(200 * BATCH_POINTS))  # every point exactly once
    stats = body(await api("GET", f"runs/{rid}/metrics/m/stats"))
    assert stats["count"] == 200 * BATCH_POINTS
