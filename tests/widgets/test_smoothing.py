"""Smoothing, y-range and aggregation against vectors from the published formulas."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from wanllm_jupyter.core import smoothing as sm

NAN, INF = float("nan"), float("inf")


def tb_closed_form(y: list[float], s: float) -> list[float]:
    """tb_ema closed form (docs/chart-math.md#smoothing):
    Σ s^(c(i)−c(j)) y_j / Σ s^(c(i)−c(j)), finite j ≤ i."""
    out, finite = [], []
    for v in y:
        if not math.isfinite(v):
            out.append(v)
            continue
        finite.append(v)
        c = len(finite)
        w = [s ** (c - 1 - j) for j in range(c)]
        out.append(sum(wi * yj for wi, yj in zip(w, finite, strict=True)) / sum(w))
    return out


def twema_closed_form(x: list[float], y: list[float], h: float) -> list[float]:
    """ema: Σ_j 2^(−(x_i−x_j)/h) y_j / Σ_j 2^(−(x_i−x_j)/h), finite j ≤ i."""
    out = []
    for i, v in enumerate(y):
        if not math.isfinite(v):
            out.append(v)
            continue
        js = [j for j in range(i + 1) if math.isfinite(y[j])]
        w = [2 ** (-(x[i] - x[j]) / h) for j in js]
        out.append(sum(wi * y[j] for wi, j in zip(w, js, strict=True)) / sum(w))
    return out


def assert_same(actual, expected) -> None:
    np.testing.assert_allclose(
        np.asarray(actual),
        np.asarray(expected, dtype=float),
        rtol=1e-12,
        atol=1e-12,
        equal_nan=True,
    )


def test_tb_ema_hand_vector() -> None:
    # s = 0.6: m1 = 0.4 -> 1; m2 = 1.04 / 0.64; NaN skipped; m3 = 2.224 / 0.784
    assert_same(sm.tb_ema([1, 2, NAN, 4], 0.6), [1, 1.625, NAN, 2.224 / 0.784])


def test_tb_ema_with_nans_and_duplicate_steps_matches_closed_form() -> None:
    steps = [0, 1, 1, 2, 3, 3, 3, 4, 5, 6]
    values = [10.0, 7.0, 4.0, NAN, 3.0, 9.0, 2.0, INF, 1.0, -INF]
    out = sm.smooth(steps, values, "tb_ema", 0.9)
    # duplicates collapse to the last value logged at each step
    assert_same(out.x, [0, 1, 2, 3, 4, 5, 6])
    assert_same(out.raw, [10.0, 4.0, NAN, 2.0, INF, 1.0, -INF])
    assert out.counts.tolist() == [1, 2, 1, 3, 1, 1, 1]
    expected = tb_closed_form([10.0, 4.0, NAN, 2.0, INF, 1.0, -INF], 0.9)
    assert_same(out.values, expected)
    # hand check of the 2nd point: (0.9·10 + 4) / 1.9
    assert out.values[1] == pytest.approx(13 / 1.9, rel=1e-12)
    # non-finite values pass through and never advance the state
    assert np.isnan(out.values[2]) and out.values[4] == INF and out.values[6] == -INF


def test_tb_ema_constant_series_and_zero_weight() -> None:
    assert_same(sm.tb_ema([3, 3, 3], 0.99), [3, 3, 3])
    assert_same(sm.tb_ema([1, 5, NAN, 2], 0.0), [1, 5, NAN, 2])


def test_x_aware_ema_irregular_steps_matches_closed_form() -> None:
    x = [0, 1, 2, 10, 11, 30]
    y = [4.0, 2.0, NAN, 8.0, 1.0, 5.0]
    assert_same(sm.ema(x, y, 2.5), twema_closed_form(x, y, 2.5))
    # hand: second point weights 2^(-1/2.5) and 1
    a = 2 ** (-0.4)
    assert sm.ema(x, y, 2.5)[1] == pytest.approx((a * 4 + 2) / (a + 1), rel=1e-12)


def test_x_aware_ema_depends_on_x_distance_not_point_count() -> None:
    # the weight of a point depends only on its x distance: a far-away point
    # contributes the same whether or not unrelated points sit in between.
    sparse = sm.ema([0, 100], [0.0, 1.0], 10)[-1]
    assert sparse == pytest.approx(1 / (1 + 2**-10), rel=1e-12)
    assert_same(sm.ema([0, 1], [1, 2], 0), [1, 2])


def test_gaussian_matches_direct_sum() -> None:
    x = np.array([0, 1, 2, 4, 7, 8, 20], dtype=float)
    y = np.array([1, 3, NAN, 2, 6, 5, 9], dtype=float)
    sigma = 1.5
    out = sm.gaussian(x, y, sigma)
    ok = np.isfinite(y)
    for i in range(x.size):
        if not ok[i]:
            assert np.isnan(out[i])
            continue
        u = (x[ok] - x[i]) / sigma
        k = np.where(np.abs(u) <= 4, np.exp(-(u**2) / 2), 0)
        assert out[i] == pytest.approx(np.sum(k * y[ok]) / np.sum(k), rel=1e-12)
    assert out[-1] == 9  # nothing within 4σ of x = 20


def test_running_average_centred_and_trailing() -> None:
    y = [1, 2, 3, NAN, 4, 5]
    assert_same(sm.running_average(y, 3), [1.5, 2, 3, NAN, 4, 4.5])
    assert_same(sm.running_average(y, 3, centered=False), [1, 1.5, 2, NAN, 3, 4])
    assert_same(
        sm.smooth(range(6), y, "running_avg_trailing", 2).values, [1, 1.5, 2.5, NAN, 3.5, 4.5]
    )


def test_quantile_ranges() -> None:
    y = [1, 2, 3, 4, 100, INF, NAN]
    assert sm.quantile(y, 0.05) == pytest.approx(1.2)  # 1 + 0.2·(2 − 1)
    assert sm.percentile_range(y) == pytest.approx((1.2, 80.8))
    assert sm.tukey_range(y) == pytest.approx((-1.0, 7.0))  # Q1 2, Q3 4
    assert sm.percentile_range([NAN, INF]) is None


def test_aggregate_common_steps() -> None:
    runs = [([0, 1, 2], [1, 2, 3]), ([0, 1, 2, 3], [3, 4, 5, 6]), ([0, 1], [2, NAN])]
    agg = sm.aggregate(runs, line="mean", band="minmax")
    assert_same(agg.x, [0, 1, 2, 3])
    assert_same(agg.line, [2, 3, 4, 6])
    assert_same(agg.lower, [1, 2, 3, 6])
    assert_same(agg.upper, [3, 4, 5, 6])
    assert agg.n.tolist() == [3, 2, 2, 1]
    std = sm.aggregate(runs, band="std")
    assert_same(std.upper - std.line, [1, math.sqrt(2), math.sqrt(2), 0])
    sem = sm.aggregate(runs, band="stderr", line="median")
    assert_same(sem.line, [2, 3, 4, 6])
    assert sem.upper[0] - 2 == pytest.approx(1 / math.sqrt(3))


def test_aggregate_buckets_when_many_x() -> None:
    x = np.arange(1000)
    agg = sm.aggregate([(x, np.ones(1000)), (x, 3 * np.ones(1000))], buckets=10)
    assert agg.x.size == 10 and agg.n.tolist() == [2] * 10
    assert_same(agg.line, [2] * 10)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sm.tb_ema([1, 2], 1.0), "'tb_ema' must be in [0, 1)"),
        (lambda: sm.ema([0, 1], [1, 2], -1), "'ema' must be >= 0"),
        (lambda: sm.ema([1, 0], [1, 2], 1), "sorted"),
        (lambda: sm.ema([0, 1], [1], 1), "x has 2 values but y has 1"),
        (lambda: sm.running_average([1], 0), "integer >= 1"),
        (lambda: sm.smooth([0], [1], "lowess", 1), "unknown smoothing method 'lowess'"),
        (lambda: sm.aggregate([], band="iqr"), "'minmax', 'std' or 'stderr'"),
        (lambda: sm.percentile_range([1], 0.9, 0.1), "lo < hi"),
    ],
)
def test_bad_arguments_raise_typed_errors(call, message) -> None:
    with pytest.raises(sm.SmoothingError, match=re.escape(message)):
        call()


# ------------------------------------------------ fast paths vs brute force
def gaussian_reference(x: np.ndarray, y: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian by the definition (docs/chart-math.md#smoothing): every pair, O(n²)."""
    out = y.copy()
    ok = np.isfinite(y)
    xf, yf = x[ok], y[ok]
    u = (xf[None, :] - xf[:, None]) / sigma
    k = np.where(np.abs(u) <= sm.GAUSSIAN_TRUNCATE, np.exp(-(u**2) / 2), 0.0)
    out[ok] = (k @ yf) / k.sum(axis=1)
    return out


def random_series(rng: np.random.Generator, kind: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    if kind == "steps":  # distinct integer steps, some gaps
        x = np.sort(rng.choice(3 * n, n, replace=False))
    elif kind == "strided":  # a common stride > 1, repeated steps, a far outlier
        x = np.r_[np.cumsum(rng.integers(0, 3, n - 1)) * 7, 10**9]
    else:  # irregular real x
        x = np.sort(rng.uniform(0, 50, n))
    y = rng.normal(5, 10, n)
    y[rng.random(n) < 0.05] = NAN
    y[rng.random(n) < 0.01] = INF
    return x.astype(float), y


@pytest.fixture
def path_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Counts the calls of each Gaussian method (pairs, grid) during a test."""
    from wanllm_jupyter.core import gaussian as g

    calls = {"_pairs": 0, "_grid": 0}
    for name in calls:
        real = getattr(g, name)

        def counted(*args, _real=real, _name=name):
            calls[_name] += 1
            return _real(*args)

        monkeypatch.setattr(g, name, counted)
    return calls


@pytest.mark.parametrize("kind", ["steps", "strided", "real"])
@pytest.mark.parametrize("budget", ["default", "zero"])
def test_gaussian_equals_brute_force_on_random_series(
    kind: str, budget: str, path_calls: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from wanllm_jupyter.core import gaussian as g

    if budget == "zero":  # force the segment / grid paths on small inputs
        monkeypatch.setattr(g, "PAIR_BUDGET", 0)
    rng = np.random.default_rng(["steps", "strided", "real"].index(kind))
    for _ in range(12):
        x, y = random_series(rng, kind, int(rng.integers(2, 400)))
        span = float(np.ptp(x[x < 1e8]))
        for sigma in (rng.uniform(0.05, 2), rng.uniform(0.01, 0.3) * span + 0.1, 1e15):
            out = sm.gaussian(x, y, sigma)
            ref = gaussian_reference(x, y, sigma)
            # exact paths to rounding; the binned grid (real x, wide windows) to ≤ 3e-5
            tol = 3e-5 if kind == "real" and budget == "zero" else 1e-9
            np.testing.assert_allclose(out, ref, rtol=tol, atol=tol * 50, equal_nan=True)
    # steps: the lattice is cheaper; a far outlier or real x leave pairs by default
    if kind != "steps" and budget == "default":
        assert path_calls["_pairs"] > 0
    else:
        assert path_calls["_grid"] > 0


def test_gaussian_on_a_dense_lattice_uses_the_fft_and_matches(
    path_calls: dict[str, int],
) -> None:
    rng = np.random.default_rng(7)
    x = np.arange(3000, dtype=float) * 3 + 11
    y = rng.normal(1e6, 1, x.size)  # a large offset: the grid centres y first
    for sigma in (40.0, 400.0, 5000.0):  # kernels of 107, 1067 and all cells
        np.testing.assert_allclose(
            sm.gaussian(x, y, sigma), gaussian_reference(x, y, sigma), rtol=1e-12, atol=0
        )
    assert path_calls["_grid"] == 3 and path_calls["_pairs"] == 0


def test_gaussian_identical_x_average_everything() -> None:
    x = np.zeros(5000)
    y = np.arange(5000, dtype=float)
    assert_same(sm.gaussian(x, y, 1.0), np.full(5000, y.mean()))


@pytest.mark.parametrize("kind", ["steps", "real"])
def test_ema_variants_equal_closed_forms_on_random_series(kind: str) -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        x, y = random_series(rng, kind, int(rng.integers(1, 120)))
        for h in (rng.uniform(0.01, 3), rng.uniform(5, 500), 1e-300, 1e300):
            np.testing.assert_allclose(
                sm.ema(x, y, h),
                twema_closed_form(x.tolist(), y.tolist(), h),
                rtol=1e-11,
                equal_nan=True,
            )
        for s in (rng.uniform(0, 0.999), 1e-300, 0.999999):
            np.testing.assert_allclose(
                sm.tb_ema(y, s), tb_closed_form(y.tolist(), s), rtol=1e-10, equal_nan=True
            )


def test_running_average_window_wider_than_the_series() -> None:
    y = [1.0, 2.0, NAN, 6.0]
    assert_same(sm.running_average(y, 1e300), [3, 3, NAN, 3])
    assert_same(sm.running_average(y, 10**30, centered=False), [1, 1.5, NAN, 3])


@pytest.mark.parametrize(
    ("method", "param", "message"),
    [
        ("gaussian", -1.0, "smoothing_param for 'gaussian' must be >= 0"),
        ("ema", float("inf"), "smoothing_param for 'ema' must be >= 0"),
        ("tb_ema", 1.0, "smoothing_param for 'tb_ema' must be in [0, 1)"),
        ("running_avg", 2.5, "smoothing_param for 'running_avg' must be an integer >= 1"),
        ("running_avg_trailing", INF, "smoothing_param for 'running_avg' must be an integer"),
        ("loess", 1.0, "unknown smoothing method 'loess'"),
    ],
)
def test_check_names_the_bad_parameter(method: str, param: float, message: str) -> None:
    with pytest.raises(sm.SmoothingError, match=re.escape(message)):
        sm.check(method, param)
    with pytest.raises(sm.SmoothingError, match=re.escape(message)):
        sm.smooth([0, 1], [1, 2], method, param)
