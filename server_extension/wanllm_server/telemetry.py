"""Prometheus instruments, registered on prometheus_client's default registry
(served by jupyter_server at ``{base_url}metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

POINTS_INGESTED = Counter(
    "wanllm_points_ingested",
    "Points committed to the store, by kind (metrics | system).",
    ["kind"],
)
BATCHES_REJECTED = Counter(
    "wanllm_batches_rejected",
    "Ingest batches answered with an error, by reason.",
    ["kind", "reason"],
)
INGEST_LATENCY = Histogram(
    "wanllm_ingest_seconds",
    "Time to parse, validate and commit one batch.",
    ["kind"],
    buckets=_LATENCY_BUCKETS,
)
QUERY_LATENCY = Histogram(
    "wanllm_query_seconds",
    "Time to answer a read request, by endpoint.",
    ["endpoint"],
    buckets=_LATENCY_BUCKETS,
)
WEBSOCKET_CLIENTS = Gauge("wanllm_websocket_clients", "Open live WebSocket connections.")
FANOUT_LAG = Histogram(
    "wanllm_fanout_lag_seconds",
    "Delay from batch commit to delivery to a WebSocket subscriber.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
)
