"""Numpy aggregation shared by every backend: series summaries, step tiers, M4.

Points are ``(step, time, value)`` with ``int64`` steps, ``int64`` µs times and
``float64`` values (NaN/±Inf allowed, "non-finite"). "Series" means the points
of one metric of one run; ``group`` arrays (int) say which series a point
belongs to inside one batch.

Summaries
    :class:`Summary` holds count, finite count, mean and M2 of the finite
    values (Welford/Chan, merged exactly with :func:`merge_summary`), finite
    min/max (NaN when no finite value), first/last (min/max) time, first/last
    (min/max) step, and the *latest* point: greatest ``(time, step)``; on a
    full tie the point logged later wins (later in the batch, later batch in
    :func:`merge_summary`'s ``b``). Stats are O(1) to read from it.

Partials and tiers
    A *partial* (one row of :data:`PARTIAL_DTYPE`) aggregates the points of
    one bucket of steps: ``count``, ``nonfinite``; ``first`` = the point with
    the smallest ``(step, time)``; ``last`` = the greatest ``(step, time)``;
    ``min`` = the finite point with the smallest ``(value, step, time)``;
    ``max`` = the finite point with the greatest value, ties to the smallest
    ``(step, time)``. ``min_value``/``max_value`` are NaN when the bucket has no
    finite point (their step/time are then 0 and meaningless). Points tied on
    ``(step, time)`` (exact duplicates) are ordered arbitrarily.

    Tier level ``L`` (:data:`TIER_LEVELS`) groups steps into buckets of width
    ``2**L``: bucket index = ``step >> L`` (floor, also for negative steps).
    :func:`tier_rows` computes the partials of one batch for every level;
    partials of the same (series, level, bucket) coming from different
    batches merge associatively (:func:`merge_partials`), so tier storage is
    append-only and merged at read time (or compacted by
    :func:`merge_tier_rows`).

Downsampling (M4)
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

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .base import (
    Downsampled,
    Float64Array,
    Int64Array,
    InvalidQuery,
    Series,
    Stats,
)

TIER_LEVELS: tuple[int, ...] = tuple(range(4, 25, 2))
"""Stored tier levels: bucket widths 2**4 .. 2**24 steps."""

PARTIAL_DTYPE = np.dtype(
    [
        ("bucket", "<i8"),
        ("count", "<i8"),
        ("nonfinite", "<i8"),
        ("first_step", "<i8"),
        ("first_time", "<i8"),
        ("first_value", "<f8"),
        ("last_step", "<i8"),
        ("last_time", "<i8"),
        ("last_value", "<f8"),
        ("min_step", "<i8"),
        ("min_time", "<i8"),
        ("min_value", "<f8"),
        ("max_step", "<i8"),
        ("max_time", "<i8"),
        ("max_value", "<f8"),
    ]
)
"""One bucket's partial aggregate (packed little-endian, usable as a BLOB)."""

_I64 = np.int64


# --------------------------------------------------------------------- summaries
@dataclass(frozen=True, slots=True)
class Summary:
    """Mergeable summary of a series (see module docstring)."""

    count: int
    finite_count: int
    mean: float  # of finite values; NaN when finite_count == 0
    m2: float  # sum of squared deviations from mean (finite values)
    min_value: float  # finite min; NaN when none
    max_value: float
    first_time: int
    last_time: int
    first_step: int
    last_step: int
    latest_step: int
    latest_time: int
    latest_value: float

    @property
    def nonfinite_count(self) -> int:
        return self.count - self.finite_count

    def to_stats(self, metric_name: str) -> Stats:
        n = self.finite_count
        return Stats(
            metric_name=metric_name,
            count=self.count,
            finite_count=n,
            nonfinite_count=self.nonfinite_count,
            min_value=float(self.min_value) if n else None,
            max_value=float(self.max_value) if n else None,
            avg_value=float(self.mean) if n else None,
            std_dev=float(np.sqrt(max(self.m2, 0.0) / (n - 1))) if n >= 2 else None,
            first_time=self.first_time,
            last_time=self.last_time,
            first_step=self.first_step,
            last_step=self.last_step,
        )


def merge_summary(a: Summary | None, b: Summary) -> Summary:
    """Summary of the union of ``a``'s and ``b``'s points (``b`` logged later)."""
    if a is None:
        return b
    na, nb = a.finite_count, b.finite_count
    n = na + nb
    if na == 0:
        mean, m2 = b.mean, b.m2
    elif nb == 0:
        mean, m2 = a.mean, a.m2
    else:
        delta = b.mean - a.mean
        mean = a.mean + delta * nb / n
        m2 = a.m2 + b.m2 + delta * delta * na * nb / n
    latest = b if (b.latest_time, b.latest_step) >= (a.latest_time, a.latest_step) else a
    return Summary(
        count=a.count + b.count,
        finite_count=n,
        mean=mean,
        m2=m2,
        min_value=float(np.fmin(a.min_value, b.min_value)),
        max_value=float(np.fmax(a.max_value, b.max_value)),
        first_time=min(a.first_time, b.first_time),
        last_time=max(a.last_time, b.last_time),
        first_step=min(a.first_step, b.first_step),
        last_step=max(a.last_step, b.last_step),
        latest_step=latest.latest_step,
        latest_time=latest.latest_time,
        latest_value=latest.latest_value,
    )


def summarize_groups(
    group: np.ndarray, steps: Int64Array, times: Int64Array, values: Float64Array
) -> dict[int, Summary]:
    """Per-group summaries of a batch, keyed by group id (batch order = log order)."""
    if len(values) == 0:
        return {}
    group = np.asarray(group, dtype=_I64)
    order = np.argsort(group, kind="stable")
    g, st, tm, v = group[order], steps[order], times[order], values[order]
    starts = _segment_starts(g)
    finite = np.isfinite(v)
    fcount = np.add.reduceat(finite.astype(_I64), starts)
    count = np.diff(np.append(starts, len(v)))
    vz = np.where(finite, v, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.add.reduceat(vz, starts) / fcount
    with np.errstate(over="ignore", invalid="ignore"):  # |values| near float64 max
        dev = np.where(finite, v - np.repeat(mean, count), 0.0)
        m2 = np.add.reduceat(dev * dev, starts)
    vmin = np.minimum.reduceat(np.where(finite, v, np.inf), starts)
    vmax = np.maximum.reduceat(np.where(finite, v, -np.inf), starts)
    none = fcount == 0
    vmin[none] = vmax[none] = mean[none] = np.nan
    # latest: greatest (time, step); full ties -> later in the batch
    lorder = np.lexsort((np.arange(len(v)), st, tm, g))
    j = lorder[np.append(starts[1:], len(v)) - 1]
    cols = zip(
        g[starts].tolist(),
        count.tolist(),
        fcount.tolist(),
        mean.tolist(),
        m2.tolist(),
        vmin.tolist(),
        vmax.tolist(),
        np.minimum.reduceat(tm, starts).tolist(),
        np.maximum.reduceat(tm, starts).tolist(),
        np.minimum.reduceat(st, starts).tolist(),
        np.maximum.reduceat(st, starts).tolist(),
        st[j].tolist(),
        tm[j].tolist(),
        v[j].tolist(),
        strict=False,
    )
    return {c[0]: Summary(*c[1:]) for c in cols}


def summarize(series: Series) -> Summary | None:
    """Summary of one series (None when empty)."""
    res = summarize_groups(np.zeros(len(series), _I64), series.steps, series.times, series.values)
    return res.get(0)


# --------------------------------------------------------------------- partials
def _segment_starts(keys: np.ndarray) -> np.ndarray:
    """Start indices of runs of equal consecutive keys (keys non-empty)."""
    return np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))


def _segment_starts_multi(*keys: np.ndarray) -> np.ndarray:
    change = np.zeros(len(keys[0]), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(change)


def sort_order(group: np.ndarray, steps: Int64Array, times: Int64Array) -> np.ndarray:
    """Stable order by (group, step, time): the storage/read order of points."""
    return np.lexsort((times, steps, group))


def _first_extreme(key: Float64Array, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Per segment, the first index holding the segment's minimum of ``key``
    (``+inf`` = no candidate); ``-1`` where a segment has no candidate."""
    n = len(key)
    ext = np.minimum.reduceat(key, starts)
    hit = (key == np.repeat(ext, ends - starts)) & (key != np.inf)
    pos = np.minimum.reduceat(np.where(hit, np.arange(n), n), starts)
    return np.where(pos == n, -1, pos)


def _put_extremes(out: np.ndarray, prefix: str, pos: np.ndarray, st, tm, v) -> None:  # type: ignore[no-untyped-def]
    none = pos < 0
    at = np.where(none, 0, pos)
    out[f"{prefix}_step"] = np.where(none, 0, st[at])
    out[f"{prefix}_time"] = np.where(none, 0, tm[at])
    out[f"{prefix}_value"] = np.where(none, np.nan, v[at])


def _partials_sorted(
    bucket: Int64Array, starts: np.ndarray, st: Int64Array, tm: Int64Array, v: Float64Array
) -> np.ndarray:
    """Partials of segments ``starts`` of points sorted by (segment, step, time)."""
    ends = np.append(starts[1:], len(v))
    out = np.empty(len(starts), dtype=PARTIAL_DTYPE)
    out["bucket"] = bucket[starts]
    out["count"] = ends - starts
    finite = np.isfinite(v)
    out["nonfinite"] = np.add.reduceat((~finite).astype(_I64), starts)
    last = ends - 1
    out["first_step"], out["first_time"], out["first_value"] = st[starts], tm[starts], v[starts]
    out["last_step"], out["last_time"], out["last_value"] = st[last], tm[last], v[last]
    _put_extremes(out, "min", _first_extreme(np.where(finite, v, np.inf), starts, ends), st, tm, v)
    _put_extremes(out, "max", _first_extreme(np.where(finite, -v, np.inf), starts, ends), st, tm, v)
    return out


def _coarsen_sorted(p: np.ndarray, bucket: Int64Array, starts: np.ndarray) -> np.ndarray:
    """Merge runs ``starts`` of partials of disjoint buckets in step order
    (so a run's first/last/first extreme come from its first/last/earliest
    partial) into partials with bucket ids ``bucket``."""
    ends = np.append(starts[1:], len(p))
    out = np.empty(len(starts), dtype=PARTIAL_DTYPE)
    out["bucket"] = bucket[starts]
    out["count"] = np.add.reduceat(p["count"], starts)
    out["nonfinite"] = np.add.reduceat(p["nonfinite"], starts)
    for f in ("step", "time", "value"):
        out[f"first_{f}"] = p[f"first_{f}"][starts]
        out[f"last_{f}"] = p[f"last_{f}"][ends - 1]
    for prefix, sign in (("min", 1.0), ("max", -1.0)):
        val = p[f"{prefix}_value"]
        key = np.where(np.isnan(val), np.inf, sign * val)
        pos = _first_extreme(key, starts, ends)
        _put_extremes(out, prefix, pos, p[f"{prefix}_step"], p[f"{prefix}_time"], val)
    return out


@dataclass(slots=True)
class TierRows:
    """Partials of one batch: row ``i`` is (group[i], level[i], partials[i])."""

    group: Int64Array
    level: Int64Array
    partials: np.ndarray  # PARTIAL_DTYPE

    def __len__(self) -> int:
        return len(self.partials)


def tier_rows(
    group: np.ndarray,
    steps: Int64Array,
    times: Int64Array,
    values: Float64Array,
    levels: Sequence[int] = TIER_LEVELS,
    *,
    presorted: bool = False,
) -> TierRows:
    """Per (group, level, bucket) partials of a batch of points.

    ``presorted``: the points are already in :func:`sort_order`.
    """
    group = np.asarray(group, dtype=_I64)
    if not presorted:
        order = sort_order(group, steps, times)
        group, steps, times, values = group[order], steps[order], times[order], values[order]
    if len(values) == 0:
        return TierRows(np.empty(0, _I64), np.empty(0, _I64), np.empty(0, PARTIAL_DTYPE))
    groups, lvls, parts = [], [], []
    prev_level, prev, prev_group = None, None, None
    ngroups = len(_segment_starts(group))
    for level in sorted(levels):
        if prev is None:
            bucket = steps >> level
            starts = _segment_starts_multi(group, bucket)
            part = _partials_sorted(bucket, starts, steps, times, values)
            g = group[starts]
        elif len(prev) == ngroups:  # one partial per group: coarser levels only relabel it
            part = prev.copy()
            part["bucket"] >>= level - prev_level
            g = prev_group
        else:  # coarsen the previous level's partials
            bucket = prev["bucket"] >> (level - prev_level)
            starts = _segment_starts_multi(prev_group, bucket)
            part = _coarsen_sorted(prev, bucket, starts)
            g = prev_group[starts]
        parts.append(part)
        groups.append(g)
        lvls.append(np.full(len(part), level, _I64))
        prev_level, prev, prev_group = level, part, g
    return TierRows(np.concatenate(groups), np.concatenate(lvls), concat_partials(parts))


def concat_partials(parts: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate partial arrays (much faster than ``np.concatenate`` on
    structured arrays)."""
    out = np.empty(sum(len(p) for p in parts), dtype=PARTIAL_DTYPE)
    i = 0
    for p in parts:
        out[i : i + len(p)] = p
        i += len(p)
    return out


def partials_from_blobs(blobs: Sequence[bytes]) -> np.ndarray:
    """Partials stored as packed :data:`PARTIAL_DTYPE` bytes."""
    return np.frombuffer(b"".join(blobs), dtype=PARTIAL_DTYPE)


def partials_from_points(series: Series, shift: int) -> np.ndarray:
    """Partials of one series (any order) in buckets of width ``2**shift``."""
    if len(series) == 0:
        return np.empty(0, PARTIAL_DTYPE)
    order = np.lexsort((series.times, series.steps))
    st, tm, v = series.steps[order], series.times[order], series.values[order]
    bucket = st >> shift
    return _partials_sorted(bucket, _segment_starts(bucket), st, tm, v)


def merge_partials(
    keys: Sequence[np.ndarray], partials: np.ndarray
) -> tuple[list[np.ndarray], np.ndarray]:
    """Merge partials sharing the same key tuple (e.g. (series, level, bucket)).

    ``keys`` are equal-length integer arrays; ``partials["bucket"]`` should be
    one of them (or constant per key). Returns the unique keys (sorted) and
    one merged partial per key.
    """
    if len(partials) == 0:
        return [np.asarray(k)[:0] for k in keys], partials[:0].copy()
    keys = [np.asarray(k, dtype=_I64) for k in keys]
    rev = tuple(reversed(keys))
    p = partials
    base = np.lexsort(rev)
    ks = [k[base] for k in keys]
    starts = _segment_starts_multi(*ks)
    ends = np.append(starts[1:], len(p))
    out = np.empty(len(starts), dtype=PARTIAL_DTYPE)
    out["bucket"] = p["bucket"][base][starts]
    out["count"] = np.add.reduceat(p["count"][base], starts)
    out["nonfinite"] = np.add.reduceat(p["nonfinite"][base], starts)

    def take(prefix: str, order: np.ndarray, at: np.ndarray) -> None:
        sel = order[at]
        for f in ("step", "time", "value"):
            out[f"{prefix}_{f}"] = p[f"{prefix}_{f}"][sel]

    take("first", np.lexsort((p["first_time"], p["first_step"], *rev)), starts)
    take("last", np.lexsort((p["last_time"], p["last_step"], *rev)), ends - 1)
    mn = np.where(np.isnan(p["min_value"]), np.inf, p["min_value"])
    take("min", np.lexsort((p["min_time"], p["min_step"], mn, *rev)), starts)
    mx = np.where(np.isnan(p["max_value"]), np.inf, -p["max_value"])
    take("max", np.lexsort((p["max_time"], p["max_step"], mx, *rev)), starts)
    return [k[starts] for k in ks], out


def merge_tier_rows(rows: TierRows) -> TierRows:
    """Compact tier rows: one partial per (group, level, bucket)."""
    (g, lv, _), merged = merge_partials(
        (rows.group, rows.level, rows.partials["bucket"]), rows.partials
    )
    return TierRows(g, lv, merged)


def coarsen(partials: np.ndarray, shift: int) -> np.ndarray:
    """Merge partials of one series into buckets ``2**shift`` times wider."""
    p = partials.copy()
    p["bucket"] >>= shift
    return merge_partials((p["bucket"],), p)[1]


# --------------------------------------------------------------------- M4
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
    bits = v.view(_I64)
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
    t = tiers[(tiers["bucket"] >= lo) & (tiers["bucket"] <= hi)]
    inner = coarsen(t, plan.shift - plan.level)
    edge = partials_from_points(edge_points, plan.shift)
    both = concat_partials([inner, edge])
    merged = merge_partials((both["bucket"],), both)[1]
    return _downsampled(merged, plan.width)
