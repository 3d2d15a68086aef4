"""The PostgreSQL shortcuts of docs/fast-paths.md against a real server: our own
binary COPY data against asyncpg's public ``copy_records_to_table`` (same rows
stored), and the one SQL literal (a snapshot id) against hostile text."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from wanllm_server.store import postgres_copy as pc
from wanllm_server.store.base import MetricBatch, RunCreate, RunUpdate, Series
from wanllm_server.store.postgres import PostgresStore
from wanllm_server.store.postgres_reads import snapshot_literal

from wanllm_jupyter.core.limits import INT64_MAX, INT64_MIN, MAX_TIME_US, MIN_TIME_US

COLUMNS = ["t", "u", "s", "a", "b", "c", "f", "raw", "doc"]
KINDS = ("ts", "uuid", "text", "i2", "i4", "i8", "f8", "bytes", "jsonb")
TABLE = """CREATE TABLE copy_paths (n serial, t timestamptz, u uuid, s text, a smallint,
    b integer, c bigint, f double precision, raw bytea, doc jsonb)"""
ROWS: list[pc.Row] = [
    (1_700_000_000_123_456, uuid.uuid4(), "loss", 1, 2, 3, 0.5, b"\x00\xff", {"k": [1, None]}),
    (MIN_TIME_US, uuid.UUID(int=0), "", -(2**15), -(2**31), INT64_MIN, -math.inf, b"", []),
    (MAX_TIME_US, uuid.UUID(int=2**128 - 1), "ü'\"\\\u2028日本", 2**15 - 1, 2**31 - 1,
     INT64_MAX, math.nan, b"x" * 70_000, {"ü": "a'b\\c", "n": {"d": 1.5}}),
    (None, None, None, None, None, None, None, None, None),
    (0, uuid.uuid4(), "x" * 10_000, 0, 0, 0, -0.0, bytes(range(256)), "text"),
]  # fmt: skip


Run = Callable[[Any], Any]


@pytest.fixture
def store(make_pg_database: Callable[..., str], run: Run) -> Any:
    """A store's pool: connections with its codecs (int µs timestamps, Python jsonb)."""
    s = PostgresStore(make_pg_database(timescale=True, migrated=True), min_pool=1, max_pool=2)
    run(s.open())
    yield s
    run(s.close())


def stored(
    store: PostgresStore, run: Run, binary: bool, monkeypatch: pytest.MonkeyPatch
) -> list[Any]:
    """The rows as PostgreSQL holds them (their text form) after one copy_rows."""
    monkeypatch.setattr(pc, "BINARY_COPY", binary)

    async def go() -> list[Any]:
        async with store._conn() as conn:
            assert pc.binary_copy(conn) is binary  # the path taken
            async with conn.transaction():
                await conn.execute(TABLE)
                await pc.copy_rows(conn, "copy_paths", COLUMNS, KINDS, ROWS)
                got = await conn.fetch(f"SELECT {', '.join(f'{c}::text' for c in COLUMNS)} "
                                       "FROM copy_paths ORDER BY n")  # fmt: skip
                await conn.execute("DROP TABLE copy_paths")
        return [tuple(r) for r in got]

    return run(go())


def test_binary_copy_stores_what_copy_records_to_table_stores(
    store: PostgresStore, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = stored(store, run, True, monkeypatch)
    public = stored(store, run, False, monkeypatch)
    assert ours == public
    assert len(ours) == len(ROWS) and ours[3] == (None,) * len(COLUMNS)
    assert ours[1][0].startswith("4714-11-24 00:00:00+00 BC") and ours[2][6] == "NaN"
    assert ours[2][2] == ROWS[2][2] and ours[0][7] == "\\x00ff"


def test_an_old_server_takes_the_public_path(
    store: PostgresStore, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pc, "BINARY_COPY_SINCE", (10_000, 0))

    async def go() -> bool:
        async with store._conn() as conn:
            return pc.binary_copy(conn)

    assert pc.BINARY_COPY and run(go()) is False


@pytest.mark.parametrize(
    "hostile",
    ["", "00000003-0000001B-1'; DROP TABLE runs; --", "'", "\\", "00000003-0000001B-1\n",
     "0000 0003-1", "00000003-0000001b-1", "０００-1", "00000003-0000001B-1\x00", "ü-1",
     "E'\\x27'-1", "1", "-1", "00000003--1", "1-2-3-4-5", "11111111111111111-1"],
)  # fmt: skip
def test_a_snapshot_literal_refuses_anything_but_a_snapshot_id(hostile: str) -> None:
    with pytest.raises(ValueError, match="not a snapshot id"):
        snapshot_literal(hostile)


def test_a_snapshot_literal_reads_in_the_exported_snapshot(store: PostgresStore, run: Run) -> None:
    """The literal is what the server takes: a second connection reads the first's
    snapshot (a row committed after the export stays invisible)."""

    async def go() -> tuple[str, int, int]:
        async with store._conn() as a, store._conn() as b:
            await a.execute("CREATE TABLE snap (x int)")
            async with a.transaction(isolation="repeatable_read", readonly=True):
                snapshot = await a.fetchval("SELECT pg_export_snapshot()")
                await b.execute("INSERT INTO snap VALUES (1)")
                async with b.transaction(isolation="repeatable_read", readonly=True):
                    await b.execute(f"SET TRANSACTION SNAPSHOT {snapshot_literal(snapshot)}")
                    seen = await b.fetchval("SELECT count(*) FROM snap")
            now = await b.fetchval("SELECT count(*) FROM snap")
            await a.execute("DROP TABLE snap")
            return snapshot, seen, now

    snapshot, seen, now = run(go())
    assert snapshot_literal(snapshot) == f"'{snapshot}'"
    assert (seen, now) == (0, 1)


def test_a_store_seals_and_reads_alike_on_either_path(
    store: PostgresStore, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sealing tails (the store's COPY: blocks, tails, tier rows) on either path
    leaves the same points and summary."""
    calls: list[int] = []
    encode = pc.encode_rows
    monkeypatch.setattr(pc, "encode_rows", lambda k, r: calls.append(1) or encode(k, r))
    steps = np.arange(1500, dtype=np.int64)
    times = 1_700_000_000_000_000 + steps * 1000
    values = np.where(steps % 7 == 0, np.nan, steps * 0.5)

    async def one(binary: bool) -> tuple[Series, Any]:
        monkeypatch.setattr(pc, "BINARY_COPY", binary)
        r, _ = await store.create_run(RunCreate(project="copy"))
        for lo in range(0, 1500, 100):  # small batches: tails, sealed when the run ends
            sl, zeros = slice(lo, lo + 100), np.zeros(100, np.int32)
            batch = MetricBatch(uuid.uuid4().hex, [r.id], ["m"], zeros, zeros, steps[sl],
                                times[sl], values[sl])  # fmt: skip
            await store.write_metrics(batch)
        await store.update_run(r.id, RunUpdate(state="finished"))
        return await store.history(r.id, "m"), await store.stats(r.id, "m")

    ours = run(one(True))
    sealed_with_ours = len(calls)
    public = run(one(False))
    assert sealed_with_ours > 0 and len(calls) == sealed_with_ours  # each path taken
    for got in (ours[0], public[0]):
        assert got.steps.tolist() == steps.tolist() and got.times.tolist() == times.tolist()
        np.testing.assert_array_equal(got.values, values)
    assert ours[1] == public[1]
