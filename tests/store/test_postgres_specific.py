"""What the backend-agnostic contract suite cannot check about PostgreSQL/TimescaleDB:
the extension and hypertables are real, migrations are idempotent and race-free,
the seed's SQL functions and retention against brute-force SQL,
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
from wanllm_server.store import aggregates as agg
from wanllm_server.store import m4
from wanllm_server.store import postgres_reads as reads
from wanllm_server.store.base import (
    MetricBatch,
    Retention,
    RunCreate,
    Series,
    StoreUnavailable,
    SystemMetricBatch,
)
from wanllm_server.store.blocks import decode_blocks, decode_partials
from wanllm_server.store.migrations import discover, sql_dir
from wanllm_server.store.postgres import PostgresStore
from wanllm_server.store.postgres_copy import (
    HEADER,
    TRAILER,
    decode_fixed,
    encode_group,
    strip_copy,
)
from wanllm_server.store.postgres_schema import migrate

from tests.service_skip import start_or_skip
from tests.services import PostgresCluster
from tests.store.store_helpers import as_triples, bits, brute_m4

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
    assert {r[0] for r in hyper} == {"metric_blocks", "system_metrics"}
    licence = run(sql(timescale_dsn, "SELECT current_setting('timescaledb.license')"))[0][0]
    assert licence in ("apache", "timescale")
    hourly = "SELECT 1 FROM pg_class WHERE relname = 'metrics_hourly'"
    assert run(sql(timescale_dsn, hourly)) == []  # dropped (sql/*/..._drop_hourly)


def test_plain_postgresql_has_no_extension_and_ordinary_tables(
    make_pg_database: Callable[..., str],
) -> None:
    dsn = make_pg_database(timescale=False)
    assert run(with_store(dsn, lambda s: asyncio.sleep(0, s.backend))) == "postgresql"
    assert run(sql(dsn, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")) == []
    query = "SELECT relname::text, relkind::text FROM pg_class WHERE relname = ANY($1)"
    kinds = run(sql(dsn, query, ["metrics", "metric_blocks", "system_metrics", "metrics_hourly"]))
    assert {r[0]: r[1] for r in kinds} == {"metric_blocks": "r", "system_metrics": "r"}
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
        f"{m.component}/{m.version:04d}_{m.name}"
        for m in discover("postgres")
        if "apache" in m.modes
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
    assert removed == {
        "metrics": int((~keep_m).sum()),
        "system_metrics": int((~keep_s).sum()),
        "media": 0,
    }
    left_sql = "SELECT min(min_step), sum(n) FROM metric_blocks WHERE run_id = $1"
    left = run(sql(pg_dsn, left_sql, rid))[0]
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
    cluster = start_or_skip(lambda: PostgresCluster(timescaledb=True).start())
    yield cluster
    cluster.destroy()


def test_database_stop_mid_ingest_then_recovery_exactly_once(own_cluster: PostgresCluster) -> None:
    dsn = own_cluster.create_database("fault")
    per = 2_000

    async def go() -> tuple[int, set[int], int, Series]:
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
        points = await store.history(r.id, "loss")
        await store.close()
        return count, acked, unavailable, points

    count, acked, unavailable, points = run(go())
    assert unavailable >= 3
    assert len(np.unique(points.steps)) == len(points)  # every acknowledged point exactly once
    total = (len(points), len(np.unique(points.values)))
    assert total == (len(acked) * per, len(acked)) and count == total[0]
    assert acked == set(range(len(acked)))
    assert run(sql(dsn, "SELECT count(*) FROM ingest_batches"))[0][0] == len(acked)


# ----------------------------------------------------------------- binary COPY codec
def test_copy_codec_round_trips_bit_exact() -> None:
    steps = np.array([0, -5, 2**62], np.int64)
    times = np.array([T0, 0, -1], np.int64)
    values = np.array([1.5, math.nan, -math.inf])
    body = encode_group(3, [("i8", steps), ("ts", times), ("f8", values)])
    st, tm, v = decode_fixed(strip_copy(HEADER + body + TRAILER), ("i8", "ts", "f8"))
    assert st.tolist() == steps.tolist() and tm.tolist() == times.tolist()
    assert np.array_equal(v.view(np.int64), values.view(np.int64))  # NaN/Inf bit-exact


# ----------------------------------------------------------------- ingest path (issues 2, 3)
async def _db_tiers(dsn: str, run_id: uuid.UUID, name: str) -> agg.TierRows:
    """Stored tier partials of one series plus those of its open tail's points
    (as readers add them), the partials of a bucket merged, sorted by (level, bucket)."""
    rows = await sql(
        dsn,
        "SELECT level, n, data FROM metric_tier_blocks WHERE run_id = $1 AND metric_name = $2",
        run_id, name,
    )  # fmt: skip
    tail = await sql(
        dsn,
        "SELECT steps, times, vals, n FROM metric_tail WHERE run_id = $1 AND metric_name = $2",
        run_id, name,
    )  # fmt: skip
    st, tm, v = decode_blocks([tuple(r) for r in tail])
    t = agg.tier_rows(np.zeros(len(st), np.int64), st, tm, v)
    parts = agg.concat_partials([t.partials, *(decode_partials(r["data"], r["n"]) for r in rows)])
    level = np.concatenate(
        [t.level, np.repeat(np.array([r["level"] for r in rows], np.int64), [r["n"] for r in rows])]
    )
    return agg.merge_tier_rows(agg.TierRows(np.zeros(len(parts), np.int64), level, parts))


def _expected_tiers(steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> agg.TierRows:
    return agg.merge_tier_rows(agg.tier_rows(np.zeros(len(steps), np.int64), steps, times, values))


def _same_partials(got: np.ndarray, want: np.ndarray) -> None:
    """Equal partials; among points tied on (step, time) any one may be first/last/min/max."""
    assert got.dtype == want.dtype and len(got) == len(want)
    for f in ("bucket", "count", "nonfinite"):
        assert got[f].tolist() == want[f].tolist(), f
    for p in ("first", "last", "min", "max"):
        for f in ("step", "time"):
            assert got[f"{p}_{f}"].tolist() == want[f"{p}_{f}"].tolist(), f"{p}_{f}"
        if p in ("min", "max"):
            assert np.array_equal(got[f"{p}_value"], want[f"{p}_value"], equal_nan=True)


def test_tiny_batches_keep_one_exact_tier_row_per_bucket(pg_dsn: str) -> None:
    """300 ten-point batches (out of order, duplicates, NaN/Inf) leave exactly the
    merged tiers of all points, and downsampling equals M4 over the raw points."""
    rng = np.random.default_rng(7)
    n = 3_000
    steps = np.arange(n, dtype=np.int64)
    steps[1000:1100] = steps[1000:1100][::-1]  # out of order
    steps[2000:2050] = 1500  # duplicates
    times = T0 + steps * 1000
    values = rng.standard_normal(n)
    values[[5, 600, 2999]] = [math.nan, math.inf, -math.inf]
    values[700:716] = math.nan  # a whole level-4 bucket without finite values

    async def go(store: PostgresStore) -> Any:
        r, _ = await store.create_run(RunCreate(project="p"))
        for i in range(0, n, 10):
            sl = slice(i, i + 10)
            await store.write_metrics(batch(r.id, "x", steps[sl], times[sl], values[sl], f"b{i}"))
        down = await store.downsample(r.id, "x", 50)
        return r.id, down, await store.stats(r.id, "x")

    rid, down, stats = run(with_store(pg_dsn, go))
    got, want = run(_db_tiers(pg_dsn, rid, "x")), _expected_tiers(steps, times, values)
    assert got.level.tolist() == want.level.tolist()
    _same_partials(got.partials, want.partials)
    ref = m4.m4_from_raw(Series(steps, times, values), down.bucket_width)
    assert down.bucket_count.tolist() == ref.bucket_count.tolist()
    assert np.array_equal(down.bucket_min, ref.bucket_min, equal_nan=True)
    assert np.array_equal(down.bucket_max, ref.bucket_max, equal_nan=True)
    finite = values[np.isfinite(values)]
    assert stats.count == n and stats.finite_count == len(finite)
    assert stats.avg_value == pytest.approx(finite.mean(), rel=1e-12)
    assert stats.std_dev == pytest.approx(finite.std(ddof=1), rel=1e-9)


def test_relogged_buckets_merge_exactly(pg_dsn: str) -> None:
    """Batches re-logging steps of earlier ones: the stored partials of a bucket
    merge to the exact tiers, and downsampling equals M4 over the raw points."""
    rng = np.random.default_rng(9)
    parts = [np.arange(5_000), np.arange(1_000, 3_000), np.arange(100, 110), [4_999, 6_000]]
    steps = np.concatenate(parts).astype(np.int64)
    times = T0 + rng.integers(0, 10**9, len(steps))
    values = rng.standard_normal(len(steps))
    values[1_200:1_264] = math.nan  # a filled level-6 bucket without finite values
    ranges = [(0, 6_000), (1_000, 2_999), (37, 4_444)]

    async def go(store: PostgresStore) -> Any:
        r, _ = await store.create_run(RunCreate(project="p"))
        a = 0
        for k, part in enumerate(parts):
            sl = slice(a, a + len(part))
            await store.write_metrics(batch(r.id, "x", steps[sl], times[sl], values[sl], f"b{k}"))
            a += len(part)
        downs = [await store.downsample(r.id, "x", 40, start_step=lo, end_step=hi)
                 for lo, hi in ranges]  # fmt: skip
        return r.id, downs

    rid, downs = run(with_store(pg_dsn, go))
    got, want = run(_db_tiers(pg_dsn, rid, "x")), _expected_tiers(steps, times, values)
    assert got.level.tolist() == want.level.tolist()
    _same_partials(got.partials, want.partials)
    for (lo, hi), down in zip(ranges, downs, strict=True):
        w, expected, bands = brute_m4(steps.tolist(), times.tolist(), values.tolist(), lo, hi, 40)
        assert down.bucket_width == w and as_triples(down.points) == expected
        assert down.bucket_start.tolist() == sorted(bands)
        assert down.bucket_count.tolist() == [bands[b][0] for b in sorted(bands)]
        assert bits(down.bucket_min) == bits([bands[b][1] for b in sorted(bands)])
        assert bits(down.bucket_max) == bits([bands[b][2] for b in sorted(bands)])


def test_concurrent_writers_of_the_same_series_stay_exact(pg_dsn: str) -> None:
    """Four connections writing interleaved batches of the same two series: stats,
    latest and tiers equal those of all the points (no deadlock)."""
    writers, per, size = 4, 25, 40
    rng = np.random.default_rng(3)
    total = writers * per * size
    steps = rng.permutation(total).astype(np.int64)
    times = T0 + rng.integers(0, 3 * HOUR, total)
    values = rng.standard_normal(total)

    async def go(store: PostgresStore) -> Any:
        r, _ = await store.create_run(RunCreate(project="p"))

        async def writer(w: int) -> None:
            for k in range(per):
                a = (k * writers + w) * size
                sl = slice(a, a + size)
                b = MetricBatch(
                    batch_id=f"w{w}-{k}", run_ids=[r.id], names=["b", "a"],
                    run_idx=np.zeros(size, np.int32),
                    name_idx=(np.arange(size) % 2).astype(np.int32),
                    steps=steps[sl], times=times[sl], values=values[sl],
                )  # fmt: skip
                await store.write_metrics(b)

        await asyncio.gather(*(writer(w) for w in range(writers)))
        return r.id, [await store.stats(r.id, m) for m in "ab"]

    rid, stats = run(with_store(pg_dsn, go))
    name_of = np.where(np.arange(total) % size % 2 == 0, "b", "a")
    for m, st in zip("ab", stats, strict=True):
        sel = name_of == m
        assert st.count == sel.sum() and st.min_value == values[sel].min()
        assert st.avg_value == pytest.approx(values[sel].mean(), rel=1e-12)
        assert st.std_dev == pytest.approx(values[sel].std(ddof=1), rel=1e-9)
        got = run(_db_tiers(pg_dsn, rid, m))
        want = _expected_tiers(steps[sel], times[sel], values[sel])
        _same_partials(got.partials, want.partials)


def test_auto_steps_are_written_back_to_the_batch(pg_dsn: str) -> None:
    """After write_metrics the batch carries the stored steps (live fan-out publishes it)."""

    async def go(store: PostgresStore) -> tuple[list[int], list[int], list[int]]:
        r, _ = await store.create_run(RunCreate(project="p"))
        await store.write_metrics(batch(r.id, "x", [0, 1, 2, 3, 4], [T0] * 5, [0.0] * 5, "b0"))
        b = batch(r.id, "x", [0, 0, 9, 0], [T0 + 1] * 4, [1.0, 2.0, 3.0, 4.0], "b1")
        b.auto_step = np.array([True, True, False, True])
        await store.write_metrics(b)
        hist = await store.history(r.id, "x", start_time=T0 + 1)
        return b.steps.tolist(), hist.steps.tolist(), hist.values.tolist()

    steps, stored, values = run(with_store(pg_dsn, go))
    assert steps == [5, 6, 9, 10]
    logged = [1.0, 2.0, 3.0, 4.0]
    assert sorted(zip(stored, values, strict=True)) == list(zip(steps, logged, strict=True))


def test_large_series_read_in_parallel_ranges_equal_one_read(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Big series are read as several step ranges on connections sharing a snapshot:
    same points, same order, with step/time filters, and bulk chunks that add up."""
    monkeypatch.setattr(reads, "PARALLEL_POINTS", 100)
    monkeypatch.setattr(reads, "SEGMENT_POINTS", 70)
    rng = np.random.default_rng(5)
    steps = np.concatenate([np.arange(500), np.arange(200, 260), [10**12]]).astype(np.int64)
    times = T0 + rng.integers(0, 10**9, len(steps))
    values = rng.standard_normal(len(steps))

    async def go(store: PostgresStore) -> Any:
        r, _ = await store.create_run(RunCreate(project="p"))
        await store.write_metrics(batch(r.id, "x", steps, times, values, "b"))
        whole = await store.history(r.id, "x")
        window = await store.history(r.id, "x", start_step=100, end_step=300, start_time=T0 + 10**8)
        chunks = [c async for c in store.bulk_history([r.id], chunk_points=64)]
        return whole, window, chunks

    whole, window, chunks = run(with_store(pg_dsn, go))
    order = np.lexsort((times, steps))
    assert whole.steps.tolist() == steps[order].tolist()
    assert whole.times.tolist() == times[order].tolist()
    assert whole.values.tolist() == values[order].tolist()
    sel = (steps[order] >= 100) & (steps[order] <= 300) & (times[order] >= T0 + 10**8)
    assert window.steps.tolist() == steps[order][sel].tolist()
    assert window.times.tolist() == times[order][sel].tolist()
    assert [len(c.series) for c in chunks] == [64] * (len(steps) // 64) + [len(steps) % 64]
    assert np.concatenate([c.series.times for c in chunks]).tolist() == whole.times.tolist()


def test_migration_merges_tier_rows_appended_by_earlier_versions(
    pg_dsn: str, tmp_path: Any
) -> None:
    """Databases written before tiers were merged at ingest hold several rows per
    bucket: the migration merges them exactly like aggregates.merge_tier_rows."""
    import shutil

    old = tmp_path / "sql"
    shutil.copytree(sql_dir(), old)
    for pattern in ("postgres/0004_*.sql", "postgres/000[89]_*.sql", "timescale/0004_*.sql"):
        for f in old.glob(pattern):
            f.unlink()
    rng = np.random.default_rng(11)
    steps = rng.integers(0, 5_000, 2_000).astype(np.int64)
    times = T0 + rng.integers(0, 10**6, 2_000)
    values = rng.standard_normal(2_000)
    values[:300] = np.round(values[:300])  # ties on the value
    values[300:310] = math.nan
    group = np.zeros(len(steps), np.int64)
    rid = uuid.uuid4()
    appended = [agg.tier_rows(group[s], steps[s], times[s], values[s])
                for s in np.array_split(np.arange(2_000), 7)]  # fmt: skip

    async def go() -> None:
        conn = await asyncpg.connect(pg_dsn)
        try:
            await migrate(conn, root=old)
            cols = ["run_id", "metric_name", "level", *agg.PARTIAL_DTYPE.names]
            for t in appended:
                records = [
                    (rid, "x", int(lv), *p.tolist())
                    for lv, p in zip(t.level, t.partials, strict=True)
                ]
                await conn.copy_records_to_table("metric_tiers", records=records, columns=cols)
            await migrate(conn)
        finally:
            await conn.close()

    run(go())
    got = run(_db_tiers(pg_dsn, rid, "x"))
    want = agg.merge_tier_rows(agg.tier_rows(group, steps, times, values))
    order = np.lexsort((want.partials["bucket"], want.level))
    assert got.level.tolist() == want.level[order].tolist()
    _same_partials(got.partials, want.partials[order])
