"""REST access for the widgets (docs/api.md): runs, metric names, series, system metrics.

Thin wrappers over :class:`wanllm_jupyter._http.Connection` that turn JSON
bodies into numpy arrays (``"NaN"``/``"Infinity"`` strings become floats).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .._http import API, Connection, encode_segment

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def floats(values: Any) -> FloatArray:
    """JSON numbers (with the wire's non-finite strings) as float64."""
    return np.asarray(values if values is not None else [], dtype=np.float64)


def ints(values: Any) -> IntArray:
    return np.asarray(values if values is not None else [], dtype=np.int64)


def epoch_seconds(iso: str | None) -> float | None:
    """ISO 8601 time of the wire (``...Z``) as epoch seconds."""
    if not iso:
        return None
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


@dataclass(slots=True)
class Band:
    """Per-bucket min/max of a downsampled series (x = bucket start step)."""

    steps: IntArray
    low: FloatArray
    high: FloatArray


@dataclass(slots=True)
class SeriesResponse:
    """One ``GET runs/{id}/metrics/{name}`` answer."""

    steps: IntArray
    times: FloatArray  # epoch seconds
    values: FloatArray
    sampled: bool = False
    total_points: int = 0
    band: Band | None = None
    smoothed: FloatArray | None = None  # aligned with steps (server smoothing)
    smoothing: tuple[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MetricSource:
    """The REST calls the charts need, on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def run(self, run_id: str) -> dict[str, Any]:
        return self.conn.get_json(f"{API}runs/{run_id}")

    def metric_names(self, run_id: str) -> list[dict[str, Any]]:
        """``[{"name", "count", "last_step", "last_time"}]`` of the run."""
        return list(self.conn.get_json(f"{API}runs/{run_id}/metric-names").get("metrics", []))

    def series(
        self,
        run_id: str,
        name: str,
        *,
        samples: int | None = None,
        start_step: int | None = None,
        end_step: int | None = None,
        smoothing: tuple[str, float] | None = None,
    ) -> SeriesResponse:
        """Points of one metric; M4-downsampled to ``samples`` buckets when given."""
        params: dict[str, Any] = {
            "samples": samples,
            "start_step": start_step,
            "end_step": end_step,
        }
        if smoothing is not None:
            params["smoothing"], params["smoothing_param"] = smoothing
        body = self.conn.get_json(f"{API}runs/{run_id}/metrics/{encode_segment(name)}", **params)
        bands = body.get("bands")
        smoothed = body.get("smoothed")
        return SeriesResponse(
            steps=ints(body.get("steps")),
            times=floats(body.get("times")),
            values=floats(body.get("values")),
            sampled=bool(body.get("sampled", False)),
            total_points=int(body.get("total_points") or len(body.get("values") or [])),
            band=Band(ints(bands["steps"]), floats(bands["min"]), floats(bands["max"]))
            if bands
            else None,
            smoothed=floats(smoothed["values"]) if smoothed else None,
            smoothing=(smoothed["method"], float(smoothed["param"])) if smoothed else None,
        )

    def system_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """``[{"metric_type", "times", "values", "devices", "nodes"}]`` of the run."""
        body = self.conn.get_json(f"{API}runs/{run_id}/system-metrics")
        return list(body.get("series", []))
