"""What the backend-agnostic contract suite cannot check about PostgreSQL/TimescaleDB:
the extension and hypertables are real, migrations are idempotent and race-free,
the seed's SQL functions, hourly rollups and retention against brute-force SQL,
and recovery from a database stop in the middle of ingest."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import asyncpg
import numpy as np
import pytest
from wanllm_server.store.base import (
    MetricBatch,
    Retention,
    RunCreate,
    StoreUnavailable,
    SystemMetricBatch,
)
from wanllm_server.store.postgres import PostgresStore
from wanllm_server.store.postgres_copy import HEADER, TRAILER, RowStream, encode_group
from wanllm_server.store.postgres_schema import discover, migrate

from tests.services import PostgresCluster

T = TypeVar("T")
HOUR = 3_600_000_000
DAY = 24 * HOUR
T0 = 1_700_000_000_000_000 // DAY * DAY  # midnight


def run(coro: Awaitable[T]) -> T:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def with_store(dsn: str, fn: Callable[[PostgresStore], Awaitable[T]]) -> T:
    store = PostgresStore(dsn, min_pool=1, max_pool=4)
    await store.open()
    try:
        return await fn(store)
    finally:
        await store.close()


async def sql(dsn: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


def batch(
    run_id: uuid.UUID, name: str, steps: Any, times: Any, values: Any, bid: str
) -> MetricBatch:
    st = np.asarray(steps, np.int64)
    return MetricBatch(
        batch_id=bid,
        run_ids=[run_id],
        names=[name],
        run_idx=np.zeros(len(st), np.int32),
        name_idx=np.zeros(len(st), np.int32),
        steps=st,
        times=np.asarray(times, np.int64),
        values=np.asarray(values, np.float64),
    )


@pytest.fixture(params=["timescaledb", "postgresql"])
def pg_dsn(request: pytest.FixtureRequest, make_pg_database: Callable[..., str]) -> str:
    """A fresh database of each PostgreSQL flavour."""
    return make_pg_database(timescale=request.param == "timescaledb")


# ----------------------------------------------------------------- extension and schema
def test_timescaledb_is_loaded_and_metrics_are_hypertables(timescale_dsn: str) -> None:
    backend = run(with_store(timescale_dsn, lambda s: asyncio.sleep(0, s.backend)))
    assert backend == "timescaledb"
    ext = run(
        sql(timescale_dsn, "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    )
    assert len(ext) == 1
    hyper = run(
        sql(timescale_dsn, "SELECT hypertable_name FROM timescaledb_information.hypertables")
    )
    assert {r[0] for r in hyper} == {"metrics", "system_metrics"}
    licence = run(sql(timescale_dsn, "SELECT current_setting('timescaledb.license')"))[0][0]
    kind = run(
        sql(timescale_dsn, "SELECT relkind::text FROM pg_class WHERE relname = 'metrics_hourly'")
    )
    # Apache build: a server-maintained table; community licence: a continuous aggregate (view)
    assert kind[0][0] == ("v" if licence == "timescale" else "r")


def test_plain_postgresql_has_no_extension_and_ordinary_tables(
    make_pg_database: Callable[..., str],
) -> None:
    dsn = make_pg_database(timescale=False)
    assert run(with_store(dsn, lambda s: asyncio.sleep(0, s.backend))) == "postgresql"
    assert run(sql(dsn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")) == []
    query = "SELECT relname::text, relkind::text FROM pg_class WHERE relname = ANY($1)"
    kinds = run(sql(dsn, query,
                    ["metrics", "system_metrics", "metrics_hourly"]))  # fmt: skip
    assert {r[0]: r[1] for r in kinds} == {
        "metrics": "r",
        "system_metrics": "r",
        "metrics_hourly": "r",
    }
    assert run(sql(dsn, "SELECT count(*) FROM pg_inherits"))[0][0] == 0  # no chunks


def test_migrations_run_twice_are_a_no_op(pg_dsn: str) -> None:
    async def twice() -> tuple[list[str], list[str], int, int]:
        conn = await asyncpg.connect(pg_dsn)
        try:
            first = await migrate(conn)
            n1 = await conn.fetchval("SELECT count(*) FROM wanllm_schema_version")
            second = await migrate(conn)
            n2 = await conn.fetchval("SELECT count(*) FROM wanllm_schema_version")
            return first.applied_now, second.applied_now, n1, n2
        finally:
            await conn.close()

    first, second, n1, n2 = run(twice())
    assert first and second == [] and n1 == n2 == len(first)


def test_two_stores_migrating_concurrently_apply_each_migration_once(timescale_dsn: str) -> None:
    async def race() -> list[list[str]]:
        conns = [await asyncpg.connect(timescale_dsn) for _ in range(3)]
        try:
            states = await asyncio.gather(*(migrate(c) for c in conns))
            return [s.applied_now for s in states]
        finally:
            for c in conns:
                await c.close()

    applied = run(race())
    flat = [m for a in applied for m in a]
    assert len(flat) == len(set(flat))  # nobody applied anything twice
    expected = {
        f"{m.component}/{m.version:04d}_{m.name}" for m in discover() if "apache" in m.modes
    }
    licence = run(sql(timescale_dsn, "SELECT current_setting('timescaledb.license')"))[0][0]
    if licence == "apache":
        assert set(flat) == expected
    rows = run(
        sql(
            timescale_dsn,
            "SELECT component, version, count(*) FROM wanllm_schema_version GROUP BY 1, 2",
        )
    )
    assert all(r[2] == 1 for r in rows) and len(rows) == len(flat)


# ----------------------------------------------------------------- seed functions
def test_seed_sql_functions_match_the_store(pg_dsn: str) -> None:
    async def go(s: PostgresStore) -> tuple[Any, ...]:
        r, _ = await s.create_run(RunCreate(project="p"))
        values = [1.0, 5.0, math.nan, 3.0, -2.0]
        await s.write_metrics(
            batch(r.id, "loss", [0, 1, 2, 3, 3], [T0 + i for i in range(5)], values, "b1")
        )
        return r.id, await s.latest(r.id, "loss"), await s.stats(r.id, "loss")

    rid, latest, stats = run(with_store(pg_dsn, go))
    (row,) = run(sql(pg_dsn, "SELECT * FROM get_latest_metric_value($1, 'loss')", rid))
    assert (row["step"], row["value"]) == (latest.step, latest.value) == (3, -2.0)
    (st,) = run(sql(pg_dsn, "SELECT * FROM get_metric_stats($1, 'loss')", rid))
    assert st["count"] == stats.count == 5
    assert (st["min_value"], st["max_value"]) == (stats.min_value, stats.max_value) == (-2.0, 5.0)
    assert st["avg_value"] == pytest.approx(stats.avg_value) == pytest.approx(7 / 4)
    assert (
        st["std_dev"]
        == pytest.approx(stats.std_dev)
        == pytest.approx(np.std([1, 5, 3, -2], ddof=1))
    )
    assert run(sql(pg_dsn, "SELECT * FROM get_latest_metric_value($1, 'nope')", rid)) == []


# ----------------------------------------------------------------- hourly rollups
_BRUTE_HOURLY = """
SELECT floor(extract(epoch FROM time) / 3600)::bigint * 3600000000 AS hour, metric_name,
       count(*) AS n,
       avg(value) FILTER (WHERE f), min(value) FILTER (WHERE f), max(value) FILTER (WHERE f),
       stddev_samp(value) FILTER (WHERE f)
FROM (SELECT *, value NOT IN ('NaN'::float8, 'Infinity', '-Infinity') AS f FROM metrics) m
WHERE run_id = $1 AND ($2::timestamptz IS NULL OR time >= $2)
  AND ($3::timestamptz IS NULL OR time <= $3)
GROUP BY 1, 2 ORDER BY 2, 1
"""


def _brute_hourly(
    dsn: str, rid: uuid.UUID, start: int | None, end: int | None
) -> list[tuple[Any, ...]]:
    async def q() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        await conn.set_type_codec(
            "timestamptz", schema="pg_catalog", format="tuple",
            encoder=lambda us: (us - 946_684_800_000_000,), decoder=lambda t: t[0],
        )  # fmt: skip
        try:
            return await conn.fetch(_BRUTE_HOURLY, rid, start, end)
        finally:
            await conn.close()

    return [tuple(r) for r in run(q())]


def test_hourly_rollups_equal_a_brute_force_group_by(pg_dsn: str) -> None:
    rng = np.random.default_rng(1)

    async def go(s: PostgresStore) -> uuid.UUID:
        r, _ = await s.create_run(RunCreate(project="p"))
        for i in range(6):  # overlapping hours across batches, one late batch at the end
            t = T0 + rng.integers(0, 5 * HOUR, 500) if i < 5 else T0 + rng.integers(0, HOUR, 50)
            v = rng.standard_normal(len(t))
            v[::37] = np.nan
            v[5] = np.inf
            await s.write_metrics(batch(r.id, "loss", np.arange(len(t)) + 1000 * i, t, v, f"h{i}"))
        await s.write_metrics(batch(r.id, "acc", [0], [T0 + 2 * HOUR], [math.nan], "only-nan"))
        return r.id

    rid = run(with_store(pg_dsn, go))
    for start, end in [(None, None), (T0 + HOUR + 123, T0 + 3 * HOUR + 77), (T0 + 10, T0 + 20)]:
        got = run(
            with_store(
                pg_dsn, lambda s, a=start, b=end: s.hourly_rollups(rid, start_time=a, end_time=b)
            )
        )
        want = _brute_hourly(pg_dsn, rid, start, end)
        assert [(h.hour, h.metric_name, h.count) for h in got] == [w[:3] for w in want]
        for h, w in zip(got, want, strict=False):
            for a, b in zip(
                (h.avg_value, h.min_value, h.max_value, h.std_dev), w[3:], strict=False
            ):
                assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9)


# ----------------------------------------------------------------- retention
def test_retention_drops_exactly_the_old_rows_and_keeps_stats_exact(pg_dsn: str) -> None:
    now = T0 + 20 * DAY + 5 * HOUR
    times = T0 + np.arange(0, 20 * DAY, HOUR // 2)  # 20 days, spans several chunks
    values = np.sin(np.arange(len(times)))

    async def go(s: PostgresStore) -> tuple[Any, ...]:
        r, _ = await s.create_run(RunCreate(project="p"))
        await s.write_metrics(batch(r.id, "loss", np.arange(len(times)), times, values, "r1"))
        sysb = SystemMetricBatch(
            "s1", [r.id], ["cpu"], np.zeros(len(times), np.int32), np.zeros(len(times), np.int32),
            times, values,
        )  # fmt: skip
        await s.write_system_metrics(sysb)
        removed = await s.apply_retention(Retention(metrics_days=9, system_metrics_days=3), now)
        return r.id, removed, await s.stats(r.id, "loss"), await s.downsample(r.id, "loss", 16)

    rid, removed, stats, down = run(with_store(pg_dsn, go))
    keep_m = times >= now - 9 * DAY
    keep_s = times >= now - 3 * DAY
    assert removed == {"metrics": int((~keep_m).sum()), "system_metrics": int((~keep_s).sum())}
    left = run(sql(pg_dsn, "SELECT min(step), count(*) FROM metrics WHERE run_id = $1", rid))[0]
    assert (left[0], left[1]) == (int(np.argmax(keep_m)), int(keep_m.sum()))
    assert run(sql(pg_dsn, "SELECT count(*) FROM system_metrics"))[0][0] == int(keep_s.sum())
    kept = values[keep_m]
    assert stats.count == len(kept) and stats.first_step == int(np.argmax(keep_m))
    assert stats.avg_value == pytest.approx(kept.mean()) and stats.min_value == kept.min()
    assert down.total_points == len(kept) and int(down.bucket_count.sum()) == len(kept)


# ----------------------------------------------------------------- fault: database stop
@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own, so it can be stopped and restarted."""
    cluster = PostgresCluster(timescaledb=True).start()
    yield cluster
    cluster.destroy()


def test_database_stop_mid_ingest_then_recovery_exactly_once(own_cluster: PostgresCluster) -> None:
    dsn = own_cluster.create_database("fault")
    per = 2_000

    async def go() -> tuple[int, set[int], int]:
        store = PostgresStore(dsn, min_pool=2, max_pool=4)
        await store.open()
        r, _ = await store.create_run(RunCreate(project="p"))
        acked: set[int] = set()
        unavailable = i = 0
        stopper: asyncio.Future[None] | None = None
        while len(acked) < 12 or unavailable < 3:
            b = batch(r.id, "loss", np.arange(i * per, (i + 1) * per), T0 + np.arange(per),
                      np.full(per, float(i)), f"fault-{i}")  # fmt: skip
            if i == 4 and stopper is None:  # crash the server while writes are in flight
                stopper = asyncio.ensure_future(asyncio.to_thread(own_cluster.stop, "immediate"))
            try:
                res = await store.write_metrics(b)
            except StoreUnavailable:
                unavailable += 1
                if unavailable == 3:
                    assert stopper is not None
                    await stopper
                    await asyncio.to_thread(own_cluster.start)
                await asyncio.sleep(0.05)
                continue  # the client retries the same batch id
            assert res.points in (0, per)
            acked.add(i)
            i += 1
        count = (await store.stats(r.id, "loss")).count
        await store.close()
        return count, acked, unavailable

    count, acked, unavailable = run(go())
    assert unavailable >= 3
    rows = run(sql(dsn, "SELECT step, count(*) FROM metrics GROUP BY step HAVING count(*) <> 1"))
    assert rows == []  # every acknowledged point exactly once
    total = run(sql(dsn, "SELECT count(*), count(DISTINCT value) FROM metrics"))[0]
    assert (total[0], total[1]) == (len(acked) * per, len(acked)) and count == total[0]
    assert acked == set(range(len(acked)))
    assert run(sql(dsn, "SELECT count(*) FROM ingest_batches"))[0][0] == len(acked)


# ----------------------------------------------------------------- binary COPY codec
def test_copy_stream_parser_handles_any_chunking() -> None:
    steps = np.array([0, -5, 2**62], np.int64)
    times = np.array([T0, 0, -1], np.int64)
    values = np.array([1.5, math.nan, -math.inf])
    body = encode_group(3, [("i8", steps), ("ts", times), ("f8", values)])
    data = HEADER + body + TRAILER
    for size in (1, 7, 38, len(data)):
        parser, cols = RowStream(("i8", "ts", "f8")), []
        for k in range(0, len(data), size):
            out = parser.feed(data[k : k + size])
            if out is not None:
                cols.append(out)
        st, tm, v = (np.concatenate([c[i] for c in cols]) for i in range(3))
        assert st.tolist() == steps.tolist() and tm.tolist() == times.tolist()
        assert np.array_equal(v.view(np.int64), values.view(np.int64))  # NaN/Inf bit-exact
