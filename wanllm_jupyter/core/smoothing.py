"""Smoothing, outlier y-ranges and cross-run aggregation for metric series.

Pure numpy, shared by the kernel-side charts and the server (``smoothing=``),
so a curve smoothed in the browser and one smoothed in Python are identical.
Definitions: ``docs/chart-math.md`` (smoothing, y-range, cross-run aggregation):

* NaN/±Inf values are gaps: returned unchanged, excluded from every
  statistic, and they never advance smoothing state.
* Duplicate x values are collapsed to the **last** value logged at that x
  before smoothing (:func:`collapse_duplicates`); :func:`smooth` does this.

Methods and the meaning of their parameter (``METHODS``):

``ema`` (default)
    x-aware EMA; parameter = half-life in x units.
    ŷ_i = Σ_j 2^(−(x_i−x_j)/h)·y_j / Σ_j 2^(−(x_i−x_j)/h) over finite j ≤ i.
``tb_ema``
    TensorBoard's debiased EMA; parameter = weight s ∈ [0, 1).
``gaussian``
    centred Gaussian kernel; parameter = σ in x units, truncated at 4σ.
``running_avg`` / ``running_avg_trailing``
    mean of a window of finite points (parameter = window length in points);
    centred (half = window // 2 each side, truncated at the edges) or trailing.

Every method costs O(n) or O(n log n) in the series length whatever its
parameter (:mod:`.gaussian` says how the Gaussian does it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from .gaussian import gaussian_sums

FloatArray = npt.NDArray[np.float64]
Method = Literal["ema", "tb_ema", "gaussian", "running_avg", "running_avg_trailing"]
GAUSSIAN_TRUNCATE = 4.0


class SmoothingError(ValueError):
    """A smoothing, range or aggregation argument is invalid."""


# ----------------------------------------------------------------- helpers
def _as_xy(x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape:
        raise SmoothingError(f"x has {xa.size} values but y has {ya.size}")
    if not np.all(np.isfinite(xa)):
        raise SmoothingError(f"x must be finite; x[{int(np.argmin(np.isfinite(xa)))}] is not")
    if xa.size > 1 and np.any(np.diff(xa) < 0):
        raise SmoothingError("x must be sorted in ascending order")
    return xa, ya


def collapse_duplicates(
    x: npt.ArrayLike, y: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """One point per distinct x (x sorted): the last y logged there, and the count."""
    xa, ya = _as_xy(x, y)
    if xa.size == 0:
        return xa, ya, np.zeros(0, dtype=np.int64)
    last = np.r_[xa[1:] != xa[:-1], True]
    idx = np.flatnonzero(last)
    counts = np.diff(np.r_[-1, idx]).astype(np.int64)
    return xa[idx], ya[idx], counts


def _on_finite(
    fn: Callable[[FloatArray, FloatArray], FloatArray], x: FloatArray, y: FloatArray
) -> FloatArray:
    """Apply ``fn`` to the finite points only; non-finite y pass through unchanged."""
    out = y.copy()
    ok = np.isfinite(y)
    if ok.any():
        out[ok] = fn(x[ok], y[ok])
    return out


def _positive(method: str, param: float) -> float:
    if not np.isfinite(param) or param < 0:
        raise SmoothingError(f"smoothing_param for {method!r} must be >= 0, got {param!r}")
    return float(param)


def _check_weight(weight: float) -> None:
    if not np.isfinite(weight) or not 0 <= weight < 1:
        raise SmoothingError(f"smoothing_param for 'tb_ema' must be in [0, 1), got {weight!r}")


def _window(window: float) -> int:
    finite = isinstance(window, int) or math.isfinite(window)
    if isinstance(window, bool) or not finite or int(window) != window or window < 1:
        raise SmoothingError(
            f"smoothing_param for 'running_avg' must be an integer >= 1, got {window!r}"
        )
    return int(window)


# ------------------------------------------------------------- methods
def _decayed_sums(x: FloatArray, y: FloatArray, half_life: float) -> FloatArray:
    """Σ_{j ≤ i} 2^(−(x_i−x_j)/h)·y_j for every i (x sorted), in O(n log n).

    The recurrence s_i = a_i·s_{i−1} + y_i with a_i = 2^(−(x_i−x_{i−1})/h) is
    solved by a doubling scan (log₂ n vectorised passes): every factor is in
    [0, 1], so nothing overflows whatever the half-life.
    """
    s = y.copy()
    a = np.exp2(-np.diff(x, prepend=x[:1]) / half_life)
    shift = 1
    while shift < s.size:
        s[shift:] = s[shift:] + a[shift:] * s[:-shift]
        a[shift:] = a[shift:] * a[:-shift]
        shift *= 2
    return s


def ema(x: npt.ArrayLike, y: npt.ArrayLike, half_life: float) -> FloatArray:
    """x-aware (time-weighted) EMA with the given half-life in x units (0 = none)."""
    xa, ya = _as_xy(x, y)
    h = _positive("ema", half_life)
    if h == 0:
        return ya.copy()

    def run(xf: FloatArray, yf: FloatArray) -> FloatArray:
        return _decayed_sums(xf, yf, h) / _decayed_sums(xf, np.ones_like(yf), h)

    return _on_finite(run, xa, ya)


def tb_ema(y: npt.ArrayLike, weight: float) -> FloatArray:
    """TensorBoard's debiased EMA (``vz_line_chart2``).

    m ← s·m + (1−s)·y over finite y, output m / (1 − s^k), k = finite count so
    far. A constant series is returned unchanged, as TensorBoard does.
    """
    ya = np.asarray(y, dtype=np.float64).ravel()
    _check_weight(weight)
    if ya.size == 0 or np.all(ya == ya[0]):
        return ya.copy()
    s = float(weight)
    if s == 0:
        return ya.copy()

    def run(_: FloatArray, yf: FloatArray) -> FloatArray:
        k = np.arange(1, yf.size + 1, dtype=np.float64)  # m_k = (1−s)·Σ s^(k−j)·y_j
        return (1 - s) * _decayed_sums(k, yf, -1 / np.log2(s)) / (1 - s**k)

    return _on_finite(run, ya, ya)


def gaussian(x: npt.ArrayLike, y: npt.ArrayLike, sigma: float) -> FloatArray:
    """Centred Gaussian kernel smoothing, σ in x units, truncated at 4σ (0 = none).

    O(n log n) whatever σ (see :mod:`.gaussian`): exact pairwise sums for
    narrow windows, an FFT convolution on the lattice when x are integers
    (steps), and a finely binned convolution only for irregular real x with
    wide windows.
    """
    xa, ya = _as_xy(x, y)
    sig = _positive("gaussian", sigma)
    if sig == 0:
        return ya.copy()
    return _on_finite(lambda xf, yf: gaussian_sums(xf, yf, sig, GAUSSIAN_TRUNCATE), xa, ya)


def running_average(y: npt.ArrayLike, window: int, *, centered: bool = True) -> FloatArray:
    """Mean over a window of finite points: centred (truncated at edges) or trailing."""
    ya = np.asarray(y, dtype=np.float64).ravel()
    w = min(_window(window), 2 * ya.size + 1)  # wider windows cover the same points

    def run(_: FloatArray, yf: FloatArray) -> FloatArray:
        csum = np.r_[0.0, np.cumsum(yf)]
        i = np.arange(yf.size)
        if centered:
            lo, hi = np.maximum(i - w // 2, 0), np.minimum(i + w // 2 + 1, yf.size)
        else:
            lo, hi = np.maximum(i - w + 1, 0), i + 1
        means: FloatArray = (csum[hi] - csum[lo]) / (hi - lo)  # numpy types np.r_ as Any
        return means

    return _on_finite(run, ya, ya)


METHODS: tuple[str, ...] = ("ema", "tb_ema", "gaussian", "running_avg", "running_avg_trailing")


@dataclass(frozen=True, slots=True)
class Smoothed:
    """A smoothed series on the distinct x of its input (duplicates collapsed)."""

    x: FloatArray
    raw: FloatArray  # last value logged at each x
    values: FloatArray
    counts: npt.NDArray[np.int64]  # points logged at each x
    method: str
    param: float


def check(method: str, param: float) -> None:
    """Raise :class:`SmoothingError` unless ``param`` is valid for ``method``."""
    if method in ("ema", "gaussian"):
        _positive(method, param)
    elif method == "tb_ema":
        _check_weight(param)
    elif method in ("running_avg", "running_avg_trailing"):
        _window(param)
    else:
        raise SmoothingError(f"unknown smoothing method {method!r}; expected one of {METHODS}")


def smooth(x: npt.ArrayLike, y: npt.ArrayLike, method: str, param: float) -> Smoothed:
    """Collapse duplicate x (keep the last value), then smooth with ``method``."""
    check(method, param)
    xs, ys, counts = collapse_duplicates(x, y)
    if method == "ema":
        values = ema(xs, ys, param)
    elif method == "tb_ema":
        values = tb_ema(ys, param)
    elif method == "gaussian":
        values = gaussian(xs, ys, param)
    else:
        values = running_average(ys, param, centered=method == "running_avg")  # type: ignore[arg-type]
    return Smoothed(xs, ys, values, counts, method, float(param))


def param_from_strength(method: str, strength: float, x_span: float, n_points: int) -> float:
    """Map a UI slider ``strength`` ∈ [0, 1) to the method's parameter.

    ema / gaussian: ``strength² · x_span / 20`` x units (half-life or σ);
    tb_ema: the weight itself; running averages: ``1 + 2·round(strength · n/20)``.
    """
    if not np.isfinite(strength) or not 0 <= strength < 1:
        raise SmoothingError(f"smoothing strength must be in [0, 1), got {strength!r}")
    if method in ("ema", "gaussian"):
        return strength**2 * max(float(x_span), 0.0) / 20
    if method == "tb_ema":
        return float(strength)
    if method in ("running_avg", "running_avg_trailing"):
        return float(1 + 2 * round(strength * max(n_points, 1) / 20))
    raise SmoothingError(f"unknown smoothing method {method!r}; expected one of {METHODS}")


# --------------------------------------------------------- y-ranges
def quantile(y: npt.ArrayLike, q: float) -> float:
    """Linear-interpolation quantile (R-7, d3) of the finite values; NaN if none."""
    if not 0 <= q <= 1:
        raise SmoothingError(f"quantile q must be in [0, 1], got {q!r}")
    ya = np.asarray(y, dtype=np.float64).ravel()
    finite = ya[np.isfinite(ya)]
    return float(np.quantile(finite, q, method="linear")) if finite.size else float("nan")


def percentile_range(
    y: npt.ArrayLike, lo: float = 0.05, hi: float = 0.95
) -> tuple[float, float] | None:
    """The "ignore outliers" y extent [Q(lo), Q(hi)]; None without finite values."""
    if lo >= hi:
        raise SmoothingError(f"percentile range needs lo < hi, got {lo!r} >= {hi!r}")
    a, b = quantile(y, lo), quantile(y, hi)
    return None if np.isnan(a) else (a, b)


def tukey_range(y: npt.ArrayLike, k: float = 1.5) -> tuple[float, float] | None:
    """Tukey fences [Q1 − k·IQR, Q3 + k·IQR]; None without finite values."""
    if k < 0:
        raise SmoothingError(f"Tukey k must be >= 0, got {k!r}")
    q1, q3 = quantile(y, 0.25), quantile(y, 0.75)
    if np.isnan(q1):
        return None
    iqr = q3 - q1
    return q1 - k * iqr, q3 + k * iqr


# --------------------------------------------------- aggregation
@dataclass(frozen=True, slots=True)
class Aggregate:
    """Cross-run aggregate on a common x grid (one row per non-empty bucket)."""

    x: FloatArray  # bucket x: the distinct x itself, or the bucket centre
    line: FloatArray
    lower: FloatArray
    upper: FloatArray
    n: npt.NDArray[np.int64]  # runs with a finite value in the bucket
    line_kind: str
    band_kind: str


def aggregate(
    series: Sequence[tuple[npt.ArrayLike, npt.ArrayLike]],
    *,
    line: Literal["mean", "median"] = "mean",
    band: Literal["minmax", "std", "stderr"] = "minmax",
    buckets: int = 200,
) -> Aggregate:
    """Aggregate runs' ``(x, y)`` series per x bucket.

    The grid is the distinct x of all runs when there are at most ``buckets``
    of them, else ``buckets`` equal-width buckets over the x range. Each run
    contributes the mean of its finite values in a bucket. ``std`` and
    ``stderr`` bands are mean ± sample std (n−1) and mean ± std/√n (zero width
    when n = 1); ``minmax`` spans the runs' min to max.
    """
    if line not in ("mean", "median"):
        raise SmoothingError(f"aggregation line must be 'mean' or 'median', got {line!r}")
    if band not in ("minmax", "std", "stderr"):
        raise SmoothingError(f"aggregation band must be 'minmax', 'std' or 'stderr', got {band!r}")
    if buckets < 1:
        raise SmoothingError(f"buckets must be >= 1, got {buckets!r}")
    runs = []
    for i, (x, y) in enumerate(series):
        xa = np.asarray(x, dtype=np.float64).ravel()
        ya = np.asarray(y, dtype=np.float64).ravel()
        if xa.shape != ya.shape:
            raise SmoothingError(f"series {i}: x has {xa.size} values but y has {ya.size}")
        ok = np.isfinite(ya) & np.isfinite(xa)
        runs.append((xa[ok], ya[ok]))
    all_x = np.unique(np.concatenate([r[0] for r in runs])) if runs else np.zeros(0)
    if all_x.size == 0:
        empty = np.zeros(0)
        return Aggregate(empty, empty, empty, empty, np.zeros(0, np.int64), line, band)
    if all_x.size <= buckets:
        edges, centres = None, all_x
    else:
        edges = np.linspace(all_x[0], all_x[-1], buckets + 1)
        centres = (edges[:-1] + edges[1:]) / 2
    table = np.full((len(runs), centres.size), np.nan)
    for r, (xa, ya) in enumerate(runs):
        if edges is None:
            b = np.searchsorted(all_x, xa)
        else:
            b = np.clip(np.searchsorted(edges, xa, "right") - 1, 0, buckets - 1)
        sums = np.bincount(b, weights=ya, minlength=centres.size)
        cnt = np.bincount(b, minlength=centres.size)
        table[r, cnt > 0] = sums[cnt > 0] / cnt[cnt > 0]
    present = np.isfinite(table)
    n_all = present.sum(axis=0)
    keep = n_all > 0
    t, ok, n = table[:, keep], present[:, keep], n_all[keep].astype(np.int64)
    mean = np.where(ok, t, 0.0).sum(axis=0) / n
    centre_line = mean if line == "mean" else np.nanmedian(t, axis=0)
    if band == "minmax":
        lower, upper = np.nanmin(t, axis=0), np.nanmax(t, axis=0)
    else:
        sq = np.where(ok, (t - mean) ** 2, 0.0).sum(axis=0)
        dev = np.sqrt(sq / np.maximum(n - 1, 1))
        if band == "stderr":
            dev = dev / np.sqrt(n)
        lower, upper = mean - dev, mean + dev
    return Aggregate(centres[keep], centre_line, lower, upper, n, line, band)
