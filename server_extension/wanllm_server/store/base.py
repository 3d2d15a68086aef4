"""The storage contract: one async interface, implemented by every backend.

Backends: :mod:`.sqlite` (embedded default), :mod:`.postgres` (TimescaleDB, or
plain PostgreSQL when the extension is absent). The contract suite in
``tests/store/`` runs the same tests against each of them. Its errors are
defined in :mod:`.errors` (importable from here too) and its media methods in
:mod:`.media_base`.

Conventions
-----------
* Times are ``int`` microseconds since the Unix epoch, UTC, everywhere inside
  the server (arrays are ``int64``). Conversion to/from ISO strings happens at
  the HTTP edge only.
* Steps are ``int64``. Values are ``float64``; NaN, +Inf and -Inf are valid
  values that round-trip exactly. Statistics (min, max, mean, stddev) are over
  finite values only; non-finite points are counted separately.
* Out-of-order and duplicate steps are stored as logged. Reads return points
  ordered by ``(step, time)``, duplicates included.
"""

from __future__ import annotations

import abc
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from .errors import InvalidBatch as InvalidBatch
from .errors import InvalidQuery as InvalidQuery
from .errors import ItemError as ItemError
from .errors import MediaNotFound as MediaNotFound
from .errors import MetricNotFound as MetricNotFound
from .errors import RunNotFound as RunNotFound
from .errors import StoreError as StoreError
from .errors import StoreUnavailable as StoreUnavailable
from .media_base import MediaStore

RunState = Literal["running", "finished", "failed", "crashed"]
RUN_STATES: tuple[str, ...] = ("running", "finished", "failed", "crashed")
MAX_NAME_LENGTH = 255
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


# --------------------------------------------------------------------- runs
@dataclass(slots=True)
class GitInfo:
    branch: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    remote: str | None = None


@dataclass(slots=True)
class Run:
    id: uuid.UUID
    project: str
    name: str
    state: RunState
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    notes: str = ""
    git: GitInfo = field(default_factory=GitInfo)
    host: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)  # python/packages/notebook path
    exit_code: int | None = None
    created_at: int = 0  # µs since epoch
    updated_at: int = 0
    heartbeat_at: int | None = None
    finished_at: int | None = None


@dataclass(slots=True)
class RunCreate:
    """Create a run, or resume it when ``id`` names an existing one.

    Resuming sets state back to ``running`` and merges ``config`` and ``metadata``
    (top-level keys); other fields given here overwrite the stored ones only when
    not None.
    """

    project: str = "default"
    name: str | None = None  # None -> a generated readable name
    id: uuid.UUID | None = None
    config: dict[str, Any] | None = None
    tags: list[str] | None = None
    notes: str | None = None
    git: GitInfo | None = None
    host: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: int | None = None  # µs; None: now (a synced offline run: when it started)


@dataclass(slots=True)
class RunUpdate:
    """Partial update; None means leave unchanged."""

    name: str | None = None
    state: RunState | None = None
    exit_code: int | None = None
    summary: dict[str, Any] | None = None  # merged into the stored summary
    config: dict[str, Any] | None = None  # merged into the stored config
    metadata: dict[str, Any] | None = None  # top-level keys merged into the stored metadata
    tags: list[str] | None = None  # replaces
    add_tags: list[str] | None = None
    remove_tags: list[str] | None = None
    notes: str | None = None
    heartbeat: bool = False  # set heartbeat_at = now
    finished_at: int | None = None  # µs the end ``state`` was reached; None: now


FilterOp = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "contains", "word"]


@dataclass(frozen=True, slots=True)
class RunFilter:
    """``field`` is a column (name, state, project, host, created_at...) or a
    dotted path into JSON: ``config.optimizer.lr``, ``summary.loss``; op ``word``
    (field ""): a search word (:func:`wanllm_jupyter.core.run_filters.parse_query`).
    ``negate`` inverts the filter (a missing value included)."""

    field: str
    op: FilterOp
    value: Any
    negate: bool = False


RunMatch = tuple[tuple[RunFilter, ...], ...]  # OR of AND-ed groups (a parsed query)


@dataclass(slots=True)
class RunQuery:
    project: str | None = None
    states: list[str] | None = None
    tags: list[str] | None = None  # runs carrying all of these
    filters: list[RunFilter] = field(default_factory=list)
    matches: list[RunMatch] = field(default_factory=list)  # each must hold
    search: str | None = None  # case-insensitive substring of name, tags or notes
    sort: str = "-created_at"  # field as in RunFilter, '-' = descending
    limit: int = 100
    cursor: str | None = None  # opaque, from RunPage.next_cursor


@dataclass(slots=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None
    total: int  # runs matching the query, ignoring the cursor


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    name: str
    run_count: int
    running: int
    last_created_at: int


@dataclass(frozen=True, slots=True)
class ProjectMetric:
    """A metric name logged in a project, and by how many of its runs."""

    name: str
    runs: int


# --------------------------------------------------------------------- metrics
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
Int32Array = npt.NDArray[np.int32]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class MetricBatch:
    """A validated batch of metric points in columnar form.

    Point ``i`` belongs to run ``run_ids[run_idx[i]]`` and metric
    ``names[name_idx[i]]``. ``auto_step[i]`` (when given) means the client sent
    no step: the store assigns the series' last step + 1, in batch order.
    """

    batch_id: str
    run_ids: list[uuid.UUID]
    names: list[str]
    run_idx: Int32Array
    name_idx: Int32Array
    steps: Int64Array
    times: Int64Array
    values: Float64Array
    metadata: list[dict[str, Any] | None] | None = None
    auto_step: BoolArray | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(slots=True)
class SystemMetricBatch:
    """A validated batch of system metrics (cpu, gpu, memory, disk, network...)."""

    batch_id: str
    run_ids: list[uuid.UUID]
    types: list[str]  # metric_type table, e.g. "cpu.process_percent", "gpu.0.util"
    run_idx: Int32Array
    type_idx: Int32Array
    times: Int64Array
    values: Float64Array
    devices: list[str | None] | None = None  # per point: "gpu0", "/dev/sda"...
    nodes: list[str | None] | None = None  # per point: host/node label
    metadata: list[dict[str, Any] | None] | None = None

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(frozen=True, slots=True)
class WriteResult:
    points: int  # points written by this call (0 for a replay)
    duplicate: bool  # the batch id was seen before; nothing was written
    # metrics batches: run id -> the run's live sequence number this batch took
    # when it was committed (a replay gets the original numbers; docs/api.md,
    # "Live message ordering"); empty for system metrics and empty batches
    live_seq: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Series:
    """Points of one metric of one run, ordered by (step, time)."""

    steps: Int64Array
    times: Int64Array
    values: Float64Array

    def __len__(self) -> int:
        return int(self.values.shape[0])


@dataclass(slots=True)
class Downsampled:
    """M4 downsampling: per step bucket, its first, last, min and max points.

    Buckets are aligned to multiples of ``bucket_width`` (a power of two), so
    appending points only ever changes the last bucket. ``points`` holds the
    distinct M4 points ordered by step; ``buckets`` one row per non-empty
    bucket (for min/max bands). ``sampled`` is False when every point in the
    range was returned (``points`` is then exactly the raw series).
    """

    bucket_width: int
    sampled: bool
    points: Series
    bucket_start: Int64Array  # first step of each bucket
    bucket_min: Float64Array  # finite min, NaN when the bucket has none
    bucket_max: Float64Array
    bucket_count: Int64Array  # all points in the bucket
    bucket_nonfinite: Int64Array  # NaN/Inf points in the bucket
    total_points: int  # points in the requested range


@dataclass(frozen=True, slots=True)
class Point:
    step: int
    time: int
    value: float


@dataclass(frozen=True, slots=True)
class Stats:
    metric_name: str
    count: int  # all points
    finite_count: int
    nonfinite_count: int
    min_value: float | None  # over finite values; None when there are none
    max_value: float | None
    avg_value: float | None
    std_dev: float | None  # sample standard deviation (n-1), None when n < 2
    first_time: int
    last_time: int
    first_step: int
    last_step: int  # greatest step


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    count: int
    last_step: int
    last_time: int


@dataclass(slots=True)
class HistoryChunk:
    """A slice of the bulk history stream: points of one run's metric."""

    run_id: uuid.UUID
    name: str
    series: Series


@dataclass(slots=True)
class SystemSeries:
    run_id: uuid.UUID
    metric_type: str
    times: Int64Array
    values: Float64Array
    devices: list[str | None]
    nodes: list[str | None]


@dataclass(frozen=True, slots=True)
class Retention:
    """Retention in days; 0 keeps forever."""

    metrics_days: int = 90
    system_metrics_days: int = 30


# ------------------------------------------------------------ query size bounds
MAX_PAGE_RUNS = 10_000


def check_page_limit(limit: int) -> None:
    """A page of runs holds 1..MAX_PAGE_RUNS runs."""
    if not 1 <= limit <= MAX_PAGE_RUNS:
        raise InvalidQuery(f"limit must be in 1..{MAX_PAGE_RUNS}, got {limit}")


def check_history_limit(limit: int | None) -> None:
    """A history's ``limit`` (None: every point) is not negative."""
    if limit is not None and limit < 0:
        raise InvalidQuery(f"limit must be >= 0, got {limit}")


def check_chunk_points(chunk_points: int) -> None:
    """A bulk history chunk holds at least one point."""
    if chunk_points < 1:
        raise InvalidQuery(f"chunk_points must be >= 1, got {chunk_points}")


# --------------------------------------------------------------------- interface
class Store(MediaStore):
    """Async storage of runs, metrics, system metrics and media (:mod:`.media_base`)."""

    backend: str  # "sqlite" | "postgresql" | "timescaledb"

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and run pending migrations (safe on every start)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight work and release connections."""

    @abc.abstractmethod
    async def info(self) -> dict[str, Any]:
        """Backend name, versions, schema version, licence, pool status."""

    # runs
    @abc.abstractmethod
    async def create_run(self, spec: RunCreate) -> tuple[Run, bool]:
        """Create a run, or resume it by id; returns (run, resumed)."""

    @abc.abstractmethod
    async def get_run(self, run_id: uuid.UUID) -> Run: ...

    @abc.abstractmethod
    async def update_run(self, run_id: uuid.UUID, update: RunUpdate) -> Run: ...

    @abc.abstractmethod
    async def delete_run(self, run_id: uuid.UUID) -> None:
        """Delete the run with all its metrics and system metrics."""

    @abc.abstractmethod
    async def list_runs(self, query: RunQuery) -> RunPage: ...

    @abc.abstractmethod
    async def list_projects(self) -> list[ProjectInfo]: ...

    @abc.abstractmethod
    async def metric_names(self, run_id: uuid.UUID) -> list[MetricInfo]: ...

    @abc.abstractmethod
    async def project_metric_names(self, project: str) -> list[ProjectMetric]:
        """Every metric name with points in a run of ``project``, by name."""

    @abc.abstractmethod
    async def mark_crashed(self, heartbeat_before: int) -> list[Run]:
        """Set state ``crashed`` on running runs whose last heartbeat (or
        creation) is older than ``heartbeat_before``, ended at that last sign
        of life (``finished_at``); return them."""

    @abc.abstractmethod
    async def cache_generation(self, run_id: uuid.UUID) -> str | None:
        """The run's cache generation (see :mod:`..cache`): changed in the commit
        of every write to its metrics, the same for every server sharing the
        store; None for an unknown run."""

    # writes
    @abc.abstractmethod
    async def write_metrics(self, batch: MetricBatch) -> WriteResult:
        """Write the whole batch in one transaction, or nothing.

        Raises RunNotFound for an unknown run; a batch id seen before writes
        nothing and returns ``duplicate=True``. Each run of a committed batch
        takes its run's next live sequence number in the same transaction
        (``WriteResult.live_seq``; a replay returns the original numbers), and
        auto steps are replaced in ``batch.steps`` by the stored steps.
        """

    @abc.abstractmethod
    async def write_system_metrics(self, batch: SystemMetricBatch) -> WriteResult: ...

    # reads
    @abc.abstractmethod
    async def history(
        self,
        run_id: uuid.UUID,
        name: str,
        *,
        start_step: int | None = None,
        end_step: int | None = None,  # inclusive
        start_time: int | None = None,
        end_time: int | None = None,  # inclusive
        limit: int | None = None,
    ) -> Series: ...

    @abc.abstractmethod
    async def downsample(
        self,
        run_id: uuid.UUID,
        name: str,
        buckets: int,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
    ) -> Downsampled:
        """M4 over [start_step, end_step] into at most ``buckets`` buckets."""

    @abc.abstractmethod
    async def latest(self, run_id: uuid.UUID, name: str) -> Point:
        """The most recently logged point (greatest time, then step)."""

    @abc.abstractmethod
    async def stats(self, run_id: uuid.UUID, name: str) -> Stats: ...

    @abc.abstractmethod
    def bulk_history(
        self,
        run_ids: Sequence[uuid.UUID],
        names: Sequence[str] | None = None,
        *,
        start_step: int | None = None,
        end_step: int | None = None,
        chunk_points: int = 100_000,
    ) -> AsyncIterator[HistoryChunk]:
        """Stream every point of the given runs × metrics (all when None),
        in chunks of at most ``chunk_points``, never all in memory at once."""

    @abc.abstractmethod
    async def system_metrics(
        self,
        run_id: uuid.UUID,
        *,
        types: Sequence[str] | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        limit: int | None = None,
    ) -> list[SystemSeries]: ...

    # maintenance
    @abc.abstractmethod
    async def apply_retention(self, retention: Retention, now: int) -> dict[str, int]:
        """Drop points older than the retention windows; return rows removed."""
