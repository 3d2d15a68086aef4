"""The typed API contract: every request and response body and WebSocket message
of the wanllm REST API (docs/api.md) as a msgspec struct.

This is the one place a field is declared. The server validates requests with
:func:`check` and generates its OpenAPI document from :data:`MODELS`;
``docs/api.md`` and the browser's TypeScript types (``js/shared/api-types.ts``)
are generated from that document (``scripts/api_contract.py``).
"""

from __future__ import annotations

from .check import BodyErrors, check, field_names
from .live import (
    ClientMessages,
    ErrorMessage,
    GapMessage,
    LivePoints,
    MetricsMessage,
    RunDeletedMessage,
    RunMessage,
    ServerMessages,
    Subscribe,
    Unsubscribe,
)
from .metrics import (
    Bands,
    BulkHistory,
    BulkHistoryRequest,
    BulkSeries,
    ColumnarBatch,
    History,
    Metric,
    MetricBatch,
    MetricInfo,
    MetricNames,
    MetricRow,
    MetricStats,
    RunMetrics,
    Smoothed,
    SystemBatch,
    SystemRow,
    SystemSeries,
    SystemSeriesItem,
    WriteResult,
)
from .runs import (
    Git,
    GitIn,
    Project,
    ProjectMetric,
    ProjectMetricNames,
    Projects,
    Run,
    RunCreate,
    RunPage,
    RunUpdate,
)
from .service import Error, Health, ItemError, RedisStatus

MODELS: tuple[object, ...] = (
    Error, Run, RunCreate, RunUpdate, RunPage, Projects, ProjectMetricNames,
    MetricBatch, ColumnarBatch, SystemBatch, WriteResult, Metric, MetricStats,
    RunMetrics, MetricNames, History, SystemSeries, BulkHistoryRequest, BulkHistory,
    Health, ClientMessages, ServerMessages,
)  # fmt: skip
"""The top-level bodies; the schema holds these and every struct they name."""

__all__ = [
    "MODELS",
    "Bands",
    "BodyErrors",
    "BulkHistory",
    "BulkHistoryRequest",
    "BulkSeries",
    "ClientMessages",
    "ColumnarBatch",
    "Error",
    "ErrorMessage",
    "GapMessage",
    "Git",
    "GitIn",
    "Health",
    "History",
    "ItemError",
    "LivePoints",
    "Metric",
    "MetricBatch",
    "MetricInfo",
    "MetricNames",
    "MetricRow",
    "MetricStats",
    "MetricsMessage",
    "Project",
    "ProjectMetric",
    "ProjectMetricNames",
    "Projects",
    "RedisStatus",
    "Run",
    "RunCreate",
    "RunDeletedMessage",
    "RunMessage",
    "RunMetrics",
    "RunPage",
    "RunUpdate",
    "ServerMessages",
    "Smoothed",
    "Subscribe",
    "SystemBatch",
    "SystemRow",
    "SystemSeries",
    "SystemSeriesItem",
    "Unsubscribe",
    "WriteResult",
    "check",
    "field_names",
]  # fmt: skip
