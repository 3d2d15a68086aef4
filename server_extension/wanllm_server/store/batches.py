"""Validation of incoming metric batches: wire forms -> columnar batch DTOs.

This is the one place where writes are validated (the HTTP layer calls it
too). Every function raises :class:`InvalidBatch` listing *every* bad item as
``ItemError(index, field, reason)``: ``index`` is the position in the array
named by ``field`` (the row for row forms; the point for the columnar form's
``k``/``s``/``t``/``v``; the name for ``names``), and ``-1`` for a field of
the batch itself (columnar ``run_id``, mismatched array lengths).

Values: ``int``/``float`` (not ``bool``) or the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"``. Times: ISO-8601 strings (naive = UTC) or
epoch seconds within [MIN_TIME_US, MAX_TIME_US]; missing = now. Steps: int64 or
missing (auto-step). Names, types, devices and nodes follow the text rules of
:mod:`wanllm_jupyter.core.limits` (no NUL, no lone surrogate, bounded length),
point metadata its JSON rules. A batch without ``batch_id`` gets a random one
(so it has no idempotency).
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import numpy as np

from wanllm_jupyter.core.limits import (
    MAX_HOST_LENGTH,
    MAX_METRIC_NAME_LENGTH,
    MAX_SYSTEM_TYPE_LENGTH,
    MAX_TIME_US,
    MIN_TIME_US,
    json_problem,
    text_problem,
    time_us,
)

from .base import (
    INT64_MAX,
    INT64_MIN,
    InvalidBatch,
    ItemError,
    MetricBatch,
    SystemMetricBatch,
)

NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
MIN_EPOCH_S, MAX_EPOCH_S = MIN_TIME_US / 1e6, 9e12  # float seconds safely inside the range

METRIC_FIELDS = frozenset({"run_id", "metric_name", "step", "value", "time", "metadata"})
SYSTEM_FIELDS = frozenset({"run_id", "metric_type", "value", "time", "device", "node", "metadata"})


class Bad(ValueError):
    """A field failed validation; the message is the reason."""


# --------------------------------------------------------------------- scalars
def now_us() -> int:
    return time.time_ns() // 1000


def new_batch_id() -> str:
    return uuid.uuid4().hex


def parse_uuid(value: Any) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if not isinstance(value, str):
        raise Bad(f"not a UUID string: {type(value).__name__}")
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Bad(f"not a UUID: {value[:64]!r}") from None


def _text(max_length: int) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        bad = text_problem(value, max_length)
        if bad is not None:
            raise Bad(bad)
        return cast(str, value)  # text_problem() is None only for a str

    return parse


parse_name = _text(MAX_METRIC_NAME_LENGTH)
parse_type = _text(MAX_SYSTEM_TYPE_LENGTH)
_parse_label_text = _text(MAX_HOST_LENGTH)


def parse_value(value: Any) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        try:
            return float(value)
        except OverflowError:
            raise Bad("integer out of float64 range") from None
    if isinstance(value, str):
        if value in NONFINITE:
            return NONFINITE[value]
        raise Bad(f'not a number (strings allowed: "NaN", "Infinity", "-Infinity"): {value[:64]!r}')
    raise Bad(f"not a number: {type(value).__name__}")


def parse_step(value: Any) -> int:
    if type(value) is not int:
        raise Bad(f"not an integer: {type(value).__name__}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise Bad("outside the int64 range")
    return value


def parse_time(value: Any) -> int:
    """ISO-8601 string or epoch seconds -> µs since epoch."""
    try:
        return time_us(value)
    except ValueError as e:
        raise Bad(str(e)) from None


def times_out_of_range(us: np.ndarray) -> np.ndarray:
    """Indices of µs times outside [MIN_TIME_US, MAX_TIME_US]."""
    return np.flatnonzero((us < MIN_TIME_US) | (us > MAX_TIME_US))


def parse_metadata(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise Bad(f"not an object: {type(value).__name__}")
    bad = json_problem(value)
    if bad is not None:
        raise Bad(bad)
    return value


def parse_label(value: Any) -> str | None:
    if value is None:
        return None
    return _parse_label_text(value)


# --------------------------------------------------------------------- rows
def check_array(rows: Any) -> None:
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise InvalidBatch(
            [ItemError(-1, "metrics", "not an array")], "metrics must be an array of objects"
        )


class Rows:
    """Shared per-row parsing: collects errors and interns run ids / names."""

    def __init__(
        self, fields: frozenset[str], name_field: str, parse: Callable[[Any], str]
    ) -> None:
        self.fields, self.name_field, self.parse_name = fields, name_field, parse
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
            self.errors.append(ItemError(i, fname, str(e)))
            return None

    def row(self, i: int, row: Any) -> Mapping[str, Any] | None:
        """Common fields of row ``i``; returns the row when it is an object."""
        if not isinstance(row, Mapping):
            self.errors.append(ItemError(i, "", f"not an object: {type(row).__name__}"))
            return None
        for key in row.keys() - self.fields:
            self.errors.append(ItemError(i, str(key), "unknown field"))
        for key in ("run_id", self.name_field, "value"):
            if key not in row:
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
        value = self.field(i, "value", parse_value, row["value"]) if "value" in row else None
        t = row.get("time")
        tm = self.now if t is None else self.field(i, "time", parse_time, t)
        md = self.field(i, "metadata", parse_metadata, row.get("metadata"))
        self.run_idx.append(ridx or 0)
        self.name_idx.append(nidx or 0)
        self.values.append(math.nan if value is None else value)
        self.times.append(tm or 0)
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
    p = Rows(SYSTEM_FIELDS, "metric_type", parse_type)
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
    try:
        rid = parse_uuid(run_id)
    except Bad as e:
        errors.append(ItemError(-1, "run_id", str(e)))
        rid = None
    arrays: dict[str, Any] = {"names": names, "k": k, "s": s, "v": v}
    if t is not None:
        arrays["t"] = t
    for fname, arr in arrays.items():
        if isinstance(arr, (str, bytes, Mapping)) or not isinstance(arr, Sequence):
            errors.append(ItemError(-1, fname, "not an array"))
    if errors:
        raise InvalidBatch(errors)
    n = len(v)
    for fname in ("k", "s", "t"):
        if fname in arrays and len(arrays[fname]) != n:
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

        def parse_k(x: Any) -> int:
            if type(x) is not int or not 0 <= x < nn:
                raise Bad(f"not an index into names (0..{nn - 1})")
            return x

        kk = np.array(_scan(errors, "k", k, parse_k, 0), dtype=np.int64)

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

    if errors or rid is None:  # rid is None only with an error recorded
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
    n, nn = len(values), len(names)
    bad = np.flatnonzero((k < 0) | (k >= nn))
    errors += [ItemError(i, "k", f"not an index into names (0..{nn - 1})") for i in bad.tolist()]
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


def parse_time_number(value: Any) -> int:
    """Epoch seconds (the columnar form's ``t``) -> µs."""
    if type(value) not in (int, float):
        raise Bad(f"not epoch seconds: {type(value).__name__}")
    return parse_time(value)
