"""Truncated Gaussian kernel smoothing of a sorted series in O(n log n).

ŷ_i = Σ_j w_ij·y_j / Σ_j w_ij with w_ij = exp(−½((x_j−x_i)/σ)²) over the j
with |x_j − x_i| ≤ reach (reach = truncate·σ). The cost never grows with σ
beyond the data's own extent:

* **lattice** — when x are integers (steps), the points sit on the lattice of
  their gcd spacing and the sums are one convolution (direct or FFT) over it:
  exact up to float rounding; chosen when cheaper than the pairs;
* **pairs** — the exact sums, vectorised over all (i, j) pairs, when the
  windows hold few points (at most :data:`PAIR_BUDGET` pairs in all, or a
  segment's average window is at most :data:`PAIRS_PER_POINT`);
* **binned** — irregular real x with wide windows: linear binning on a grid of
  spacing ≤ σ/:data:`CELLS_PER_SIGMA`, then the same convolution (relative
  error about (spacing/σ)²/8, ≤ 3·10⁻⁵).

Points farther apart than ``reach`` never interact, so the series is cut at
such gaps and each wide segment gets the cheapest exact method that fits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

PAIR_BUDGET = 1 << 22  # all pairs are summed directly below this many
PAIR_BLOCK = 1 << 18  # pairs evaluated per vectorised step (bounds memory)
PAIRS_PER_POINT = 64  # a segment with a wider average window goes to a grid
GRID_MAX = 1 << 21  # most grid cells of one convolution (FFT memory ≤ ~100 MB)
CELLS_PER_SIGMA = 64  # binned grid spacing σ/64 (coarser only past GRID_MAX)
DIRECT_KERNEL = 129  # kernels up to this length are convolved directly, longer by FFT
MAX_EXACT_INT = 2.0**53
PAIR_COST, FFT_COST = 40, 200  # rough ns per pair, per FFT cell; 1 per direct multiply-add


def gaussian_sums(x: FloatArray, y: FloatArray, sigma: float, truncate: float) -> FloatArray:
    """The smoothed values for finite ``y`` at sorted ``x`` (see the module doc)."""
    n = x.size
    reach = truncate * sigma
    lo = np.searchsorted(x, x - reach, side="left")
    hi = np.searchsorted(x, x + reach, side="right")
    counts = (hi - lo).astype(np.int64)
    pairs = int(counts.sum())
    lattice = _lattice(x)
    if lattice is not None:
        cells, spacing = lattice
        size = int(cells[-1]) + 1
        if size < GRID_MAX and _grid_cost(size, reach / spacing) < PAIR_COST * pairs:
            return _grid(cells.astype(np.float64), y, sigma, reach, spacing)
    if pairs <= PAIR_BUDGET:
        return _pairs(x, y, sigma, lo, counts, np.arange(n))
    out = np.empty(n)
    bounds = np.r_[0, np.flatnonzero(np.diff(x) > reach) + 1, n]
    starts, ends = bounds[:-1], bounds[1:]
    seg_pairs = np.add.reduceat(counts, starts)
    wide = seg_pairs > PAIRS_PER_POINT * (ends - starts)
    narrow_rows = np.flatnonzero(~np.repeat(wide, ends - starts))
    if narrow_rows.size:
        out[narrow_rows] = _pairs(x, y, sigma, lo, counts, narrow_rows)
    for a, b in zip(starts[wide].tolist(), ends[wide].tolist(), strict=True):
        out[a:b] = _segment(x[a:b], y[a:b], sigma, reach, lo[a:b] - a, counts[a:b])
    return out


def _segment(
    x: FloatArray, y: FloatArray, sigma: float, reach: float, lo: IntArray, counts: IntArray
) -> FloatArray:
    """One wide segment: the lattice if it fits, else pairs or a binned grid, by cost."""
    lattice = _lattice(x)
    if lattice is not None and int(lattice[0][-1]) < GRID_MAX:
        cells, spacing = lattice
        return _grid(cells.astype(np.float64), y, sigma, reach, spacing)
    span = float(x[-1] - x[0])
    spacing = max(sigma / CELLS_PER_SIGMA, span / (GRID_MAX - 2))
    if spacing > sigma / 16:  # too coarse for a faithful grid: exact, O(pairs)
        return _pairs(x, y, sigma, lo, counts, np.arange(x.size))
    return _grid((x - x[0]) / spacing, y, sigma, reach, spacing)


def _grid_cost(size: int, half: float) -> float:
    """Rough cost of :func:`_grid` over ``size`` cells with a kernel of ±``half`` cells."""
    k = 2 * min(half, size) + 1
    return 2 * size * k if k <= DIRECT_KERNEL else FFT_COST * (size + min(half, size))


def _lattice(x: FloatArray) -> tuple[IntArray, float] | None:
    """(cell index of each x, spacing) when x are integers on a common lattice."""
    if abs(x[0]) >= MAX_EXACT_INT or abs(x[-1]) >= MAX_EXACT_INT or np.any(x != np.round(x)):
        return None
    xi = x.astype(np.int64)
    steps = np.diff(xi)
    steps = steps[steps > 0]
    spacing = int(np.gcd.reduce(steps)) if steps.size else 1
    return (xi - xi[0]) // spacing, float(spacing)


def _pairs(
    x: FloatArray,
    y: FloatArray,
    sigma: float,
    lo: IntArray,
    counts: IntArray,
    rows: IntArray,
) -> FloatArray:
    """Exact kernel sums at ``rows``, in blocks of about :data:`PAIR_BLOCK` pairs."""
    out = np.empty(rows.size)
    c = counts[rows]
    ends = np.cumsum(c)
    start = 0
    while start < rows.size:
        done = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, done + PAIR_BLOCK, side="right")), start + 1)
        cb = c[start:stop]
        local = np.repeat(np.arange(stop - start), cb)
        i = rows[start:stop][local]
        j = lo[i] + np.arange(local.size) - np.repeat(np.cumsum(cb) - cb, cb)
        w = np.exp(-0.5 * ((x[j] - x[i]) / sigma) ** 2)
        num = np.bincount(local, weights=w * y[j], minlength=stop - start)
        den = np.bincount(local, weights=w, minlength=stop - start)
        out[start:stop] = num / den
        start = stop
    return out


def _grid(t: FloatArray, y: FloatArray, sigma: float, reach: float, spacing: float) -> FloatArray:
    """Kernel sums by convolution on a uniform grid; ``t`` = x in cells from the first.

    Each point is spread linearly over its two nearest cells (one cell when ``t``
    is an integer, i.e. exactly on the lattice) and read back the same way. y is
    centred on its mean first so the FFT's rounding is relative to y's spread.
    """
    cell = np.floor(t).astype(np.int64)
    frac = t - cell
    size = int(cell[-1]) + 2
    centre = float(y.mean())
    yc = y - centre
    sums = (
        _binned(cell, (1 - frac) * yc, size) + _binned(cell + 1, frac * yc, size),
        _binned(cell, 1 - frac, size) + _binned(cell + 1, frac, size),
    )
    half = min(int(np.floor(reach / spacing)), size - 1) if np.isfinite(reach) else size - 1
    offsets = np.arange(-half, half + 1) * spacing
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    num, den = (_convolve_same(row, kernel) for row in sums)
    num_at = (1 - frac) * num[cell] + frac * num[cell + 1]
    den_at = (1 - frac) * den[cell] + frac * den[cell + 1]
    return centre + num_at / den_at


def _binned(cells: IntArray, weights: FloatArray, size: int) -> FloatArray:
    """``np.bincount`` with float weights (numpy's stubs type every bincount as
    integers; ``astype(copy=False)`` returns the float64 result itself)."""
    return np.bincount(cells, weights, size).astype(np.float64, copy=False)


def _convolve_same(row: FloatArray, kernel: FloatArray) -> FloatArray:
    """``row`` convolved with the odd-length, centred ``kernel``, cut to the row's
    length: directly when the kernel is short, else by FFT."""
    half, size = kernel.size // 2, row.size
    if kernel.size <= DIRECT_KERNEL:
        return np.convolve(row, kernel)[half : half + size]
    n = _fast_length(size + half)  # circular wrap-around lands outside the kept part
    spectrum = np.fft.rfft(row, n) * np.fft.rfft(kernel, n)
    return np.fft.irfft(spectrum, n)[half : half + size]


def _fast_length(n: int) -> int:
    """The smallest 2^a·3^b·5^c ≥ n (sizes the FFT handles fastest)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            best = min(best, p35 << max(0, (-(-n // p35) - 1).bit_length()))
            p35 *= 3
        p5 *= 5
    return best
