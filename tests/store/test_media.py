"""The media part of the storage contract, on every backend: round trips, dedup,
key kinds, replacement, deletion and retention."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from wanllm_server.store import InvalidBatch, Retention, RunCreate, RunNotFound, Store
from wanllm_server.store.base import MediaNotFound

from tests.store.media_samples import (
    T0,
    arrow,
    histogram_entry,
    image_entry,
    png,
    sample_table,
    table_entry,
    write,
)

DAY = 86_400_000_000


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def stored(store: Store, *items: bytes) -> list[bool]:
    return [await store.media_blob(sha(i)) is not None for i in items]


async def test_round_trip_of_every_kind(store: Store) -> None:
    run, _ = await store.create_run(RunCreate(project="m"))
    a, b = png(4, 3, 1), png(6, 5, 2)
    table = sample_table(5)
    counts = [0.0, 2.5, 1e300, 7.0]
    batch = write(
        run.id,
        image_entry("img", 2, a, b),
        image_entry("img", 0, b),
        histogram_entry("w/grad", 1, counts),
        table_entry("preds", 3, table),
    )
    assert await store.write_media(batch)
    keys = await store.media_keys(run.id)
    assert [(k.key, k.kind, k.steps, k.first_step, k.last_step, k.last_time) for k in keys] == [
        ("img", "image", 2, 0, 2, T0 + 2),
        ("preds", "table", 1, 3, 3, T0 + 3),
        ("w/grad", "histogram", 1, 1, 1, T0 + 1),
    ]
    steps, images = await store.images(run.id, "img")
    assert steps == 2
    assert [(i.step, i.index, i.caption, i.width, i.height, i.digest) for i in images] == [
        (0, 0, "caption 0", 6, 5, sha(b)),
        (2, 0, "caption 0", 4, 3, sha(a)),
        (2, 1, "caption 1", 6, 5, sha(b)),
    ]
    assert [i.time for i in images] == [T0, T0 + 2, T0 + 2]
    assert (await store.media_blob(sha(a))).data == a  # type: ignore[union-attr]
    assert (await store.media_blob(sha(a))).media_type == "image/png"  # type: ignore[union-attr]
    n, hists = await store.histograms(run.id, "w/grad")
    assert n == 1 and hists[0].step == 1 and hists[0].time == T0 + 1
    assert hists[0].counts.tolist() == counts
    assert hists[0].edges.tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    at, data, all_steps = await store.table(run.id, "preds")
    assert (at.step, at.rows, at.digest) == (3, 5, sha(arrow(table)))
    assert data == arrow(table) and [s.step for s in all_steps] == [3]


async def test_reads_by_step_range_and_budget(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    entries = [histogram_entry("h", s, [float(s)]) for s in range(0, 50, 5)]
    entries += [image_entry("i", s, png(seed=s)) for s in range(6)]
    entries += [table_entry("t", s, sample_table(s + 1)) for s in (1, 4)]
    assert await store.write_media(write(run.id, *entries))
    n, rows = await store.histograms(run.id, "h", max_steps=4)
    assert n == 10 and [r.step for r in rows] == [0, 15, 30, 45]
    n, rows = await store.histograms(run.id, "h", start_step=10, end_step=20, max_steps=1)
    assert n == 3 and [r.step for r in rows] == [20]
    n, imgs = await store.images(run.id, "i", start_step=1, end_step=4, limit=2)
    assert n == 4 and [r.step for r in imgs] == [3, 4]
    at, _, _ = await store.table(run.id, "t", step=1)
    assert at.rows == 2
    with pytest.raises(MediaNotFound):
        await store.table(run.id, "t", step=2)
    for read in (store.images(run.id, "h"), store.histograms(run.id, "nope")):
        with pytest.raises(MediaNotFound):
            await read
    with pytest.raises(RunNotFound):
        await store.media_keys(uuid.uuid4())
    with pytest.raises(RunNotFound):
        await store.images(uuid.uuid4(), "i")


async def test_same_bytes_are_stored_once_and_freed_with_their_last_reference(
    store: Store,
) -> None:
    one, _ = await store.create_run(RunCreate())
    two, _ = await store.create_run(RunCreate())
    a, b = png(seed=1), png(seed=2)
    await store.write_media(write(one.id, image_entry("x", 0, a, a), image_entry("x", 1, a)))
    await store.write_media(write(two.id, image_entry("y", 0, a, b)))
    assert await stored(store, a, b) == [True, True]
    await store.write_media(write(two.id, image_entry("y", 0, b)))  # replaces step 0
    assert [i.digest for i in (await store.images(two.id, "y"))[1]] == [sha(b)]
    await store.delete_run(one.id)
    assert await stored(store, a, b) == [False, True]
    await store.delete_run(two.id)
    assert await stored(store, b) == [False]


async def test_a_key_keeps_its_kind_and_a_rejected_batch_stores_nothing(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    await store.write_media(write(run.id, histogram_entry("k", 0, [1.0])))
    a = png(seed=9)
    bad = write(run.id, image_entry("new", 0, a), image_entry("k", 1, a))
    with pytest.raises(InvalidBatch) as e:
        await store.write_media(bad)
    assert [(x.index, x.field) for x in e.value.errors] == [(1, "key")]
    assert "holds histogram" in e.value.errors[0].reason
    mixed = write(run.id, image_entry("n2", 0, a), histogram_entry("n2", 1, [1.0]))
    with pytest.raises(InvalidBatch):
        await store.write_media(mixed)
    assert [k.key for k in await store.media_keys(run.id)] == ["k"]
    assert await stored(store, a) == [False]
    with pytest.raises(RunNotFound):
        await store.write_media(write(uuid.uuid4(), image_entry("x", 0, a)))


async def test_a_batch_id_is_written_once(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    first = write(run.id, histogram_entry("h", 0, [1.0]), batch_id="same")
    assert await store.write_media(first)
    assert await store.write_media(write(run.id, histogram_entry("h", 0, [2.0])))
    assert not await store.write_media(first)  # a replay: nothing written
    assert (await store.histograms(run.id, "h"))[1][0].counts.tolist() == [2.0]


async def test_retention_drops_old_media_and_frees_their_blobs(store: Store) -> None:
    run, _ = await store.create_run(RunCreate())
    old, new = png(seed=1), png(seed=2)
    now = T0 + 100 * DAY
    await store.write_media(
        write(
            run.id,
            image_entry("old", 0, old),
            image_entry("img", 0, old, time=T0),
            image_entry("img", 1, new, time=now),
            histogram_entry("h", 0, [1.0]),
            table_entry("t", 0, sample_table(), time=now),
        )
    )
    removed = await store.apply_retention(Retention(metrics_days=90, system_metrics_days=0), now)
    assert removed["media"] == 3
    assert [(k.key, k.steps) for k in await store.media_keys(run.id)] == [("img", 1), ("t", 1)]
    assert await stored(store, old, new) == [False, True]
    kept = await store.apply_retention(Retention(metrics_days=0, system_metrics_days=0), now * 2)
    assert kept["media"] == 0 and len(await store.media_keys(run.id)) == 2


async def test_crossed_replacements_all_land(store: Store) -> None:
    """Batches replacing each other's blobs under different keys at once (opposite
    lock orders on PostgreSQL: one is aborted as a deadlock and run again): every
    batch lands and every blob keeps its true reference count."""
    import asyncio

    run, _ = await store.create_run(RunCreate(project="m"))
    x, y = png(3, 3, 1), png(3, 3, 2)
    for rnd in range(3):
        await store.write_media(write(run.id, image_entry("a", rnd, y), image_entry("b", rnd, x)))
        first, second = (
            write(run.id, image_entry("a", rnd, x)),
            write(run.id, image_entry("b", rnd, y)),
        )
        assert await asyncio.gather(store.write_media(first), store.write_media(second)) == [
            True,
            True,
        ]
    for key, blob in (("a", x), ("b", y)):
        _, images = await store.images(run.id, key)
        assert {i.digest for i in images} == {sha(blob)}
    await store.delete_run(run.id)
    assert await stored(store, x, y) == [False, False]
