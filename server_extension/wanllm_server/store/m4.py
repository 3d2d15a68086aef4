"""M4 downsampling of a series' step range, from raw points or from stored tiers
(:mod:`.aggregates`).

:func:`plan_downsample` chooses the bucket width ``w`` =
:func:`choose_bucket_width` (smallest power of two whose aligned buckets
covering ``[start, end]`` number at most ``buckets``). Output bucket index
= ``step >> log2(w)``; buckets are aligned to absolute multiples of ``w``,
so appending points at higher steps changes only the last bucket.

* ``w < 2**TIER_LEVELS[0]``: read the raw points of the range and use
  :func:`m4_from_raw`.
* otherwise read tier level ``L`` = the largest level with ``2**L <= w``
  for the *interior* output buckets (entirely inside ``[start, end]``),
  and the raw points of the two *edge* parts (an output bucket only
  partly inside the range), then :func:`m4_from_tiers`. The result
  equals :func:`m4_from_raw` over the raw points of the range.

If the range holds at most ``4 * buckets`` points, the result is not
sampled: ``points`` is exactly the raw series of the range (the backend
reads it; it is small), bands are still computed. So
``sampled == (total_points > 4 * buckets)``.

M4 ``points`` are the distinct first/last/min/max points of each bucket,
ordered by ``(step, time)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .aggregates import (
    PARTIAL_DTYPE,
    TIER_LEVELS,
    coarsen_sorted,
    merge_partials,
    partials_from_points,
    segment_starts,
)
from .base import Downsampled, InvalidQuery, Series


def choose_bucket_width(start_step: int, end_step: int, buckets: int) -> int:
    """Smallest power of two ``w`` whose aligned buckets covering
    ``[start_step, end_step]`` number at most ``buckets`` (a range crossing
    zero always spans two buckets: ``buckets=1`` then gives ``w = 2**63``)."""
    if buckets < 1:
        raise InvalidQuery(f"buckets must be >= 1, got {buckets}")
    if end_step < start_step:
        raise InvalidQuery(f"end_step {end_step} < start_step {start_step}")
    for k in range(63):
        if (end_step >> k) - (start_step >> k) + 1 <= buckets:
            return 1 << k
    return 1 << 63


@dataclass(frozen=True, slots=True)
class DownsamplePlan:
    """What a backend reads to downsample ``[start_step, end_step]``.

    ``level`` None: read raw points of the whole range (``m4_from_raw``).
    Otherwise read tier ``level`` partials with bucket in ``tier_buckets``
    (inclusive) and the raw points of each ``edges`` step range (inclusive),
    then call :func:`m4_from_tiers`.
    """

    start_step: int
    end_step: int
    buckets: int
    width: int
    level: int | None
    tier_buckets: tuple[int, int] | None
    edges: tuple[tuple[int, int], ...]

    @property
    def shift(self) -> int:
        return self.width.bit_length() - 1


def plan_downsample(start_step: int, end_step: int, buckets: int) -> DownsamplePlan:
    """Choose width, tier level and raw edge ranges (see module docstring)."""
    w = choose_bucket_width(start_step, end_step, buckets)
    shift = w.bit_length() - 1
    raw = DownsamplePlan(start_step, end_step, buckets, w, None, None, ((start_step, end_step),))
    levels = [lv for lv in TIER_LEVELS if lv <= shift]
    if not levels:
        return raw
    level = levels[-1]
    b0, b1 = start_step >> shift, end_step >> shift
    bf = b0 if start_step == b0 << shift else b0 + 1
    bl = b1 if end_step == ((b1 + 1) << shift) - 1 else b1 - 1
    if bf > bl:
        return raw
    lo, hi = bf << shift, ((bl + 1) << shift) - 1
    edges = []
    if start_step < lo:
        edges.append((start_step, lo - 1))
    if end_step > hi:
        edges.append((hi + 1, end_step))
    d = shift - level
    return DownsamplePlan(
        start_step, end_step, buckets, w, level, (bf << d, ((bl + 1) << d) - 1), tuple(edges)
    )


def _downsampled(partials: np.ndarray, width: int) -> Downsampled:
    """M4 result from merged partials (one per output bucket, sorted)."""
    p = partials
    has = ~np.isnan(p["min_value"])
    cols = []
    for prefix, mask in (("first", None), ("last", None), ("min", has), ("max", has)):
        sel = slice(None) if mask is None else mask
        cols.append((p[f"{prefix}_step"][sel], p[f"{prefix}_time"][sel], p[f"{prefix}_value"][sel]))
    st = np.concatenate([c[0] for c in cols])
    tm = np.concatenate([c[1] for c in cols])
    v = np.concatenate([c[2] for c in cols])
    bits = v.view(np.int64)
    order = np.lexsort((bits, tm, st))
    st, tm, v, bits = st[order], tm[order], v[order], bits[order]
    keep = np.ones(len(v), dtype=bool)
    keep[1:] = (st[1:] != st[:-1]) | (tm[1:] != tm[:-1]) | (bits[1:] != bits[:-1])
    total = int(p["count"].sum())
    return Downsampled(
        bucket_width=width,
        sampled=True,
        points=Series(st[keep], tm[keep], v[keep]),
        bucket_start=p["bucket"] << np.int64(width.bit_length() - 1),
        bucket_min=p["min_value"].copy(),
        bucket_max=p["max_value"].copy(),
        bucket_count=p["count"].copy(),
        bucket_nonfinite=p["nonfinite"].copy(),
        total_points=total,
    )


def unsampled(result: Downsampled, raw: Series) -> Downsampled:
    """``result`` with ``points`` replaced by all raw points of the range."""
    order = np.lexsort((raw.times, raw.steps))
    pts = Series(raw.steps[order], raw.times[order], raw.values[order])
    return replace(result, sampled=False, points=pts)


def m4_from_raw(series: Series, width: int, *, max_unsampled: int | None = None) -> Downsampled:
    """M4 over raw points (any order) with buckets of ``width`` (power of two).

    When ``len(series) <= max_unsampled`` the points are returned unsampled.
    """
    shift = width.bit_length() - 1
    result = _downsampled(partials_from_points(series, shift), width)
    if max_unsampled is not None and len(series) <= max_unsampled:
        return unsampled(result, series)
    return result


def m4_from_tiers(tiers: np.ndarray, plan: DownsamplePlan, edge_points: Series) -> Downsampled:
    """M4 from tier partials at ``plan.level`` (several partials per tier
    bucket allowed; only those in ``plan.tier_buckets`` are used) plus the raw
    points of ``plan.edges``. Equals :func:`m4_from_raw` over the range; the
    caller applies the unsampled rule (see module docstring)."""
    assert plan.level is not None and plan.tier_buckets is not None
    lo, hi = plan.tier_buckets
    t = _by_bucket(_take(tiers, (tiers["bucket"] >= lo) & (tiers["bucket"] <= hi)))
    d = plan.shift - plan.level
    if d and len(t):
        bucket = t["bucket"] >> d
        inner = coarsen_sorted(t, bucket, segment_starts(bucket))
    else:
        inner = t
    edge = partials_from_points(edge_points, plan.shift)
    return _downsampled(_by_bucket(_concat([inner, edge])), plan.width)


def _by_bucket(p: np.ndarray) -> np.ndarray:
    """Partials sorted by bucket, one per bucket: where a bucket has several (tier
    rows of different writes, or tail points in a tier bucket) only those go
    through ``merge_partials``."""
    b = p["bucket"]
    if len(p) > 1 and (b[1:] < b[:-1]).any():
        p = _take(p, np.argsort(b, kind="stable"))
        b = p["bucket"]
    same = b[1:] == b[:-1]
    if not same.any():
        return p
    shared = np.zeros(len(p), bool)
    shared[1:] |= same
    shared[:-1] |= same
    out = _concat([_take(p, ~shared), merge_partials((b[shared],), _take(p, shared))[1]])
    return _take(out, np.argsort(out["bucket"], kind="stable"))


def _cells(p: np.ndarray) -> np.ndarray:
    """Partials as rows of int64 cells (every field is 8 bytes): row copies of
    this view are several times faster than of the structured array."""
    return np.ascontiguousarray(p).view(np.int64).reshape(len(p), len(PARTIAL_DTYPE.names or ()))


def _take(p: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``p[index]`` (an index or mask array)."""
    out: np.ndarray = _cells(p)[index].view(PARTIAL_DTYPE).reshape(-1)
    return out


def _concat(parts: list[np.ndarray]) -> np.ndarray:
    """The partials of ``parts`` in order."""
    out: np.ndarray = np.concatenate([_cells(p) for p in parts]).view(PARTIAL_DTYPE).reshape(-1)
    return out
