"""A chart's series: what is held per run × metric (:class:`Series`), what the view
draws of it (:class:`SeriesView`), the x modes and the smoothing argument."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import smoothing as sm
from ..core.errors import UsageError
from ._source import Band, FloatArray, IntArray, Source, floats, ints

X_MODES = ("step", "relative_time", "wall_time")
DEFAULT_SAMPLES = 1000
FULL_LIMIT_FACTOR = 4
DRAWN_RUN_FIELDS = (
    "state",
    "name",
    "created_at",
)  # hold up to 4·samples raw points before asking for M4


@dataclass(slots=True)
class Series:
    """One run × metric on a chart."""

    run_id: str
    metric: str
    label: str
    color: str
    dash: str
    steps: IntArray = field(default_factory=lambda: ints([]))
    times: FloatArray = field(default_factory=lambda: floats([]))
    values: FloatArray = field(default_factory=lambda: floats([]))
    n_base: int = 0  # points of the last REST answer; the rest is the live tail
    base_time: float = -math.inf  # newest time of the base: older live points are dropped
    sampled: bool = False
    total_points: int = 0
    band: Band | None = None
    server_smoothed: FloatArray | None = None  # aligned with the base points

    @property
    def tail_len(self) -> int:
        return int(self.values.size) - self.n_base


@dataclass(slots=True)
class SeriesView:
    """What the view draws for one series, x already in the chart's x mode."""

    key: tuple[str, str]
    label: str
    color: str
    dash: str
    x: np.ndarray
    y: FloatArray  # non-finite (and ≤ 0 on a log axis) replaced by NaN: line gaps
    steps: IntArray
    times: FloatArray
    raw: FloatArray  # the values as logged (NaN/±Inf kept)
    smooth_x: np.ndarray | None
    smooth_y: FloatArray | None
    band_x: np.ndarray | None
    band_low: FloatArray | None
    band_high: FloatArray | None
    sampled: bool
    total_points: int
    nonfinite_x: np.ndarray
    nonfinite_kind: list[str]  # "nan" | "+inf" | "-inf"


def parse_smoothing(smoothing: float | str | tuple[str, float] | None) -> tuple[str, float]:
    """``0.6`` | ``"gaussian"`` | ``("tb_ema", 0.6)`` | ``None`` → ``(method, strength)``."""
    if smoothing is None:
        return "ema", 0.0
    if isinstance(smoothing, str):
        method, strength = smoothing, 0.6
    elif isinstance(smoothing, tuple):
        method, strength = smoothing
    else:
        method, strength = "ema", float(smoothing)
    if method not in sm.METHODS:
        raise UsageError(f"smoothing method must be one of {sm.METHODS}, got {method!r}")
    if not 0 <= float(strength) < 1:
        raise UsageError(f"smoothing strength must be in [0, 1), got {strength!r}")
    return method, float(strength)


def last_of_each_step(steps: IntArray) -> IntArray:
    """Indices of the last point at each distinct step (steps sorted)."""
    if steps.size == 0:
        return ints([])
    return np.flatnonzero(np.r_[steps[1:] != steps[:-1], True])


class ChartState:
    """The fields of a chart's data that its x-axis, view and zoom logic read
    (:class:`._model.ChartModel` sets them)."""

    source: Source
    run_ids: list[str]
    metrics: list[str]
    x_mode: str
    y_scale: str
    method: str
    strength: float
    samples: int
    all_points: bool
    ignore_outliers: bool
    runs: dict[str, dict[str, Any]]
    series: list[Series]
    loaded_range: tuple[int | None, int | None] | None
    _xmetric: dict[str, tuple[IntArray, FloatArray]]
    lock: threading.RLock
