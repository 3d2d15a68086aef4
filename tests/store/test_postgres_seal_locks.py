"""PostgreSQL seals lock nothing writers wait on (issue 14): while a seal of a
series is under way, other writers of that series (and of the rest of the run)
commit their batches, a writer that finds the series due again skips the seal
under way instead of waiting, and the run's end waits for it; nothing is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from wanllm_server.store import postgres_blocks as pg_blocks
from wanllm_server.store.base import RunCreate, RunUpdate, Series
from wanllm_server.store.postgres import PostgresStore

from tests.store import test_packed
from tests.store.store_helpers import T0
from tests.store.test_packed import _batch, _check_reads, _raw, _same_points

small_blocks, pg_store = test_packed.small_blocks, test_packed.pg_store  # fixtures, by name

# how long a write may stay blocked before the test calls it stuck behind the seal
# (a hang detector, not a speed bound: the writes take milliseconds)
STUCK = 60.0


def _held_seal(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Make the first seal stop after its DELETEs, before writing its rows, until
    the returned ``release`` is set (``held`` is set once it stopped)."""
    held, release = asyncio.Event(), asyncio.Event()
    copy = pg_blocks.copy_encoded

    async def stalling(conn: Any, e: pg_blocks.Encoded) -> None:
        if not held.is_set():
            held.set()
            await release.wait()
        await copy(conn, e)

    monkeypatch.setattr(pg_blocks, "copy_encoded", stalling)
    return held, release


async def _held_write(
    s: PostgresStore, bs: list[Any], held: asyncio.Event
) -> tuple[Any, asyncio.Task[Any]]:
    """A run whose third batch ``bs[2]`` makes its writer seal (SEAL_WRITES = 3):
    its id and that write, once the seal is held (:func:`_held_seal`)."""
    r, _ = await s.create_run(RunCreate(project="p"))
    for b in bs[:2]:
        await s.write_metrics(_batch(r.id, b))
    sealing = asyncio.create_task(s.write_metrics(_batch(r.id, bs[2])))
    await asyncio.wait_for(held.wait(), STUCK)
    return r.id, sealing


async def _same_series(s: PostgresStore, rid: Any, want: dict[str, Series]) -> None:
    """Each series' history and count equal the points logged."""
    for name, raw in want.items():
        _same_points(await s.history(rid, name), raw)
        assert (await s.stats(rid, name)).count == len(raw)


@pytest.mark.usefixtures("small_blocks")
def test_writers_of_a_series_commit_while_its_seal_is_under_way(
    pg_store: PostgresStore, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batch 3 of "m" makes its writer seal "m" (SEAL_WRITES = 3), and the seal is
    held open; meanwhile another writer writes 7 more batches of "m" and "n" (one
    of them finds "m" due again and skips the held seal). All of them commit
    while the seal is still held (before the change they waited on the summary
    rows the seal locked); then the seal ends and every point reads back."""
    held, release = _held_seal(monkeypatch)
    bs = [([i * 4 + j for j in range(4)], [T0 + i] * 4, [float(i)] * 4) for i in range(10)]

    async def go() -> None:
        rid, sealing = await _held_write(pg_store, bs, held)
        try:
            for b in bs[3:]:
                await asyncio.wait_for(pg_store.write_metrics(_batch(rid, b)), STUCK)
                await asyncio.wait_for(pg_store.write_metrics(_batch(rid, b, "n")), STUCK)
            assert not sealing.done()  # the seal was held all along
        finally:
            release.set()
        await sealing
        await _same_series(pg_store, rid, {"m": _raw(bs), "n": _raw(bs[3:])})
        await pg_store.update_run(rid, RunUpdate(state="finished"))
        await _same_series(pg_store, rid, {"m": _raw(bs), "n": _raw(bs[3:])})
        async with pg_store._conn() as conn:
            assert await conn.fetchval("SELECT count(*) FROM metric_tail") == 0

    run(go())


@pytest.mark.usefixtures("small_blocks")
def test_the_run_end_waits_for_a_seal_under_way_and_seals_the_rest(
    pg_store: PostgresStore, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run ending while one of its series' seals is held: its end waits for that
    seal (it does not seal the same rows twice), then seals every tail."""
    held, release = _held_seal(monkeypatch)
    bs = [([i * 2, i * 2 + 1], [T0 + i] * 2, [float(i), -float(i)]) for i in range(5)]

    async def go() -> None:
        rid, sealing = await _held_write(pg_store, bs, held)
        for b in bs[3:]:
            await asyncio.wait_for(pg_store.write_metrics(_batch(rid, b)), STUCK)
        ending = asyncio.create_task(pg_store.update_run(rid, RunUpdate(state="finished")))
        await asyncio.sleep(0.2)  # lets the end reach the seal lock (either order is correct)
        release.set()
        await sealing
        await ending
        await _check_reads(pg_store, rid, _raw(bs), 2, 7)
        async with pg_store._conn() as conn:
            assert await conn.fetchval("SELECT count(*) FROM metric_tail") == 0

    run(go())
