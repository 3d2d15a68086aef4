"""Metric batches from their wire forms to columnar batch DTOs.

What a field accepts is stated once, by the request models of
:mod:`wanllm_jupyter.core.api.metrics` (``MetricRow``, ``ColumnarBatch``,
``SystemRow``): its JSON kind, its limits, its rule. The parsers here are built
from those :class:`~wanllm_jupyter.core.api.check.FieldCheck` s and only add the
conversion (UUID, float, µs). What a model cannot state is written here, under
*cross-field rules*: ``k`` indexes ``names``, the columns have ``len(v)`` items,
a null step is an auto step, a missing time is now, a value is a float64.

Every function raises :class:`InvalidBatch` listing *every* bad item as
``ItemError(index, field, reason)``: ``index`` is the position in the array
named by ``field`` (the row for row forms; the point for the columnar form's
``k``/``s``/``t``/``v``; the name for ``names``), and ``-1`` for a field of
the batch itself. A batch without ``batch_id`` gets a random one (so it has no
idempotency). The bulk paths (numpy over whole columns) accept a subset of what
the models accept and fall back to these parsers for anything else.
"""

from __future__ import annotations

import math
import time
import typing
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from msgspec import Meta, Struct

from wanllm_jupyter.core import api
from wanllm_jupyter.core.api.check import FieldCheck, checks, field_names, required_names
from wanllm_jupyter.core.api.fields import EPOCH_SECONDS
from wanllm_jupyter.core.limits import MAX_TIME_US, MIN_TIME_US, time_us

from .base import InvalidBatch, ItemError, MetricBatch, SystemMetricBatch

NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_EPOCH = next(m for m in typing.get_args(EPOCH_SECONDS) if isinstance(m, Meta))
MIN_EPOCH_S, MAX_EPOCH_S = _EPOCH.ge, _EPOCH.le  # the columnar form's epoch seconds

ROW = checks(api.MetricRow)
SYSTEM_ROW = checks(api.SystemRow)
COLUMNS = checks(api.ColumnarBatch)
_ROWS_ARRAY = checks(api.MetricBatch)["metrics"]
METRIC_FIELDS = field_names(api.MetricRow)
SYSTEM_FIELDS = field_names(api.SystemRow)


class Bad(ValueError):
    """A field failed validation; the message is the reason."""


# --------------------------------------------------------------------- scalars
def now_us() -> int:
    return time.time_ns() // 1000


def new_batch_id() -> str:
    return uuid.uuid4().hex


def _float(value: Any) -> float:
    """A wire number the model accepted as float64 (cross-field rule: the store's type);
    a float is returned as it is."""
    if type(value) is float:
        return value
    if type(value) is str:
        return NONFINITE[value]
    try:
        return float(value)
    except OverflowError:
        raise Bad("integer out of float64 range") from None


def parser(
    rule: FieldCheck | None,
    convert: Callable[[Any], Any] | None = None,
    *,
    optional: bool = True,
    rule_is_convert: bool = False,
) -> Callable[[Any], Any]:
    """A parser raising :class:`Bad` with the model's reason, else ``convert(value)``
    (None: the value as it is); None (absent) passes as None for an ``optional`` field.
    ``rule_is_convert``: the model's rule is that ``convert`` succeeds (a UUID, a
    time), so a value of the right kind is converted once and the model asked why
    only when that fails. The checks are bound once here, so a valid value costs
    one call."""
    assert rule is not None  # a field of the model
    reason, accepts, wrong = rule.reason, rule.accepts, rule.wrong_kind
    if rule_is_convert:
        assert convert is not None
        return _converting_parser(convert, accepts, wrong, reason, optional)
    checks = rule.problems
    floats_pass = accepts(0.5) and not checks  # exact: a float is accepted by its type alone
    lo, hi = rule.int_range or (1, 0)  # an empty range where the model states none
    keep_floats = convert is None or convert is _float  # a float is its own result

    def parse(value: Any) -> Any:
        if type(value) is float and floats_pass:
            return value if keep_floats else convert(value)  # type: ignore[misc]
        if type(value) is int and lo <= value <= hi:
            return value if convert is None else convert(value)
        if value is None and optional:
            return None
        if not accepts(value):
            raise Bad(wrong)
        for check in checks:
            bad = check(value)
            if bad is not None:
                raise Bad(bad)
        return value if convert is None else convert(value)

    return parse


def _converting_parser(
    convert: Callable[[Any], Any],
    accepts: Callable[[Any], bool],
    wrong: str,
    reason: Callable[[Any], str | None],
    optional: bool,
) -> Callable[[Any], Any]:
    """:func:`parser` of a field whose rule is that ``convert`` succeeds."""
    floats_pass = accepts(0.5)

    def parse(value: Any) -> Any:
        if not (type(value) is float and floats_pass):
            if value is None and optional:
                return None
            if not accepts(value):
                raise Bad(wrong)
        try:
            return convert(value)
        except ValueError as e:  # the rule is the conversion: the model says why
            raise Bad(reason(value) or str(e)) from None

    return parse


parse_uuid = parser(ROW["run_id"], uuid.UUID, optional=False, rule_is_convert=True)
parse_name = parser(ROW["metric_name"], optional=False)
parse_type = parser(SYSTEM_ROW["metric_type"], optional=False)
parse_value = parser(ROW["value"], _float, optional=False)
parse_step = parser(ROW["step"])
parse_time = parser(ROW["time"], time_us, rule_is_convert=True)
parse_metadata = parser(ROW["metadata"])
parse_label = parser(SYSTEM_ROW["device"])
parse_k = parser(COLUMNS["k"].items, optional=False)
parse_time_number = parser(COLUMNS["t"].items, time_us)


def times_out_of_range(us: np.ndarray) -> np.ndarray:
    """Indices of µs times outside [MIN_TIME_US, MAX_TIME_US]."""
    return np.flatnonzero((us < MIN_TIME_US) | (us > MAX_TIME_US))


# --------------------------------------------------------------------- rows
def check_array(rows: Any) -> None:
    """The batch's ``metrics`` as its model states it (an array)."""
    bad = _ROWS_ARRAY.reason(rows)
    if bad is not None:
        raise InvalidBatch([ItemError(-1, "metrics", bad)], f"metrics {bad}")


_ABSENT = object()


class Rows:
    """Shared per-row parsing against a row ``model``: collects errors and interns
    run ids / names."""

    def __init__(self, model: type[Struct], name_field: str, parse: Callable[[Any], str]) -> None:
        self.fields, self.required = field_names(model), required_names(model)
        self.name_field, self.parse_name = name_field, parse
        self.errors: list[ItemError] = []
        self.run_ids: dict[Any, int] = {}
        self.run_list: list[uuid.UUID] = []
        self.names: dict[str, int] = {}
        self.run_idx: list[int] = []
        self.name_idx: list[int] = []
        self.values: list[float] = []
        self.times: list[int] = []
        self.metadata: list[dict[str, Any] | None] = []
        self.now = now_us()

    def field(self, i: int, fname: str, parse: Callable[[Any], Any], value: Any) -> Any:
        try:
            return parse(value)
        except Bad as e:
            self.bad(i, fname, e)
            return None

    def bad(self, i: int, fname: str, e: Bad) -> None:
        """Record that field ``fname`` of row ``i`` is bad."""
        self.errors.append(ItemError(i, fname, str(e)))

    def row(self, i: int, row: Any) -> Mapping[str, Any] | None:
        """Common fields of row ``i``; returns the row when it is an object."""
        if type(row) is not dict and not isinstance(row, Mapping):
            self.errors.append(ItemError(i, "", f"not an object: {type(row).__name__}"))
            return None
        keys = row.keys()
        if not keys <= self.fields:
            for key in keys - self.fields:
                self.errors.append(ItemError(i, str(key), "unknown field"))
        if not keys >= self.required:
            for key in self.required - keys:
                self.errors.append(ItemError(i, key, "required"))
        rid = row.get("run_id")
        ridx = self.run_ids.get(rid) if isinstance(rid, str) else None
        if ridx is None and "run_id" in row:
            u = self.field(i, "run_id", parse_uuid, rid)
            if u is not None:
                ridx = self.run_ids.setdefault(str(u), len(self.run_list))
                if ridx == len(self.run_list):
                    self.run_list.append(u)
                if isinstance(rid, str):
                    self.run_ids[rid] = ridx
        name = row.get(self.name_field)
        nidx = self.names.get(name) if isinstance(name, str) else None
        if nidx is None and self.name_field in row:
            n = self.field(i, self.name_field, self.parse_name, name)
            if n is not None:
                nidx = self.names.setdefault(n, len(self.names))
        value = row.get("value", _ABSENT)
        if value is _ABSENT:
            value = math.nan
        else:
            try:
                value = parse_value(value)
            except Bad as e:
                self.bad(i, "value", e)
                value = math.nan
        t = row.get("time")
        if t is None:
            t = self.now
        else:
            try:
                t = parse_time(t)
            except Bad as e:
                self.bad(i, "time", e)
                t = 0
        md = row.get("metadata")
        if md is not None:
            try:
                md = parse_metadata(md)
            except Bad as e:
                self.bad(i, "metadata", e)
                md = None
        self.run_idx.append(ridx or 0)
        self.name_idx.append(nidx or 0)
        self.values.append(value)
        self.times.append(t)
        self.metadata.append(md)
        return row

    def raise_errors(self) -> None:
        if self.errors:
            raise InvalidBatch(sorted(self.errors, key=lambda e: (e.index, e.field)))

    def metadata_or_none(self) -> list[dict[str, Any] | None] | None:
        return self.metadata if any(m is not None for m in self.metadata) else None


def system_batch_from_rows(
    rows: Sequence[Mapping[str, Any]], batch_id: str | None = None
) -> SystemMetricBatch:
    """Validate system-metric rows (``{"run_id", "metric_type", "value",
    "time"?, "device"?, "node"?, "metadata"?}``)."""
    check_array(rows)
    p = Rows(api.SystemRow, "metric_type", parse_type)
    devices: list[str | None] = []
    nodes: list[str | None] = []
    for i, row in enumerate(rows):
        r = p.row(i, row) or {}
        devices.append(p.field(i, "device", parse_label, r.get("device")))
        nodes.append(p.field(i, "node", parse_label, r.get("node")))
    p.raise_errors()
    return SystemMetricBatch(
        batch_id=batch_id or new_batch_id(),
        run_ids=p.run_list,
        types=list(p.names),
        run_idx=np.array(p.run_idx, dtype=np.int32),
        type_idx=np.array(p.name_idx, dtype=np.int32),
        times=np.array(p.times, dtype=np.int64),
        values=np.array(p.values, dtype=np.float64),
        devices=devices if any(d is not None for d in devices) else None,
        nodes=nodes if any(n is not None for n in nodes) else None,
        metadata=p.metadata_or_none(),
    )


# --------------------------------------------------------------------- columnar
def _fast_array(items: Sequence[Any], allowed: set[type], dtype: type) -> np.ndarray | None:
    """``items`` as an array when every item's type is in ``allowed``."""
    if not set(map(type, items)) <= allowed:
        return None
    try:
        return np.array(items, dtype=dtype)
    except OverflowError:
        return None


def _scan(
    errors: list[ItemError],
    fname: str,
    items: Sequence[Any],
    parse: Callable[[Any], Any],
    fill: Any,
) -> list[Any]:
    out = []
    for i, x in enumerate(items):
        try:
            out.append(parse(x))
        except Bad as e:
            errors.append(ItemError(i, fname, str(e)))
            out.append(fill)
    return out


def metric_batch_from_columns(
    run_id: Any,
    names: Any,
    k: Any,
    s: Any,
    t: Any,
    v: Any,
    batch_id: str | None = None,
) -> MetricBatch:
    """Validate the compact columnar form of docs/api.md: point ``i`` is
    metric ``names[k[i]]`` at step ``s[i]`` (null = auto-step), time ``t[i]``
    (epoch seconds; null or ``t`` absent = now), value ``v[i]``."""
    errors: list[ItemError] = []
    arrays: dict[str, Any] = {"run_id": run_id, "names": names, "k": k, "s": s, "v": v, "t": t}
    for fname, arr in arrays.items():
        bad = COLUMNS[fname].reason(arr) if arr is not None or fname != "t" else None
        if bad is not None:
            errors.append(ItemError(-1, fname, bad))
    if errors:
        raise InvalidBatch(errors)
    rid = uuid.UUID(run_id)
    n = len(v)
    for fname in ("k", "s", "t"):  # cross-field rule: one item per point
        if arrays[fname] is not None and len(arrays[fname]) != n:
            errors.append(ItemError(-1, fname, f"length {len(arrays[fname])} != len(v) {n}"))
    if errors:
        raise InvalidBatch(errors)
    _scan(errors, "names", names, parse_name, None)

    values = _fast_array(v, {int, float}, np.float64)
    if values is None:
        values = np.array(_scan(errors, "v", v, parse_value, math.nan), dtype=np.float64)

    kk = _fast_array(k, {int}, np.int64)
    if kk is None or (n and (kk.min() < 0 or kk.max() >= len(names))):
        nn = len(names)

        def parse_index(x: Any) -> int:
            index: int = parse_k(x)
            if index >= nn:  # cross-field rule: k indexes names
                raise Bad(_not_an_index(nn))
            return index

        kk = np.array(_scan(errors, "k", k, parse_index, 0), dtype=np.int64)

    auto = None
    steps = _fast_array(s, {int}, np.int64)
    if steps is None:
        auto = np.array([x is None for x in s], dtype=bool)
        scanned = _scan(errors, "s", s, lambda x: 0 if x is None else parse_step(x), 0)
        steps = np.array(scanned, dtype=np.int64)

    times = None
    if t is not None:
        tf = _fast_array(t, {int, float}, np.float64)
        if tf is not None and (not n or (tf.min() > MIN_EPOCH_S and tf.max() < MAX_EPOCH_S)):
            times = np.rint(tf * 1e6).astype(np.int64)
        else:
            now = now_us()
            scanned = _scan(errors, "t", t, lambda x: now if x is None else parse_time_number(x), 0)
            times = np.array(scanned, dtype=np.int64)

    if errors:
        raise InvalidBatch(errors)
    return metric_batch_from_arrays(rid, names, kk, steps, times, values, batch_id, auto_step=auto)


def metric_batch_from_arrays(
    run_id: uuid.UUID,
    names: Sequence[Any],
    k: np.ndarray,
    steps: np.ndarray,
    times: np.ndarray | None,
    values: np.ndarray,
    batch_id: str | None = None,
    *,
    auto_step: np.ndarray | None = None,
) -> MetricBatch:
    """Validate a columnar batch already in arrays (the compact forms' common
    tail): point ``i`` is metric ``names[k[i]]`` at ``steps[i]`` (auto-step
    where ``auto_step[i]``), ``times[i]`` µs (``times`` None = now), value
    ``values[i]``. Bad names are reported by their index in ``names``, bad
    ``k`` by point index."""
    errors: list[ItemError] = []
    _scan(errors, "names", names, parse_name, None)
    n = len(values)
    errors += _k_outside(k, len(names))
    if errors:
        raise InvalidBatch(errors)
    if auto_step is not None and not auto_step.any():
        auto_step = None
    return MetricBatch(
        batch_id=batch_id or new_batch_id(),
        run_ids=[run_id],
        names=list(names),
        run_idx=np.zeros(n, dtype=np.int32),
        name_idx=k.astype(np.int32),
        steps=steps.astype(np.int64, copy=False),
        times=np.full(n, now_us(), dtype=np.int64) if times is None else times,
        values=values.astype(np.float64, copy=False),
        auto_step=auto_step,
    )


def _not_an_index(nn: int) -> str:
    return f"not an index into names (0..{nn - 1})"


def _k_outside(k: np.ndarray, nn: int) -> list[ItemError]:
    """Cross-field rule: each ``k`` indexes ``names``."""
    bad = np.flatnonzero((k < 0) | (k >= nn))
    return [ItemError(i, "k", _not_an_index(nn)) for i in bad.tolist()]
