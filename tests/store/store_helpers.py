"""Shared helpers of the contract suite."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence

import numpy as np
from wanllm_server.store import MetricBatch, Series

T0 = 1_780_000_000_000_000  # µs, a fixed "now" for deterministic times


def batch(
    run_id: uuid.UUID,
    points: dict[str, tuple[Sequence[int | None], Sequence[float]]],
    *,
    batch_id: str | None = None,
    times: dict[str, Sequence[int]] | None = None,
) -> MetricBatch:
    """A batch from ``{name: (steps, values)}``; a None step means auto-step."""
    names = list(points)
    k, s, v, t, auto = [], [], [], [], []
    for i, name in enumerate(names):
        steps, values = points[name]
        tt = (times or {}).get(name) or [T0 + j for j in range(len(values))]
        for st, val, tm in zip(steps, values, tt, strict=True):
            k.append(i)
            s.append(0 if st is None else st)
            auto.append(st is None)
            v.append(val)
            t.append(tm)
    a = np.array(auto, dtype=bool)
    return MetricBatch(
        batch_id=batch_id or uuid.uuid4().hex,
        run_ids=[run_id],
        names=names,
        run_idx=np.zeros(len(v), np.int32),
        name_idx=np.array(k, np.int32),
        steps=np.array(s, np.int64),
        times=np.array(t, np.int64),
        values=np.array(v, np.float64),
        auto_step=a if a.any() else None,
    )


def bits(values: np.ndarray | Sequence[float]) -> list[int]:
    return np.asarray(values, np.float64).view(np.int64).tolist()


def brute_m4(
    steps: Sequence[int],
    times: Sequence[int],
    values: Sequence[float],
    start: int,
    end: int,
    buckets: int,
) -> tuple[int, list[tuple[int, int, int]], dict[int, tuple[int, float, float]]]:
    """Reference M4 by plain Python: (width, points as (step, time, value bits),
    {bucket start: (count, min, max)})."""
    pts = [(s, t, v) for s, t, v in zip(steps, times, values, strict=False) if start <= s <= end]
    w = 1
    while end // w - start // w + 1 > buckets and w < 2**63:
        w *= 2
    by: dict[int, list[tuple[int, int, float]]] = {}
    for p in pts:
        by.setdefault(p[0] // w, []).append(p)
    chosen: set[tuple[int, int, int]] = set()
    bands = {}
    for b, ps in by.items():
        key = [min(ps, key=lambda p: (p[0], p[1])), max(ps, key=lambda p: (p[0], p[1]))]
        fin = [p for p in ps if math.isfinite(p[2])]
        band = (math.nan, math.nan)
        if fin:
            lo = min(fin, key=lambda p: (p[2], p[0], p[1]))
            hi = min(fin, key=lambda p: (-p[2], p[0], p[1]))
            key += [lo, hi]
            band = (lo[2], hi[2])
        chosen |= {(p[0], p[1], bits([p[2]])[0]) for p in key}
        bands[b * w] = (len(ps), *band)
    if len(pts) <= 4 * buckets:
        chosen = {(p[0], p[1], bits([p[2]])[0]) for p in pts}
    return w, sorted(chosen), bands


def as_triples(s: Series) -> list[tuple[int, int, int]]:
    return list(zip(s.steps.tolist(), s.times.tolist(), bits(s.values), strict=False))
