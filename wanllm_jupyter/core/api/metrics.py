"""Metric bodies: ingest batches (row, columnar, system), their answer, and the reads."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from msgspec import Meta

from .fields import (
    EPOCH_SECONDS,
    BatchId,
    Int64,
    IsoTime,
    JsonDoc,
    Label,
    MetricName,
    NameIndex,
    Rule,
    SystemType,
    TimeIn,
    UuidText,
    WireNumber,
)
from .runs import Request, Response


def _uuid_problem(value: str) -> str | None:
    try:
        uuid.UUID(value)
    except ValueError:
        return f"not a UUID: {value[:64]!r}"
    return None


RunRef = Annotated[UuidText, Rule(_uuid_problem, "a UUID string")]
"""The run a point belongs to (any form ``uuid.UUID`` reads)."""
AUTO_STEP = "auto-step: the series' last step + 1"
BATCH_ID = "idempotency key: a batch sent again is not written again"


class MetricRow(Request):
    """One point of the seed's row form."""

    run_id: RunRef
    metric_name: MetricName
    value: WireNumber
    step: Annotated[Int64, Meta(description=AUTO_STEP)] | None = None
    time: Annotated[TimeIn, Meta(description="absent = now")] | None = None
    metadata: JsonDoc | None = None


class MetricBatch(Request):
    """The seed's row form, at most ``max_batch_size`` points."""

    metrics: list[MetricRow]
    batch_id: Annotated[BatchId, Meta(description=BATCH_ID)] | None = None
    format: Literal["rows"] | None = None


class ColumnarBatch(Request):
    """The compact columnar form: point ``i`` is ``names[k[i]]`` at step ``s[i]``
    (null = auto), time ``t[i]`` (epoch seconds; null or ``t`` absent = now),
    value ``v[i]``; at most ``max_columnar_batch_size`` points."""

    run_id: RunRef
    names: list[MetricName]
    k: Annotated[list[NameIndex], Meta(description="index into names, per point")]
    s: Annotated[list[Int64 | None], Meta(description="step per point; null = " + AUTO_STEP)]
    v: Annotated[list[WireNumber], Meta(description="value per point")]
    t: (
        Annotated[list[EPOCH_SECONDS | None], Meta(description="epoch seconds; null = now")] | None
    ) = None
    batch_id: Annotated[BatchId, Meta(description=BATCH_ID)] | None = None
    format: Literal["columnar"] | None = None


class SystemRow(Request):
    run_id: RunRef
    metric_type: SystemType
    value: WireNumber
    time: TimeIn | None = None
    device: Label | None = None
    node: Label | None = None
    metadata: JsonDoc | None = None


class SystemBatch(Request):
    metrics: list[SystemRow]
    batch_id: Annotated[BatchId, Meta(description=BATCH_ID)] | None = None


class WriteResult(Response):
    written: int
    duplicate: bool
    batch_id: str


class Metric(Response):
    """One point (the seed's ``Metric``)."""

    time: IsoTime | None
    run_id: UuidText
    metric_name: str
    step: int | None
    value: WireNumber


class MetricInfo(Response):
    name: str
    count: int
    last_step: int
    last_time: IsoTime | None


class RunMetrics(Response):
    metrics: list[Metric]
    count: int
    names: list[MetricInfo]


class MetricNames(Response):
    metrics: list[MetricInfo]


class MetricStats(Response):
    """The seed's ``MetricStats`` plus counts and steps (null statistics without finite values)."""

    metric_name: str
    count: int
    finite_count: int
    nonfinite_count: int
    min_value: float | None
    max_value: float | None
    avg_value: float | None
    std_dev: float | None
    first_time: IsoTime | None
    last_time: IsoTime | None
    first_step: int
    last_step: int


class Bands(Response):
    """Per-bucket extremes of a downsampled series."""

    steps: list[int]
    min: list[WireNumber]
    max: list[WireNumber]
    count: list[int]


class Smoothed(Response):
    method: str
    param: float
    values: list[WireNumber]


class History(Response):
    """One metric's points (``times`` in epoch seconds), raw or downsampled."""

    metric_name: str
    run_id: UuidText
    steps: list[int]
    times: list[float]
    values: list[WireNumber]
    sampled: bool
    total_points: int
    bucket_width: int | None = None
    bands: Bands | None = None
    smoothed: Smoothed | None = None


class SystemSeriesItem(Response):
    metric_type: str
    times: list[float]
    values: list[WireNumber]
    devices: list[str | None]
    nodes: list[str | None]


class SystemSeries(Response):
    series: list[SystemSeriesItem]


class BulkHistoryRequest(Request):
    run_ids: list[UuidText]
    names: list[MetricName] | None = None
    start_step: Int64 | None = None
    end_step: Int64 | None = None


class BulkSeries(Response):
    run_id: UuidText
    metric_name: str
    steps: list[int]
    times: list[float]
    values: list[WireNumber]


class BulkHistory(Response):
    series: list[BulkSeries]
