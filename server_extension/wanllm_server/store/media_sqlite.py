"""SQLite media: the :class:`~.media_base.MediaStore` methods of the embedded store
(schema: ``sql/media_sqlite``). Writes run on the store's writer thread in one
transaction, reads on its reader threads, like every other SQLite call."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

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
from .media_rules import kind_errors, net_refs, packed, pick_steps, unpacked

T = TypeVar("T")
_ITEM_DIGESTS = (
    "SELECT digest FROM media_images WHERE {where} "
    "UNION ALL SELECT digest FROM media_tables WHERE {where}"
)


def acquire(c: sqlite3.Connection, blobs: Iterable[Blob]) -> None:
    """One more reference per occurrence in ``blobs`` (stored when new)."""
    for blob, n in net_refs(blobs):
        c.execute(
            "INSERT INTO media_blobs (digest, media_type, size, refs, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (digest) DO UPDATE SET refs = refs + excluded.refs",
            (blob.digest, blob.media_type, len(blob.data), n, blob.data),
        )


def release(c: sqlite3.Connection, digests: Sequence[str]) -> None:
    """One reference less per occurrence; blobs left without any are deleted."""
    counts: dict[str, int] = {}
    for d in digests:
        counts[d] = counts.get(d, 0) + 1
    for d, n in sorted(counts.items()):
        c.execute("UPDATE media_blobs SET refs = refs - ? WHERE digest = ?", (n, d))
        c.execute("DELETE FROM media_blobs WHERE digest = ? AND refs <= 0", (d,))


def _digests(c: sqlite3.Connection, where: str, params: tuple[Any, ...]) -> list[str]:
    sql = _ITEM_DIGESTS.format(where=where)
    return [d for (d,) in c.execute(sql, params + params)]


def write_media(c: sqlite3.Connection, batch: MediaWrite) -> bool:
    run = str(batch.run_id)
    if c.execute("SELECT 1 FROM runs WHERE id = ?", (run,)).fetchone() is None:
        raise RunNotFound(run)
    done = c.execute(
        "INSERT OR IGNORE INTO batches VALUES (?, 'media', ?, "
        "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))",
        ("media:" + batch.batch_id, len(batch.entries)),  # its own namespace, like PG's kind
    )
    if done.rowcount == 0:
        return False
    first_kind: dict[str, str] = {}
    for e in batch.entries:
        first_kind.setdefault(e.key, e.kind)
    keys = sorted(first_kind)
    stored = {}  # one lookup a key: a batch may hold more keys than SQLite takes variables
    for key in keys:
        row = c.execute(
            "SELECT kind FROM media_keys WHERE run_id = ? AND key = ?", (run, key)
        ).fetchone()
        if row is not None:
            stored[key] = row[0]
    errors = kind_errors(batch.entries, stored)
    if errors:
        raise InvalidBatch(errors)
    key_ids: dict[str, int] = {}
    for key in keys:
        kind = first_kind[key]
        (key_ids[key],) = c.execute(
            "INSERT INTO media_keys (run_id, key, kind) VALUES (?, ?, ?) "
            "ON CONFLICT (run_id, key) DO UPDATE SET kind = kind RETURNING id",
            (run, key, kind),
        ).fetchone()
    acquire(c, [b for e in batch.entries for b in e.blobs()])
    replaced: list[str] = []
    for e in batch.entries:
        kid = key_ids[e.key]
        replaced += _digests(c, "key_id = ? AND step = ?", (kid, e.step))
        c.execute("DELETE FROM media_steps WHERE key_id = ? AND step = ?", (kid, e.step))
        _insert(c, kid, e)
    release(c, replaced)
    return True


def _insert(c: sqlite3.Connection, kid: int, e: MediaEntry) -> None:
    c.execute("INSERT INTO media_steps VALUES (?, ?, ?)", (kid, e.step, e.time))
    if e.kind == "image":
        c.executemany(
            "INSERT INTO media_images VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (kid, e.step, i, im.caption, im.width, im.height, im.blob.digest)
                for i, im in enumerate(e.images)
            ],
        )
    elif e.kind == "histogram":
        assert e.edges is not None and e.counts is not None
        c.execute(
            "INSERT INTO media_histograms VALUES (?, ?, ?, ?)",
            (kid, e.step, packed(e.edges), packed(e.counts)),
        )
    else:
        assert e.table is not None
        c.execute(
            "INSERT INTO media_tables VALUES (?, ?, ?, ?)", (kid, e.step, e.rows, e.table.digest)
        )


def _marks(items: Sequence[object]) -> str:
    return ",".join("?" * len(items))


def delete_run_media(c: sqlite3.Connection, run: str) -> list[str]:
    """The digests the run's media reference (to :func:`release` once the run's
    rows are gone)."""
    where = "key_id IN (SELECT id FROM media_keys WHERE run_id = ?)"
    return _digests(c, where, (run,))


def apply_retention(c: sqlite3.Connection, cutoff: int) -> int:
    """Drop media logged before ``cutoff`` (µs); returns the (key, step) items dropped."""
    old = "(key_id, step) IN (SELECT key_id, step FROM media_steps WHERE time < ?)"
    digests = _digests(c, old, (cutoff,))
    removed = c.execute("DELETE FROM media_steps WHERE time < ?", (cutoff,)).rowcount
    if removed:
        c.execute(
            "DELETE FROM media_keys WHERE NOT EXISTS "
            "(SELECT 1 FROM media_steps s WHERE s.key_id = media_keys.id)"
        )
    release(c, digests)
    return removed


# ------------------------------------------------------------------ reads
def _key_id(c: sqlite3.Connection, run: str, key: str, kind: str) -> int:
    row = c.execute(
        "SELECT id, kind FROM media_keys WHERE run_id = ? AND key = ?", (run, key)
    ).fetchone()
    if row is None or row[1] != kind:
        if c.execute("SELECT 1 FROM runs WHERE id = ?", (run,)).fetchone() is None:
            raise RunNotFound(run)
        raise MediaNotFound(run, key, f"{kind} media")
    return int(row[0])


def _range(start: int | None, end: int | None) -> tuple[int, int]:
    return (-(2**63) if start is None else start, 2**63 - 1 if end is None else end)


def media_keys(c: sqlite3.Connection, run: str) -> list[MediaKeyInfo]:
    if c.execute("SELECT 1 FROM runs WHERE id = ?", (run,)).fetchone() is None:
        raise RunNotFound(run)
    rows = c.execute(
        "SELECT k.key, k.kind, count(*), min(s.step), max(s.step), max(s.time) "
        "FROM media_keys k JOIN media_steps s ON s.key_id = k.id WHERE k.run_id = ? "
        "GROUP BY k.id ORDER BY k.key",
        (run,),
    )
    return [MediaKeyInfo(*r) for r in rows]


def images(
    c: sqlite3.Connection, run: str, key: str, start: int | None, end: int | None, limit: int
) -> tuple[int, list[ImageRow]]:
    kid = _key_id(c, run, key, "image")
    lo, hi = _range(start, end)
    (total,) = c.execute(
        "SELECT count(*) FROM media_steps WHERE key_id = ? AND step BETWEEN ? AND ?", (kid, lo, hi)
    ).fetchone()
    rows = c.execute(
        "SELECT i.step, i.idx, s.time, i.caption, i.width, i.height, i.digest "
        "FROM media_images i JOIN media_steps s ON s.key_id = i.key_id AND s.step = i.step "
        "WHERE i.key_id = ?1 AND i.step IN (SELECT step FROM media_steps WHERE key_id = ?1 "
        "AND step BETWEEN ?2 AND ?3 ORDER BY step DESC LIMIT ?4) ORDER BY i.step, i.idx",
        (kid, lo, hi, limit),
    )
    return int(total), [ImageRow(*r) for r in rows]


def histograms(
    c: sqlite3.Connection, run: str, key: str, start: int | None, end: int | None, budget: int
) -> tuple[int, list[HistogramRow]]:
    kid = _key_id(c, run, key, "histogram")
    lo, hi = _range(start, end)
    steps = [
        s
        for (s,) in c.execute(
            "SELECT step FROM media_steps WHERE key_id = ? AND step BETWEEN ? AND ? ORDER BY step",
            (kid, lo, hi),
        )
    ]
    chosen = pick_steps(steps, budget)
    out = []
    for part in range(0, len(chosen), 500):
        some = chosen[part : part + 500]
        rows = c.execute(
            "SELECT h.step, s.time, h.edges, h.counts FROM media_histograms h "
            "JOIN media_steps s ON s.key_id = h.key_id AND s.step = h.step "
            f"WHERE h.key_id = ? AND h.step IN ({_marks(some)}) ORDER BY h.step",
            (kid, *some),
        )
        out += [HistogramRow(st, t, unpacked(e), unpacked(n)) for st, t, e, n in rows]
    return len(steps), out


def table(
    c: sqlite3.Connection, run: str, key: str, step: int | None
) -> tuple[TableRow, bytes, list[TableRow]]:
    kid = _key_id(c, run, key, "table")
    rows = [
        TableRow(*r)
        for r in c.execute(
            "SELECT t.step, s.time, t.nrows, t.digest FROM media_tables t "
            "JOIN media_steps s ON s.key_id = t.key_id AND s.step = t.step "
            "WHERE t.key_id = ? ORDER BY t.step",
            (kid,),
        )
    ]
    at = rows[-1] if step is None and rows else next((r for r in rows if r.step == step), None)
    if at is None:
        raise MediaNotFound(run, key, f"table at step {step} under")
    blob = media_blob(c, at.digest)
    assert blob is not None  # referenced, in the same snapshot
    return at, blob.data, rows


def media_blob(c: sqlite3.Connection, digest: str) -> StoredBlob | None:
    row = c.execute(
        "SELECT media_type, data FROM media_blobs WHERE digest = ?", (digest,)
    ).fetchone()
    return None if row is None else StoredBlob(row[0], bytes(row[1]))


class SQLiteMedia(MediaStore):
    """The media methods of :class:`~.sqlite.SQLiteStore` (it supplies the threads)."""

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def write_media(self, batch: MediaWrite) -> bool:
        return await self._write(write_media, batch)

    async def media_keys(self, run_id: uuid.UUID) -> list[MediaKeyInfo]:
        return await self._read(media_keys, str(run_id))

    async def images(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        limit: int = 100,
    ) -> tuple[int, list[ImageRow]]:
        return await self._read(images, str(run_id), key, start_step, end_step, limit)

    async def histograms(
        self,
        run_id: uuid.UUID,
        key: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        max_steps: int = 200,
    ) -> tuple[int, list[HistogramRow]]:
        return await self._read(histograms, str(run_id), key, start_step, end_step, max_steps)

    async def table(
        self, run_id: uuid.UUID, key: str, step: int | None = None
    ) -> tuple[TableRow, bytes, list[TableRow]]:
        return await self._read(table, str(run_id), key, step)

    async def media_blob(self, digest: str) -> StoredBlob | None:
        return await self._read(media_blob, digest)
