"""Numpy aggregation shared by every backend: series summaries and step tiers.

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

Downsampling (M4) from partials and tiers: :mod:`.m4`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .base import (
    Float64Array,
    Int64Array,
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
PARTIAL_FIELDS: tuple[str, ...] = PARTIAL_DTYPE.names or ()
"""The field names of :data:`PARTIAL_DTYPE`, in order."""

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


SAFE_MOMENT, SAFE_M2 = 1e140, 1e280
"""Below these (|mean|, M2) the float formulas of :func:`merge_moments` cannot
overflow for any int64 count."""


def merge_moments(
    ma: float, m2a: float, na: int, mb: float, m2b: float, nb: int
) -> tuple[float, float]:
    """(mean, M2) of two groups of ``na`` and ``nb`` > 0 finite values (Chan et al.).

    Past :data:`SAFE_MOMENT`/:data:`SAFE_M2` the float formulas' intermediates can overflow
    while the result need not: there the merge is exact and rounded once, a
    result past float64's range is ±inf, never an error. PostgreSQL computes the
    same in ``numeric`` (``postgres_ingest._welford``)."""
    n = na + nb
    if max(abs(ma), abs(mb)) < SAFE_MOMENT and max(m2a, m2b) < SAFE_M2:
        delta = mb - ma
        return ma + delta * nb / n, m2a + m2b + delta * delta * na * nb / n
    if not (math.isfinite(ma) and math.isfinite(mb)):  # a group's sum overflowed
        return ma * (na / n) + mb * (nb / n), m2a + m2b + (mb - ma) ** 2 * (na * nb / n)
    fa, fb = Fraction(ma), Fraction(mb)
    mean = _to_float((fa * na + fb * nb) / n)
    if not (math.isfinite(m2a) and math.isfinite(m2b)):
        return mean, m2a + m2b
    return mean, _to_float(Fraction(m2a) + Fraction(m2b) + (fb - fa) ** 2 * na * nb / n)


def _to_float(x: Fraction) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


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
        mean, m2 = merge_moments(a.mean, a.m2, na, b.mean, b.m2, nb)
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
    starts = segment_starts(g)
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
def segment_starts(*keys: np.ndarray) -> np.ndarray:
    """Start indices of runs of consecutive equal keys (the tuples of ``keys``,
    non-empty arrays of one length)."""
    change = np.empty(len(keys[0]), dtype=bool)
    change[0] = True
    change[1:] = keys[0][1:] != keys[0][:-1]
    for k in keys[1:]:
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


def coarsen_sorted(p: np.ndarray, bucket: Int64Array, starts: np.ndarray) -> np.ndarray:
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
    groups: list[np.ndarray] = []
    lvls: list[np.ndarray] = []
    parts: list[np.ndarray] = []
    prev: np.ndarray | None = None  # the previous level's partials
    prev_level, prev_group = 0, group  # the previous level and its groups, once prev is set
    ngroups = len(segment_starts(group))
    for level in sorted(levels):
        if prev is None:
            bucket = steps >> level
            starts = segment_starts(group, bucket)
            part = _partials_sorted(bucket, starts, steps, times, values)
            g = group[starts]
        elif len(prev) == ngroups:  # one partial per group: coarser levels only relabel it
            part = prev.copy()
            part["bucket"] >>= level - prev_level
            g = prev_group
        else:  # coarsen the previous level's partials
            bucket = prev["bucket"] >> (level - prev_level)
            starts = segment_starts(prev_group, bucket)
            part = coarsen_sorted(prev, bucket, starts)
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
    return _partials_sorted(bucket, segment_starts(bucket), st, tm, v)


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
    starts = segment_starts(*ks)
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
    """Compact tier rows: one partial per (group, level, bucket), sorted. Only the
    partials sharing a key go through :func:`merge_partials`; the others are
    taken as they are (the same result)."""
    b = rows.partials["bucket"]
    order = np.lexsort((b, rows.level, rows.group))
    g, lv, b = rows.group[order], rows.level[order], b[order]
    starts = segment_starts(g, lv, b) if len(order) else order
    p = rows.partials[order]
    if len(starts) == len(order):
        return TierRows(g, lv, p)
    size = np.diff(np.append(starts, len(order)))
    shared = np.repeat(size > 1, size)
    out = p[starts]
    _, out[size > 1] = merge_partials((g[shared], lv[shared], b[shared]), p[shared])
    return TierRows(g[starts], lv[starts], out)
