"""The seed's row form of metric points (``{"run_id", "metric_name", "step"?,
"value", "time"?, "metadata"?}`` per point) -> :class:`.base.MetricBatch`.

Plainly valid rows take a column-at-a-time path (types checked in bulk, each
distinct run id and name once); anything else (an error to report, or a rare
form) goes through the per-row validator of :mod:`.batches`, which is the
reference for both the result and the errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import numpy as np

from wanllm_jupyter.core import api

from .base import MetricBatch
from .batches import (
    MAX_EPOCH_S,
    METRIC_FIELDS,
    MIN_EPOCH_S,
    NONFINITE,
    ROW,
    Bad,
    Rows,
    check_array,
    new_batch_id,
    now_us,
    parse_name,
    parse_step,
    parse_time,
)


def metric_batch_from_rows(
    rows: Sequence[Mapping[str, Any]], batch_id: str | None = None
) -> MetricBatch:
    """Validate the seed's row form (``{"run_id", "metric_name", "step"?,
    "value", "time"?, "metadata"?}`` per point).

    Plainly valid rows take a column-at-a-time path; anything else (an error
    to report, or a rare form) goes through the per-row validator, which is
    the reference for both the result and the errors."""
    check_array(rows)
    batch_id = batch_id or new_batch_id()
    batch = plain_metric_rows(rows, batch_id)
    return checked_metric_rows(rows, batch_id) if batch is None else batch


def checked_metric_rows(rows: Sequence[Mapping[str, Any]], batch_id: str) -> MetricBatch:
    """Row-by-row validation, naming every bad item."""
    p = Rows(api.MetricRow, "metric_name", parse_name)
    steps: list[int] = []
    auto: list[bool] = []
    for i, row in enumerate(rows):
        r = p.row(i, row)
        s = None if r is None else r.get("step")
        auto.append(s is None)
        if s is None:
            s = 0
        else:
            try:
                s = parse_step(s)
            except Bad as e:
                p.bad(i, "step", e)
                s = 0
        steps.append(s)
    p.raise_errors()
    auto_arr = np.array(auto, dtype=bool)
    return MetricBatch(
        batch_id=batch_id,
        run_ids=p.run_list,
        names=list(p.names),
        run_idx=np.array(p.run_idx, dtype=np.int32),
        name_idx=np.array(p.name_idx, dtype=np.int32),
        steps=np.array(steps, dtype=np.int64),
        times=np.array(p.times, dtype=np.int64),
        values=np.array(p.values, dtype=np.float64),
        metadata=p.metadata_or_none(),
        auto_step=auto_arr if auto_arr.any() else None,
    )


_NUMBERS = {int, float}
_WIRE_VALUES = {int, float, str}
_NONFINITE_NAMES = frozenset(NONFINITE)
_NoneType = type(None)
_name_problem = ROW["metric_name"].reason
_metadata_problem = ROW["metadata"].reason


def plain_metric_rows(rows: Sequence[Any], batch_id: str) -> MetricBatch | None:
    """The batch when every row is a plainly valid ``dict``, checked a column
    at a time (types in bulk, each distinct run id / name once); None as soon
    as anything is unusual."""
    if not set(map(type, rows)) <= {dict}:
        return None
    keys = set().union(*rows)
    if not keys <= METRIC_FIELDS:
        return None
    try:
        rids = list(map(itemgetter("run_id"), rows))
        names = list(map(itemgetter("metric_name"), rows))
        values = list(map(itemgetter("value"), rows))
    except KeyError:
        return None
    runs = _run_table(rids)
    metrics = _name_table(names)
    n = len(rows)
    if "step" in keys:
        steps = _plain_steps([r.get("step") for r in rows])
    else:
        steps = np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool)
    if "time" in keys:
        times = _plain_times([r.get("time") for r in rows])
    else:
        times = np.full(n, now_us(), dtype=np.int64)
    metadata = [r.get("metadata") for r in rows] if "metadata" in keys else []
    floats = _plain_values(values)
    if (
        floats is None
        or runs is None
        or metrics is None
        or steps is None
        or times is None
        or not set(map(type, metadata)) <= {dict, _NoneType}
        or any(m is not None and _metadata_problem(m) for m in metadata)
    ):
        return None
    auto = steps[1]
    return MetricBatch(
        batch_id=batch_id,
        run_ids=runs[0],
        names=metrics[0],
        run_idx=runs[1],
        name_idx=metrics[1],
        steps=steps[0],
        times=times,
        values=floats,
        metadata=metadata if any(m is not None for m in metadata) else None,
        auto_step=auto if auto is not None and auto.any() else None,
    )


def _indices(items: list[Any], table: dict[Any, int]) -> np.ndarray:
    if len(table) == 1:
        return np.zeros(len(items), dtype=np.int32)
    return np.fromiter(map(table.__getitem__, items), np.int32, len(items))


def _run_table(rids: list[Any]) -> tuple[list[uuid.UUID], np.ndarray] | None:
    """Distinct run UUIDs (first seen first) and each row's index into them."""
    try:
        table: dict[Any, int] = dict.fromkeys(rids, 0)
    except TypeError:  # unhashable
        return None
    if not set(map(type, table)) <= {str}:
        return None
    canonical: dict[str, int] = {}
    run_list: list[uuid.UUID] = []
    for rid in table:
        try:
            u = uuid.UUID(rid)
        except ValueError:
            return None
        table[rid] = canonical.setdefault(str(u), len(run_list))
        if table[rid] == len(run_list):
            run_list.append(u)
    return run_list, _indices(rids, table)


def _name_table(names: list[Any]) -> tuple[list[str], np.ndarray] | None:
    """Distinct metric names (first seen first) and each row's index into them."""
    try:
        table: dict[Any, int] = dict.fromkeys(names, 0)
    except TypeError:
        return None
    if not set(map(type, table)) <= {str} or any(map(_name_problem, table)):
        return None
    for i, name in enumerate(table):
        table[name] = i
    return list(table), _indices(names, table)


def _plain_values(values: list[Any]) -> np.ndarray | None:
    types = set(map(type, values))
    if not types <= _NUMBERS:
        if (
            not types <= _WIRE_VALUES
            or not {v for v in values if type(v) is str} <= _NONFINITE_NAMES
        ):
            return None
        values = [NONFINITE[v] if type(v) is str else v for v in values]
    try:
        return np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64
        return None


def _plain_steps(steps: list[Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Steps (0 where auto) and the auto-step mask (None when every step is given)."""
    types = set(map(type, steps))
    auto = None
    if _NoneType in types:
        types.discard(_NoneType)
        auto = np.array([s is None for s in steps], dtype=bool)
        steps = [0 if s is None else s for s in steps]
    if not types <= {int}:
        return None
    try:
        return np.array(steps, dtype=np.int64), auto
    except OverflowError:  # outside int64
        return None


def _plain_times(times: list[Any]) -> np.ndarray | None:
    """µs since epoch: float seconds in bulk, other forms one by one."""
    if set(map(type, times)) == {float}:
        seconds = np.array(times, dtype=np.float64)
        if seconds.min() > MIN_EPOCH_S and seconds.max() < MAX_EPOCH_S:  # false for NaN
            return np.rint(seconds * 1e6).astype(np.int64)
    now = now_us()
    try:
        return np.array([now if t is None else parse_time(t) for t in times], dtype=np.int64)
    except (Bad, OverflowError):
        return None
