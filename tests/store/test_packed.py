"""Packed storage (docs/storage.md): the block codec, and every read path over
sealed blocks + open tail equal to the raw points logged, on every backend
(SQLite shares the codec and the contract), with thresholds small enough that
batches seal, merge and stay open in one example."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from wanllm_server.store import Store, sqlite_blocks
from wanllm_server.store import aggregates as agg
from wanllm_server.store import blocks as codec
from wanllm_server.store import postgres_blocks as pg_blocks
from wanllm_server.store.base import (
    MetricBatch,
    Retention,
    RunCreate,
    RunUpdate,
    Series,
    StoreUnavailable,
)
from wanllm_server.store.postgres import PostgresStore
from wanllm_server.store.sqlite import SQLiteStore

from tests.store.store_helpers import T0, bits, brute_m4

I64 = hs.integers(-(2**63), 2**63 - 1)
DAY = 86_400_000_000


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds a few points wide: seals, merges and open tails in small data."""
    monkeypatch.setattr(pg_blocks, "SMALL_BLOCK", 6)
    monkeypatch.setattr(pg_blocks, "SEAL_WRITES", 3)
    monkeypatch.setattr(pg_blocks, "SMALL_TIER", 4)
    monkeypatch.setattr(pg_blocks, "BLOCK_POINTS", 16)
    monkeypatch.setattr(sqlite_blocks, "SEAL_POINTS", 12)
    monkeypatch.setattr(sqlite_blocks, "SEAL_MIN", 6)
    monkeypatch.setattr(sqlite_blocks, "SEAL_WRITES", 3)
    monkeypatch.setattr(sqlite_blocks, "SMALL_TIER", 4)
    monkeypatch.setattr(sqlite_blocks, "MERGE_ROWS", 2)
    monkeypatch.setattr(sqlite_blocks, "BLOCK_POINTS", 16)


# ----------------------------------------------------------------- the codec
@settings(max_examples=300, deadline=None)
@given(hs.lists(I64, max_size=40) | hs.lists(hs.integers(-300, 300), max_size=40))
def test_int_columns_round_trip_and_are_never_raw_sized(xs: list[int]) -> None:
    a = np.array(xs, np.int64)
    packed = codec.encode_ints(a)
    assert codec.decode_ints(packed, len(a)).tolist() == xs
    assert len(packed) != 8 * len(a) or not xs  # raw columns are told apart by length
    assert codec.decode_ints(a.tobytes(), len(a)).tolist() == xs  # SQLite's raw blocks
    big_endian = bytes((codec.TAG_BIG_ENDIAN,)) + a.astype(">i8").tobytes()  # SQL migrations
    assert codec.decode_ints(big_endian, len(a)).tolist() == xs


def test_arithmetic_progressions_take_17_bytes() -> None:
    steps = np.arange(10**6, dtype=np.int64) * 3 - 7
    assert len(codec.encode_ints(steps)) == 17
    assert len(codec.encode_ints(np.arange(1000) * 10_000 + T0)) == 17
    assert len(codec.encode_ints(np.array([0, 1, 3, 4, 6], np.int64))) == 9 + 4  # 1-byte deltas


@settings(max_examples=100, deadline=None)
@given(hs.lists(hs.floats(allow_nan=True, allow_infinity=True, width=64), max_size=20))
def test_float_columns_and_partials_round_trip_bit_exact(xs: list[float]) -> None:
    v = np.array(xs, np.float64)
    v[::3] = np.float64(-0.0) if len(v) else v[::3]
    assert bits(codec.decode_floats(codec.encode_floats(v), len(v))) == bits(v)
    if not xs:
        return
    st = np.arange(len(v), dtype=np.int64) * 5
    t = agg.tier_rows(np.zeros(len(v), np.int64), st, T0 + st, v)
    back = codec.decode_partials(codec.encode_partials(t.partials), len(t))
    assert back.tobytes() == t.partials.tobytes()


# ----------------------------------------------------------------- read paths vs raw
Batch = tuple[list[int], list[int], list[float]]
# |values| near float64's max overflow PostgreSQL's Welford merge of the summary
# (an error in SQL, found here; not about blocks): kept below 1e150
VALUES = hs.floats(-1e150, 1e150) | hs.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0])
STEPS = hs.integers(-5, 60) | hs.sampled_from([-(2**63), 2**63 - 1, 2**40])


@hs.composite
def batches(draw: Any) -> list[Batch]:
    """Batches of one series: re-logged and out-of-order steps, duplicates, NaN/±Inf."""
    out = []
    for _ in range(draw(hs.integers(1, 9))):
        n = draw(hs.integers(1, 14))
        steps = draw(hs.lists(STEPS, min_size=n, max_size=n))
        times = draw(hs.lists(hs.integers(0, 50), min_size=n, max_size=n))
        values = draw(hs.lists(VALUES, min_size=n, max_size=n))
        out.append((steps, [T0 + t * 1000 for t in times], values))
    return out


def _batch(rid: uuid.UUID, b: Batch, name: str = "m") -> MetricBatch:
    st, tm, v = (
        np.array(x, dt) for x, dt in zip(b, (np.int64, np.int64, np.float64), strict=False)
    )
    n = len(st)
    return MetricBatch(uuid.uuid4().hex, [rid], [name], np.zeros(n, np.int32),
                       np.zeros(n, np.int32), st, tm, v)  # fmt: skip


def _raw(bs: list[Batch]) -> Series:
    st, tm, v = (np.concatenate([np.array(b[i]) for b in bs]) for i in range(3))
    o = np.lexsort((tm, st))
    return Series(st[o].astype(np.int64), tm[o].astype(np.int64), v[o].astype(np.float64))


def _same_points(got: Series, want: Series) -> None:
    """Equal points in (step, time) order; points tied on (step, time) in any order."""
    assert got.steps.tolist() == want.steps.tolist() and got.times.tolist() == want.times.tolist()
    key = lambda s: sorted(zip(s.steps.tolist(), s.times.tolist(), bits(s.values), strict=False))  # noqa: E731
    assert key(got) == key(want)


async def _check_reads(s: Store, rid: uuid.UUID, raw: Series, lo: int, hi: int) -> None:
    _same_points(await s.history(rid, "m"), raw)
    sel = (raw.steps >= lo) & (raw.steps <= hi)
    window = Series(raw.steps[sel], raw.times[sel], raw.values[sel])
    _same_points(await s.history(rid, "m", start_step=lo, end_step=hi), window)
    tsel = raw.times >= T0 + 20_000
    late = Series(raw.steps[tsel], raw.times[tsel], raw.values[tsel])
    _same_points(await s.history(rid, "m", start_time=T0 + 20_000), late)
    first = await s.history(rid, "m", limit=5)
    assert first.steps.tolist() == raw.steps[:5].tolist()
    chunks = [c.series async for c in s.bulk_history([rid], chunk_points=7)]
    assert all(0 < len(c) <= 7 for c in chunks)
    bulk = Series(*(np.concatenate([getattr(c, f) for c in chunks])
                    for f in ("steps", "times", "values")))  # fmt: skip
    _same_points(bulk, raw)
    for a, z, buckets in ((lo, hi, 3), (int(raw.steps[0]), int(raw.steps[-1]), 4), (0, 60, 2)):
        if a > z:
            continue
        down = await s.downsample(rid, "m", buckets, start_step=a, end_step=z)
        w, _, bands = brute_m4(raw.steps.tolist(), raw.times.tolist(), raw.values.tolist(),
                               a, z, buckets)  # fmt: skip
        assert down.bucket_width == w and down.bucket_start.tolist() == sorted(bands)
        assert down.bucket_count.tolist() == [bands[b][0] for b in sorted(bands)]
        assert bits(down.bucket_min) == bits([bands[b][1] for b in sorted(bands)])
        assert bits(down.bucket_max) == bits([bands[b][2] for b in sorted(bands)])
    stats = await s.stats(rid, "m")
    finite = raw.values[np.isfinite(raw.values)]
    assert stats.count == len(raw) and stats.first_step == raw.steps[0]
    assert stats.last_step == raw.steps[-1]
    if len(finite):
        assert stats.min_value == finite.min() and stats.max_value == finite.max()
    latest = await s.latest(rid, "m")
    t_max = raw.times.max()
    assert latest.time == t_max and latest.step == raw.steps[raw.times == t_max].max()


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(bs=batches(), lo=hs.integers(-5, 30), span=hs.integers(0, 40))
def test_every_read_path_equals_the_raw_points(
    store: Store, run: Callable[[Any], Any], small_blocks: None, bs: list[Batch], lo: int, span: int
) -> None:
    async def go() -> None:
        r, _ = await store.create_run(RunCreate(project="packed"))
        for b in bs:
            await store.write_metrics(_batch(r.id, b))
        await _check_reads(store, r.id, _raw(bs), lo, lo + span)
        await store.update_run(r.id, RunUpdate(state="finished"))  # seals every tail
        await _check_reads(store, r.id, _raw(bs), lo, lo + span)

    run(go())


def test_bulk_history_keeps_its_points_while_seals_move_them(
    store: Store, run: Callable[[Any], Any], small_blocks: None
) -> None:
    """Writes sealing the tail between two chunks of a bulk read lose none of the
    points the read started with, and the chunks stay in (step, time) order."""
    bs = [([i * 4 + j for j in range(4)], [T0 + i] * 4, [float(i)] * 4) for i in range(8)]
    later = [([100 + i], [T0 + 100 + i], [0.5]) for i in range(8)]

    async def go() -> None:
        r, _ = await store.create_run(RunCreate(project="p"))
        for b in bs:
            await store.write_metrics(_batch(r.id, b))
        chunks = []
        async for c in store.bulk_history([r.id], chunk_points=4):
            if not chunks:
                for b in later:  # several seals of the series
                    await store.write_metrics(_batch(r.id, b))
            chunks.append(c.series)
        got = list(zip(*(np.concatenate([getattr(c, f) for c in chunks]).tolist()
                         for f in ("steps", "times", "values")), strict=True))  # fmt: skip
        assert got == sorted(got, key=lambda p: p[:2])
        want = list(zip(*(np.concatenate(x).tolist() for x in zip(*bs, strict=True)), strict=True))
        assert got[: len(want)] == want  # later points come after them, if at all

    run(go())


# ----------------------------------------------------------------- seals, crashes, retention
@pytest.fixture(params=["timescaledb", "postgresql"])
def pg_store(
    request: pytest.FixtureRequest, make_pg_database: Callable[..., str], run: Any
) -> Iterator[PostgresStore]:
    s = PostgresStore(make_pg_database(timescale=request.param == "timescaledb"), max_pool=6)
    run(s.open())
    yield s
    run(s.close())


async def _rows(s: PostgresStore, sql: str, *args: Any) -> list[Any]:
    async with s._conn() as conn:
        return list(await conn.fetch(sql, *args))


def _sqlite_rows(s: Store, sql: str, *args: Any) -> list[Any]:
    assert isinstance(s, SQLiteStore)
    with contextlib.closing(sqlite3.connect(s.path)) as c:
        return c.execute(sql, args).fetchall()


async def _sealed_blocks(s: Store, rid: uuid.UUID) -> int:
    if isinstance(s, PostgresStore):
        return int(
            (await _rows(s, "SELECT count(*) FROM metric_blocks WHERE run_id = $1", rid))[0][0]
        )
    sql = (
        "SELECT count(*) FROM metric_blocks b JOIN metric_series s ON s.id = b.series_id "
        "WHERE s.run_id = ?"
    )
    return int(_sqlite_rows(s, sql, str(rid))[0][0])


def test_concurrent_writers_of_one_series_seal_without_loss(
    store: Store, run: Any, small_blocks: None
) -> None:
    rng = np.random.default_rng(1)
    bs = [([int(x) for x in rng.integers(0, 500, 5)], [T0 + i] * 5, rng.standard_normal(5).tolist())
          for i in range(80)]  # fmt: skip

    async def go() -> None:
        r, _ = await store.create_run(RunCreate(project="p"))

        async def writer(k: int) -> None:
            for b in bs[k::4]:
                await store.write_metrics(_batch(r.id, b))

        await asyncio.gather(*(writer(k) for k in range(4)))
        await _check_reads(store, r.id, _raw(bs), 100, 300)
        assert await _sealed_blocks(store, r.id) > 0  # the tail was sealed along the way

    run(go())


def test_a_crash_between_tail_and_seal_loses_nothing(
    pg_store: PostgresStore, run: Any, small_blocks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection dies inside the seal, after its DELETE of the tail: the batch
    is rolled back whole, and its retry (same batch id) seals with nothing lost."""
    bs = [([i * 4 + j for j in range(4)], [T0 + i] * 4, [float(i)] * 4) for i in range(7)]
    seal = pg_blocks.seal
    crashed: list[int] = []

    async def crashing(conn: Any, keys: Any, **kw: Any) -> None:
        if keys and not crashed:
            crashed.append(len(keys))
            await conn.execute("DELETE FROM metric_tail")
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        await seal(conn, keys, **kw)

    monkeypatch.setattr(pg_blocks, "seal", crashing)

    async def go() -> None:
        r, _ = await pg_store.create_run(RunCreate(project="p"))
        for b in bs:
            mb = _batch(r.id, b)
            for _ in range(3):
                try:
                    await pg_store.write_metrics(mb)
                    break
                except StoreUnavailable:  # the killed connection: the client retries it
                    await asyncio.sleep(0.05)
        assert crashed
        await _check_reads(pg_store, r.id, _raw(bs), 0, 30)

    run(go())


def test_retention_drops_old_points_of_blocks_and_tail(
    store: Store, run: Any, small_blocks: None
) -> None:
    """Points older than the window go, from sealed blocks, blocks straddling the
    cutoff and the open tail alike; the rest reads back exactly."""
    now = T0 + 10 * DAY
    steps = np.arange(40, dtype=np.int64)
    times = T0 + steps * (DAY // 4)  # 10 days
    big = (steps[:20].tolist(), times[:20].tolist(), np.sin(steps[:20]).tolist())
    small = [(steps[i : i + 2].tolist(), times[i : i + 2].tolist(), [float(i), -1.0])
             for i in range(20, 40, 2)]  # fmt: skip

    async def go() -> None:
        r, _ = await store.create_run(RunCreate(project="p"))
        for b in [big, *small]:
            await store.write_metrics(_batch(r.id, b))
        removed = await store.apply_retention(Retention(metrics_days=6), now)
        raw = _raw([big, *small])
        keep = raw.times >= now - 6 * DAY
        assert removed["metrics"] == int((~keep).sum())
        kept = Series(raw.steps[keep], raw.times[keep], raw.values[keep])
        _same_points(await store.history(r.id, "m"), kept)
        await _check_reads(store, r.id, kept, 20, 30)

    run(go())


def test_migration_packs_existing_rows(
    make_pg_database: Callable[..., str], run: Any, tmp_path: Any
) -> None:
    """Rows written by the one-row-a-point schema (0001-0007) read back exactly after
    the 0008 migration packs them: points, metadata kept, tiers, stats."""
    import shutil

    import asyncpg
    from wanllm_server.store.migrations import sql_dir
    from wanllm_server.store.postgres_schema import migrate

    old = tmp_path / "sql"
    shutil.copytree(sql_dir(), old)
    for pattern in ("postgres/000[89]_*.sql", "timescale/0004_*.sql"):
        for f in old.glob(pattern):
            f.unlink()
    dsn = make_pg_database(timescale=True)
    rng = np.random.default_rng(4)
    n = 3_000
    steps = rng.integers(-50, 2_500, n).astype(np.int64)
    times = T0 + rng.integers(0, 10**9, n)
    values = rng.standard_normal(n)
    values[:5] = [math.nan, math.inf, -math.inf, -0.0, 5e-324]
    rid = uuid.uuid4()

    async def go() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, root=old)
            await conn.execute(
                "INSERT INTO runs (id, project, name, state) VALUES ($1, 'p', 'r', 'running')", rid
            )
            await conn.copy_records_to_table(
                "metrics",
                records=[
                    (T0_dt(t), rid, "m", int(s), float(v), None)
                    for s, t, v in zip(steps, times, values, strict=True)
                ],
                columns=["time", "run_id", "metric_name", "step", "value", "metadata"],
            )
            await conn.execute(
                "UPDATE metrics SET metadata = '{\"k\": 1}'"
                " WHERE step = (SELECT min(step) FROM metrics)"
            )
            await conn.execute(
                "INSERT INTO metric_summaries (run_id, metric_name, count) VALUES ($1, 'm', 1)", rid
            )
            await migrate(conn)
            meta = await conn.fetchval("SELECT metadata::text FROM metric_blocks LIMIT 1")
        finally:
            await conn.close()
        s = PostgresStore(dsn)
        await s.open()
        try:
            async with s._tx() as c:  # the summary and tiers as the store derives them
                from wanllm_server.store.postgres_maintenance import rebuild_series

                await rebuild_series(c, rid, "m")
            raw = Series(*(a[np.lexsort((times, steps))] for a in (steps, times, values)))
            await _check_reads(s, rid, raw, 100, 900)
        finally:
            await s.close()
        return meta

    meta = run(go())
    assert meta is not None and '"k": 1' in meta


def T0_dt(us: int) -> Any:
    import datetime as dt

    return dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=int(us))


# ----------------------------------------------------------------- SQLite specifics
_CHILD = """
import asyncio, os, sys, uuid
import numpy as np
from wanllm_server.store import sqlite_blocks, sqlite_ingest
from wanllm_server.store.base import MetricBatch
from wanllm_server.store.sqlite import SQLiteStore

sqlite_blocks.SEAL_MIN, sqlite_blocks.SEAL_WRITES = 6, 3

def crashing(c, *args):
    c.execute("DELETE FROM metric_tail")
    os._exit(3)  # the process dies inside the seal, its transaction open

sqlite_ingest.seal = crashing

async def main(path, rid, t0):
    s = SQLiteStore(path)
    await s.open()
    for i in range(7):
        st = np.arange(i * 4, i * 4 + 4, dtype=np.int64)
        b = MetricBatch(f"b{i}", [uuid.UUID(rid)], ["m"], np.zeros(4, np.int32),
                        np.zeros(4, np.int32), st, np.full(4, t0 + i), np.full(4, float(i)))
        await s.write_metrics(b)
        print(i, flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def test_a_sqlite_process_killed_inside_a_seal_loses_nothing(
    tmp_path: Any, run: Any, small_blocks: None
) -> None:
    """A writer process dies inside a seal, after deleting the tail: the batches it
    acknowledged read back exactly, the one in flight is absent until the client
    retries it (same batch id), and then everything reads back."""
    import subprocess
    import sys

    path = tmp_path / "crash.db"
    s = SQLiteStore(path)
    run(s.open())
    try:
        r, _ = run(s.create_run(RunCreate(project="p")))
        run(s.close())
        child = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), str(r.id), str(T0)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert child.returncode == 3, child.stderr
        acked = [int(x) for x in child.stdout.split()]
        assert acked == [0, 1]  # the third write of the series seals (SEAL_WRITES = 3)
        bs = [([i * 4 + j for j in range(4)], [T0 + i] * 4, [float(i)] * 4) for i in range(7)]
        run(s.open())
        _same_points(run(s.history(r.id, "m")), _raw(bs[:2]))
        for i in range(2, 7):
            b = _batch(r.id, bs[i])
            b.batch_id = f"b{i}"
            assert not run(s.write_metrics(b)).duplicate
        run(_check_reads(s, r.id, _raw(bs), 0, 30))
    finally:
        run(s.close())


def test_sqlite_migration_packs_existing_rows(tmp_path: Any, run: Any) -> None:
    """A database of raw blocks and raw tier rows (schema 0001-0002) reads back
    exactly once migration 0003 and the store's packing ran: points, metadata,
    tiers, stats; no raw column is left."""
    import shutil

    from wanllm_server.store.migrations import sql_dir
    from wanllm_server.store.sqlite_blocks import SERIES_COLS, summary_params
    from wanllm_server.store.sqlite_schema import migrate

    old = tmp_path / "sql"
    shutil.copytree(sql_dir(), old)
    for f in old.glob("sqlite/0003_*.sql"):
        f.unlink()
    path = tmp_path / "old.db"
    rng = np.random.default_rng(5)
    bs: list[Batch] = []
    rid = uuid.uuid4()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as c:
        migrate(c, root=old)
        c.execute(
            "INSERT INTO runs (id, project, name, state, created_at, updated_at) "
            "VALUES (?, 'p', 'r', 'running', 0, 0)",
            (str(rid),),
        )
        for k in range(30):  # one raw block and raw tier rows a batch, as the old writer did
            n = int(rng.integers(1, 300))
            st = np.sort(rng.integers(-50, 3_000, n)).astype(np.int64)
            tm = T0 + rng.integers(0, 10**9, n)
            v = rng.standard_normal(n)
            v[: min(n, 3)] = [math.nan, math.inf, -0.0][: min(n, 3)]
            o = np.lexsort((tm, st))
            st, tm, v = st[o], tm[o], v[o]
            bs.append((st.tolist(), tm.tolist(), v.tolist()))
            if k == 0:
                s0 = agg.summarize(Series(st, tm, v))
                assert s0 is not None
                c.execute(
                    f"INSERT INTO metric_series (id, run_id, name, {SERIES_COLS}) "
                    f"VALUES (1, ?, 'm', {','.join('?' * 13)})",
                    (str(rid), *summary_params(s0)),
                )
            meta = '[[0, {"k": 1}]]' if k == 3 else None
            c.execute(
                "INSERT INTO metric_blocks (series_id, n, min_step, max_step, min_time, max_time, "
                "steps, times, vals, metadata) VALUES (1,?,?,?,?,?,?,?,?,?)",
                (n, int(st[0]), int(st[-1]), int(tm.min()), int(tm.max()), st.tobytes(),
                 tm.tobytes(), v.tobytes(), meta),
            )  # fmt: skip
            t = agg.tier_rows(np.zeros(n, np.int64), st, tm, v, presorted=True)
            for lv in np.unique(t.level).tolist():
                p = t.partials[t.level == lv]
                c.execute(
                    "INSERT INTO metric_tiers (series_id, level, n, min_bucket, max_bucket, data) "
                    "VALUES (1, ?, ?, ?, ?, ?)",
                    (lv, len(p), int(p["bucket"][0]), int(p["bucket"][-1]), p.tobytes()),
                )
    s = SQLiteStore(path)
    run(s.open())
    try:
        run(_check_reads(s, rid, _raw(bs), 100, 900))
        assert _sqlite_rows(s, "SELECT count(*) FROM series_to_pack") == [(0,)]
        blocks = _sqlite_rows(s, "SELECT n, steps, times, vals, metadata FROM metric_blocks")
        assert sum(b[0] for b in blocks) == sum(len(b[0]) for b in bs)
        assert all(len(b[1]) != 8 * b[0] and len(b[2]) != 8 * b[0] for b in blocks)  # packed
        meta = [m for b in blocks if b[4] for m in orjson.loads(b[4])]
        assert [m[1] for m in meta] == [{"k": 1}]
        tiers = _sqlite_rows(s, "SELECT data, n FROM metric_tiers")
        assert sum(len(d) for d, _ in tiers) < sum(120 * n for _, n in tiers)  # packed
    finally:
        run(s.close())


def test_sqlite_tails_stay_bounded_and_a_finished_run_is_all_sealed(
    tmp_path: Any, run: Any
) -> None:
    """Small batches (the default thresholds): the tail holds at most SEAL_WRITES
    rows and under SEAL_POINTS points, tier levels keep under MERGE_ROWS small
    rows and repeat few buckets, consecutive steps and times pack to 17 bytes
    a column; the run's end seals its tail."""
    s = SQLiteStore(tmp_path / "b.db")
    run(s.open())
    per = 100
    try:
        r, _ = run(s.create_run(RunCreate(project="p")))
        for i in range(300):
            st = list(range(i * per, (i + 1) * per))
            run(s.write_metrics(_batch(r.id, (st, [T0 + x * 1000 for x in st], [0.5] * per))))
            tail = _sqlite_rows(s, "SELECT count(*), coalesce(sum(n), 0) FROM metric_tail")[0]
            assert tail[0] <= sqlite_blocks.SEAL_WRITES and tail[1] < sqlite_blocks.SEAL_POINTS
            assert _sqlite_rows(s, "SELECT tail_points FROM metric_series") == [(tail[1],)]
        levels = _sqlite_rows(
            s, "SELECT level, sum(n < ?), count(*), sum(n) FROM metric_tiers GROUP BY level",
            sqlite_blocks.SMALL_TIER,
        )  # fmt: skip
        assert len(levels) == len(agg.TIER_LEVELS)
        for level, small, rows, partials in levels:  # a row repeats at most one bucket
            assert small < sqlite_blocks.MERGE_ROWS
            assert partials <= -(-30_000 >> level) + rows
        run(s.update_run(r.id, RunUpdate(state="finished")))
        assert _sqlite_rows(s, "SELECT count(*) FROM metric_tail") == [(0,)]
        blocks = _sqlite_rows(s, "SELECT n, length(steps), length(times) FROM metric_blocks")
        assert sum(n for n, _, _ in blocks) == 300 * per
        assert all(n <= sqlite_blocks.BLOCK_POINTS and ls == lt == 17 for n, ls, lt in blocks)
        full = run(s.history(r.id, "m"))
        assert full.steps.tolist() == list(range(300 * per))
    finally:
        run(s.close())
