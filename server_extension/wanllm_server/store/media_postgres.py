"""PostgreSQL media: the :class:`~.media_base.MediaStore` methods of the PostgreSQL
and TimescaleDB store (schema: ``sql/media_postgres``; plain tables on every mode).

Concurrency: a write locks its run (``FOR KEY SHARE``: a concurrent delete of the
run waits, or wins and the write answers 404), its keys (an upsert, so a key's
kind is decided once) and its blobs in digest order (the reference count is an
upsert too, and a blob whose count reaches 0 is deleted under the same row lock:
a writer that re-logs those bytes meanwhile waits, then inserts them again).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import numpy as np

from .base import InvalidBatch, MediaNotFound, RunNotFound
from .media_base import (
    Blob,
    HistogramRow,
    ImageRow,
    MediaEntry,
    MediaKeyInfo,
    MediaStore,
    MediaWrite,
    StoredBlob,
    TableRow,
)
from .media_rules import kind_errors, net_refs, pick_steps

_ITEM_DIGESTS = (
    "SELECT digest FROM media_images WHERE {where} "
    "UNION ALL SELECT digest FROM media_tables WHERE {where}"
)
_STEP_RANGE = (
    "step BETWEEN coalesce($2::bigint, -9223372036854775808) "
    "AND coalesce($3::bigint, 9223372036854775807)"
)


async def acquire(conn: asyncpg.Connection, blobs: Iterable[Blob]) -> None:
    """One more reference per occurrence in ``blobs`` (stored when new)."""
    for blob, n in net_refs(blobs):
        await conn.execute(
            "INSERT INTO media_blobs AS b (digest, media_type, size, refs, data) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (digest) DO UPDATE SET refs = b.refs + $4",
            blob.digest, blob.media_type, len(blob.data), n, blob.data,
        )  # fmt: skip


async def release(conn: asyncpg.Connection, digests: Sequence[str]) -> None:
    """One reference less per occurrence; blobs left without any are deleted."""
    counts: dict[str, int] = {}
    for d in digests:
        counts[d] = counts.get(d, 0) + 1
    if not counts:
        return
    keys = sorted(counts)
    rows = await conn.fetch(
        "UPDATE media_blobs b SET refs = b.refs - u.n "
        "FROM unnest($1::text[], $2::int[]) AS u(digest, n) WHERE b.digest = u.digest "
        "RETURNING b.digest, b.refs",
        keys, [counts[k] for k in keys],
    )  # fmt: skip
    unused = [r["digest"] for r in rows if r["refs"] <= 0]
    if unused:  # a second statement: one cannot modify a row its own CTE changed
        await conn.execute(
            "DELETE FROM media_blobs WHERE digest = ANY($1::text[]) AND refs <= 0", unused
        )


async def _digests(conn: asyncpg.Connection, where: str, *args: Any) -> list[str]:
    rows = await conn.fetch(_ITEM_DIGESTS.format(where=where), *args)
    return [r[0] for r in rows]


DEADLOCK_RETRIES = 5


async def write_media(conn: asyncpg.Connection, batch: MediaWrite) -> bool:
    rid = batch.run_id
    if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1 FOR KEY SHARE", rid) is None:
        raise RunNotFound(rid)
    claimed = await conn.fetchval(
        "INSERT INTO ingest_batches (kind, batch_id, points) VALUES ('media', $1, $2) "
        "ON CONFLICT DO NOTHING RETURNING 1",
        batch.batch_id, len(batch.entries),
    )  # fmt: skip
    if claimed is None:
        return False
    first_kind: dict[str, str] = {}
    for e in batch.entries:
        first_kind.setdefault(e.key, e.kind)
    keys = sorted(first_kind)
    kinds = [first_kind[k] for k in keys]
    rows = await conn.fetch(
        "INSERT INTO media_keys AS k (run_id, key, kind) "
        "SELECT $1, * FROM unnest($2::text[], $3::text[]) "
        "ON CONFLICT (run_id, key) DO UPDATE SET kind = k.kind RETURNING id, key, kind",
        rid, keys, kinds,
    )  # fmt: skip
    stored = {r["key"]: r["kind"] for r in rows}
    errors = kind_errors(batch.entries, stored)
    if errors:
        raise InvalidBatch(errors)
    key_ids = {r["key"]: r["id"] for r in rows}
    await acquire(conn, [b for e in batch.entries for b in e.blobs()])
    replaced: list[str] = []
    for e in batch.entries:
        kid = key_ids[e.key]
        replaced += await _digests(conn, "key_id = $1 AND step = $2", kid, e.step)
        await conn.execute("DELETE FROM media_steps WHERE key_id = $1 AND step = $2", kid, e.step)
        await _insert(conn, kid, e)
    await release(conn, replaced)
    return True


async def _insert(conn: asyncpg.Connection, kid: int, e: MediaEntry) -> None:
    await conn.execute("INSERT INTO media_steps VALUES ($1, $2, $3)", kid, e.step, e.time)
    if e.kind == "image":
        await conn.executemany(
            "INSERT INTO media_images VALUES ($1, $2, $3, $4, $5, $6, $7)",
            [
                (kid, e.step, i, im.caption, im.width, im.height, im.blob.digest)
                for i, im in enumerate(e.images)
            ],
        )
    elif e.kind == "histogram":
        assert e.edges is not None and e.counts is not None
        await conn.execute(
            "INSERT INTO media_histograms VALUES ($1, $2, $3, $4)",
            kid, e.step, e.edges.tolist(), e.counts.tolist(),
        )  # fmt: skip
    else:
        assert e.table is not None
        await conn.execute(
            "INSERT INTO media_tables VALUES ($1, $2, $3, $4)", kid, e.step, e.rows, e.table.digest
        )


async def delete_run_media(conn: asyncpg.Connection, rid: uuid.UUID) -> list[str]:
    """The digests the run's media reference (to :func:`release` once its rows are gone)."""
    return await _digests(conn, "key_id IN (SELECT id FROM media_keys WHERE run_id = $1)", rid)


async def apply_retention(conn: asyncpg.Connection, cutoff: int) -> int:
    """Drop media logged before ``cutoff`` (µs); returns the (key, step) items dropped."""
    old = "(key_id, step) IN (SELECT key_id, step FROM media_steps WHERE time < $1)"
    digests = await _digests(conn, old, cutoff)
    removed = int(
        await conn.fetchval(
            "WITH d AS (DELETE FROM media_steps WHERE time < $1 RETURNING 1) "
            "SELECT count(*) FROM d",
            cutoff,
        )
    )
    if removed:
        await conn.execute(
            "DELETE FROM media_keys k WHERE NOT EXISTS "
            "(SELECT 1 FROM media_steps s WHERE s.key_id = k.id)"
        )
    await release(conn, digests)
    return removed


# ------------------------------------------------------------------ reads
async def _key_id(conn: asyncpg.Connection, rid: uuid.UUID, key: str, kind: str) -> int:
    row = await conn.fetchrow(
        "SELECT id, kind FROM media_keys WHERE run_id = $1 AND key = $2", rid, key
    )
    if row is None or row["kind"] != kind:
        if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1", rid) is None:
            raise RunNotFound(rid)
        raise MediaNotFound(rid, key, f"{kind} media")
    return int(row["id"])


async def media_keys(conn: asyncpg.Connection, rid: uuid.UUID) -> list[MediaKeyInfo]:
    if await conn.fetchval("SELECT 1 FROM runs WHERE id = $1", rid) is None:
        raise RunNotFound(rid)
    rows = await conn.fetch(
        "SELECT k.key, k.kind, count(*), min(s.step), max(s.step), max(s.time) "
        "FROM media_keys k JOIN media_steps s ON s.key_id = k.id WHERE k.run_id = $1 "
        'GROUP BY k.id, k.key, k.kind ORDER BY k.key COLLATE "C"',
        rid,
    )
    return [MediaKeyInfo(*r) for r in rows]


async def images(
    conn: asyncpg.Connection,
    rid: uuid.UUID,
    key: str,
    start: int | None,
    end: int | None,
    limit: int,
) -> tuple[int, list[ImageRow]]:
    kid = await _key_id(conn, rid, key, "image")
    total = await conn.fetchval(
        f"SELECT count(*) FROM media_steps WHERE key_id = $1 AND {_STEP_RANGE}", kid, start, end
    )
    rows = await conn.fetch(
        "SELECT i.step, i.idx, s.time, i.caption, i.width, i.height, i.digest "
        "FROM media_images i JOIN media_steps s ON s.key_id = i.key_id AND s.step = i.step "
        "WHERE i.key_id = $1 AND i.step IN (SELECT step FROM media_steps WHERE key_id = $1 "
        f"AND {_STEP_RANGE} ORDER BY step DESC LIMIT $4) ORDER BY i.step, i.idx",
        kid, start, end, limit,
    )  # fmt: skip
    return int(total), [ImageRow(*r) for r in rows]


async def histograms(
    conn: asyncpg.Connection,
    rid: uuid.UUID,
    key: str,
    start: int | None,
    end: int | None,
    budget: int,
) -> tuple[int, list[HistogramRow]]:
    kid = await _key_id(conn, rid, key, "histogram")
    rows = await conn.fetch(
        f"SELECT step FROM media_steps WHERE key_id = $1 AND {_STEP_RANGE} ORDER BY step",
        kid, start, end,
    )  # fmt: skip
    steps = [r[0] for r in rows]
    chosen = pick_steps(steps, budget)
    found = await conn.fetch(
        "SELECT h.step, s.time, h.edges, h.counts FROM media_histograms h "
        "JOIN media_steps s ON s.key_id = h.key_id AND s.step = h.step "
        "WHERE h.key_id = $1 AND h.step = ANY($2::bigint[]) ORDER BY h.step",
        kid, chosen,
    )  # fmt: skip
    out = [
        HistogramRow(r[0], r[1], np.array(r[2], np.float64), np.array(r[3], np.float64))
        for r in found
    ]
    return len(steps), out


async def table(
    conn: asyncpg.Connection, rid: uuid.UUID, key: str, step: int | None
) -> tuple[TableRow, bytes, list[TableRow]]:
    kid = await _key_id(conn, rid, key, "table")
    rows = [
        TableRow(*r)
        for r in await conn.fetch(
            "SELECT t.step, s.time, t.nrows, t.digest FROM media_tables t "
            "JOIN media_steps s ON s.key_id = t.key_id AND s.step = t.step "
            "WHERE t.key_id = $1 ORDER BY t.step",
            kid,
        )
    ]
    at = rows[-1] if step is None and rows else next((r for r in rows if r.step == step), None)
    if at is None:
        raise MediaNotFound(rid, key, f"table at step {step} under")
    blob = await media_blob(conn, at.digest)
    assert blob is not None  # referenced, in the same transaction
    return at, blob.data, rows


async def media_blob(conn: asyncpg.Connection, digest: str) -> StoredBlob | None:
    row = await conn.fetchrow("SELECT media_type, data FROM media_blobs WHERE digest = $1", digest)
    return None if row is None else StoredBlob(row[0], bytes(row[1]))


class PostgresMedia(MediaStore):
    """The media methods of :class:`~.postgres.PostgresStore` (it supplies connections)."""

    def _conn(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError

    def _tx(self) -> AbstractAsyncContextManager[asyncpg.Connection]:
        raise NotImplementedError

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[asyncpg.Connection]:
        """A read-only repeatable-read transaction: a read's queries see one state."""
        async with (
            self._conn() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield conn

    async def write_media(self, batch: MediaWrite) -> bool:
        # Two batches that replace each other's blobs under different keys lock
        # those blobs in opposite orders; PostgreSQL aborts one of them, which is
        # then run again (its transaction left nothing behind).
        attempt = 1
        while True:
            try:
                async with self._tx() as conn:
                    return await write_media(conn, batch)
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_RETRIES:
                    raise
                attempt += 1

    async def media_keys(self, run_id: uuid.UUID) -> list[MediaKeyInfo]:
        async with self._conn() as conn:
            return await media_keys(conn, run_id)

    async def images(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        limit: int = 100,
    ) -> tuple[int, list[ImageRow]]:
        async with self._snapshot() as conn:
            return await images(conn, run_id, key, start_step, end_step, limit)

    async def histograms(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int = 200,
    ) -> tuple[int, list[HistogramRow]]:
        async with self._snapshot() as conn:
            return await histograms(conn, run_id, key, start_step, end_step, max_steps)

    async def table(
        self, run_id: uuid.UUID, key: str, step: int | None = None
    ) -> tuple[TableRow, bytes, list[TableRow]]:
        async with self._snapshot() as conn:
            return await table(conn, run_id, key, step)

    async def media_blob(self, digest: str) -> StoredBlob | None:
        async with self._conn() as conn:
            return await media_blob(conn, digest)
