"""REST routes of the extension (paths relative to the server's base_url).

Routes are written as OpenAPI path templates; ``{run_id}`` and ``{digest}`` match
one path segment, ``{metric_name}`` and ``{key}`` the rest of the path (names may
contain ``/``).
"""

from __future__ import annotations

from .health import HealthHandler
from .history import BulkHistoryHandler, MetricHistoryHandler
from .media import (
    BlobHandler,
    HistogramsHandler,
    ImagesHandler,
    MediaBatchHandler,
    MediaKeysHandler,
    TableHandler,
)
from .metrics import (
    LatestHandler,
    MetricBatchHandler,
    MetricNamesHandler,
    RunMetricsHandler,
    StatsHandler,
)
from .openapi import OpenApiHandler
from .runs import (
    HeartbeatHandler,
    ProjectMetricNamesHandler,
    ProjectsHandler,
    RunHandler,
    RunsHandler,
)
from .system import SystemBatchHandler, SystemMetricsHandler

API_PREFIX = "wanllm/api/v1/"
_PARAM_PATTERNS = {
    "{run_id}": "([^/]+)",
    "{metric_name}": "(.+)",
    "{key}": "(.+?)",  # as {metric_name}, its own spelling (tests/server/test_openapi.py)
    "{digest}": "([^/]*)",  # as {run_id}, its own spelling
}

# order matters: tornado takes the first match, so the latest/stats suffixes
# come before the history route that would also match them
ROUTES: list[tuple[str, type]] = [
    ("runs", RunsHandler),
    ("runs/{run_id}", RunHandler),
    ("runs/{run_id}/heartbeat", HeartbeatHandler),
    ("runs/{run_id}/metrics", RunMetricsHandler),
    ("runs/{run_id}/metric-names", MetricNamesHandler),
    ("runs/{run_id}/metrics/{metric_name}/latest", LatestHandler),
    ("runs/{run_id}/metrics/{metric_name}/stats", StatsHandler),
    ("runs/{run_id}/metrics/{metric_name}", MetricHistoryHandler),
    ("runs/{run_id}/system-metrics", SystemMetricsHandler),
    ("runs/{run_id}/media", MediaKeysHandler),
    ("runs/{run_id}/images/{key}", ImagesHandler),
    ("runs/{run_id}/histograms/{key}", HistogramsHandler),
    ("runs/{run_id}/tables/{key}", TableHandler),
    ("projects", ProjectsHandler),
    ("projects/metric-names", ProjectMetricNamesHandler),
    ("metrics/batch", MetricBatchHandler),
    ("metrics/system/batch", SystemBatchHandler),
    ("media/batch", MediaBatchHandler),
    ("media/{digest}", BlobHandler),
    ("history", BulkHistoryHandler),
    ("health", HealthHandler),
    ("openapi.json", OpenApiHandler),
]


def route_pattern(template: str) -> str:
    """An OpenAPI-style route template → the tornado URL regex."""
    pattern = template.replace(".", r"\.")
    for param, regex in _PARAM_PATTERNS.items():
        pattern = pattern.replace(param, regex)
    return API_PREFIX + pattern


default_handlers: list[tuple[str, type]] = [(route_pattern(t), h) for t, h in ROUTES]
