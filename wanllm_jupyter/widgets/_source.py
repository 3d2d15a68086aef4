"""Where the widgets read: the server's REST API, or the local spools when no
server can be had.

:class:`MetricSource` wraps :class:`wanllm_jupyter._http.Connection` and turns
JSON bodies into numpy arrays (``"NaN"``/``"Infinity"`` strings become floats).
:class:`OfflineMetricSource` answers the same calls from the runs logged under
a local directory (``wl.Api(offline=True)``'s reader): read-only, never live.
:func:`open_source` picks one, so that displaying data never fails for want of
a server.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .._http import API, Connection, encode_segment
from ..core.errors import ServerError, ServerUnreachable

if TYPE_CHECKING:
    import ipywidgets as W

    from .._sources import OfflineSource

PROBE_TIMEOUT = 2.0
OFFLINE_NOTICE = (
    "wanllm: no server reachable — showing the data logged locally under {root}, "
    "read-only and not live (start one with `wanllm server`)"
)

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


class OfflineMetricSource:
    """:class:`MetricSource`'s calls answered from the local spools under ``root``."""

    conn = None

    def __init__(self, root: Path) -> None:
        from .._sources import OfflineSource

        self.root = root
        self.offline: OfflineSource = OfflineSource(root)

    def run(self, run_id: str) -> dict[str, Any]:
        return self.offline.run(run_id)

    def metric_names(self, run_id: str) -> list[dict[str, Any]]:
        return self.offline.metric_names(run_id)

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
        """Every point of one metric (no downsampling; the chart smooths locally)."""
        import pyarrow as pa  # loaded already: the offline history is an Arrow table

        t = self.offline.history([run_id], [name], start_step, end_step)
        return SeriesResponse(
            steps=ints(t.column("step").to_numpy()),
            times=floats(t.column("time").cast(pa.int64()).to_numpy() / 1e6),
            values=floats(t.column("value").to_numpy()),
            total_points=t.num_rows,
        )

    def system_metrics(self, run_id: str) -> list[dict[str, Any]]:
        """The run's system metrics grouped per type, as the REST endpoint has them."""
        t = self.offline.system(run_id, None).to_pydict()
        by_type: dict[str, dict[str, list[Any]]] = {}
        for i, kind in enumerate(t["metric_type"]):
            s = by_type.setdefault(kind, {"times": [], "values": [], "devices": [], "nodes": []})
            s["times"].append(t["time"][i].timestamp())
            s["values"].append(t["value"][i])
            s["devices"].append(t["device"][i])
            s["nodes"].append(t["node"][i])
        return [{"metric_type": kind, **cols} for kind, cols in by_type.items()]


def local_root(runs: list[Any]) -> Path:
    """The directory the runs were logged under (a ``Run``'s ``dir``, else the default)."""
    from .._spool import default_root

    for run in runs:
        directory = getattr(run, "dir", None)
        if isinstance(directory, str) and directory:
            return Path(directory)
    return default_root(None)


Source = MetricSource | OfflineMetricSource  # what a widget reads from


def open_source(runs: list[Any], connection: Connection | None) -> tuple[Connection | None, Source]:
    """The connection and source for ``runs``: the server found like everywhere else,
    or, with none to be had (or for a run logged offline), the local spools."""
    from ._runs import resolve_connection

    offline_run = connection is None and any(
        getattr(r, "connection", 0) is None and getattr(r, "dir", None) for r in runs
    )
    if not offline_run:
        try:
            conn = resolve_connection(runs, connection)
            conn.health(refresh=True, timeout=PROBE_TIMEOUT)
        except (ServerUnreachable, ServerError):
            pass
        else:
            return conn, MetricSource(conn)
    return None, OfflineMetricSource(local_root(runs))


def with_notice(widget: W.Box, source: Source) -> W.Box:
    """``widget`` with a one-line notice on top when it shows offline data."""
    if isinstance(source, OfflineMetricSource):
        import ipywidgets as W

        notice = W.HTML(html.escape(OFFLINE_NOTICE.format(root=source.root)))
        notice.add_class("wl-offline-notice")
        widget.children = (notice, *widget.children)
    return widget
