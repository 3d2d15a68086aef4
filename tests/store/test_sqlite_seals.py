"""SQLite seals several series of a batch together (:func:`.sqlite_blocks.seal`):
each series keeps its points, in every read path, and each point its metadata,
whether its tail was sealed, kept open or rewritten as one row in that seal."""

from __future__ import annotations

import contextlib
import math
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from wanllm_server.store import sqlite_blocks
from wanllm_server.store.base import MetricBatch, RunCreate, RunUpdate, Series
from wanllm_server.store.sqlite import SQLiteStore

from tests.store.store_helpers import T0, bits, brute_m4

NAMES = ("a", "b", "c")
Point = tuple[str, int, int, float, dict[str, Any] | None]
POINT = hs.tuples(
    hs.sampled_from(NAMES),
    hs.integers(-5, 40) | hs.sampled_from([-(2**63), 2**63 - 1]),
    hs.integers(0, 20),
    hs.floats(-1e6, 1e6) | hs.sampled_from([math.nan, math.inf, -0.0]),
    hs.none() | hs.fixed_dictionaries({"k": hs.integers(0, 9)}),
)


@pytest.fixture
def small_seals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thresholds a few points wide, so most batches seal some of their series."""
    for name, value in (("SEAL_POINTS", 10), ("SEAL_MIN", 5), ("SEAL_WRITES", 2),
                        ("SMALL_TIER", 3), ("MERGE_ROWS", 2), ("BLOCK_POINTS", 4)):  # fmt: skip
        monkeypatch.setattr(sqlite_blocks, name, value)


def _batch(rid: Any, i: int, points: list[Point]) -> MetricBatch:
    names = sorted({p[0] for p in points})
    return MetricBatch(
        f"b{i}", [rid], names, np.zeros(len(points), np.int32),
        np.array([names.index(p[0]) for p in points], np.int32),
        np.array([p[1] for p in points], np.int64),
        np.array([T0 + p[2] for p in points], np.int64),
        np.array([p[3] for p in points], np.float64),
        [p[4] for p in points] if any(p[4] for p in points) else None,
    )  # fmt: skip


def _key(name: str, st: int, tm: int, v: float, md: Any) -> tuple[Any, ...]:
    return (name, st, tm, bits([v])[0], orjson.dumps(md).decode() if md else None)


def _stored(path: Path) -> Counter[tuple[Any, ...]]:
    """Every stored point (blocks and tail) with its metadata, as a multiset."""
    out: Counter[tuple[Any, ...]] = Counter()
    with contextlib.closing(sqlite3.connect(path)) as c:
        for table in ("metric_blocks", "metric_tail"):
            for (name,) in c.execute("SELECT DISTINCT name FROM metric_series").fetchall():
                rows = c.execute(
                    f"SELECT {sqlite_blocks.BLOCK_COLS} FROM {table} t JOIN metric_series s "
                    "ON s.id = t.series_id WHERE s.name = ?",
                    (name,),
                ).fetchall()
                st, tm, v, md = sqlite_blocks.decode_with_metadata(rows)
                cols = (st.tolist(), tm.tolist(), v.tolist(), md or [None] * len(v))
                out.update(_key(name, *p) for p in zip(*cols, strict=True))
    return out


async def _check(s: SQLiteStore, rid: Any, points: list[Point]) -> None:
    assert _stored(s.path) == Counter(_key(n, st, T0 + t, v, m) for n, st, t, v, m in points)
    for name in {p[0] for p in points}:
        mine = [p for p in points if p[0] == name]
        order = sorted(range(len(mine)), key=lambda i: (mine[i][1], mine[i][2]))
        got = await s.history(rid, name)
        assert got.steps.tolist() == [mine[i][1] for i in order]
        assert got.times.tolist() == [T0 + mine[i][2] for i in order]
        values = zip(got.steps.tolist(), got.times.tolist(), bits(got.values), strict=True)
        assert sorted(values) == sorted((p[1], T0 + p[2], bits([p[3]])[0]) for p in mine)
        window = await s.history(rid, name, start_step=5, end_step=30)  # by block step ranges
        assert window.steps.tolist() == [x for x in got.steps.tolist() if 5 <= x <= 30]
        raw = Series(got.steps, got.times, got.values)
        # the whole series, and 0..40 in 2 buckets: level-4 tiers once over 8 points
        for a, z, n in ((int(raw.steps[0]), int(raw.steps[-1]), 3), (0, 40, 2)):
            down = await s.downsample(rid, name, n, start_step=a, end_step=z)
            _, _, bands = brute_m4(
                raw.steps.tolist(), raw.times.tolist(), raw.values.tolist(), a, z, n
            )
            assert down.bucket_count.tolist() == [bands[b][0] for b in sorted(bands)]
            assert bits(down.bucket_min) == bits([bands[b][1] for b in sorted(bands)])
            assert bits(down.bucket_max) == bits([bands[b][2] for b in sorted(bands)])


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(hs.lists(hs.lists(POINT, min_size=1, max_size=16), min_size=1, max_size=10))
def test_series_sealed_together_keep_their_points_and_metadata(
    run: Any, small_seals: None, batches: list[list[Point]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        s = SQLiteStore(Path(tmp) / "s.db")
        run(s.open())
        try:
            rid = run(s.create_run(RunCreate(project="p")))[0].id
            for i, points in enumerate(batches):
                run(s.write_metrics(_batch(rid, i, points)))
            logged = [p for b in batches for p in b]
            run(_check(s, rid, logged))
            run(s.update_run(rid, RunUpdate(state="finished")))  # seals every tail together
            with contextlib.closing(sqlite3.connect(s.path)) as c:
                assert c.execute("SELECT count(*) FROM metric_tail").fetchone() == (0,)
            run(_check(s, rid, logged))
        finally:
            run(s.close())
