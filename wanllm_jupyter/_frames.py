"""Long Arrow tables of points → pandas DataFrames (long and wide forms), and run rows.

A *long table* has the bulk-history schema of docs/api.md:
``run_id: string, metric_name: string, step: int64, time: timestamp[us, UTC], value: float64``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from .core.arrow import TIMESTAMP

_LONG_FIELDS: list[pa.Field[Any]] = [
    pa.field("run_id", pa.string()),
    pa.field("metric_name", pa.string()),
    pa.field("step", pa.int64()),
    pa.field("time", TIMESTAMP),
    pa.field("value", pa.float64()),
]
LONG_SCHEMA = pa.schema(_LONG_FIELDS)
RUN_TIME_FIELDS = ("created_at", "updated_at", "heartbeat_at", "finished_at")


def _codes(col: pa.ChunkedArray | pa.Array) -> tuple[npt.NDArray[np.int64], list[str]]:
    """Integer codes and labels of a string or dictionary column (labels in first-appearance
    order). Dictionary columns (the server's bulk history) are read from their indices."""
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    if not pa.types.is_dictionary(col.type):
        enc = pa.chunked_array(chunks, col.type).combine_chunks().dictionary_encode()
        chunks = [enc]
    labels: dict[Any, int] = {}  # the dictionaries' strings
    parts: list[npt.NDArray[np.int64]] = []
    for chunk in cast("list[pa.DictionaryArray]", chunks):  # dictionary-typed, as checked
        remap = np.array(
            [labels.setdefault(x, len(labels)) for x in chunk.dictionary.to_pylist()] or [0],
            dtype=np.int64,
        )
        parts.append(remap[chunk.indices.to_numpy(zero_copy_only=False)])
    codes: npt.NDArray[np.int64] = np.concatenate(parts) if parts else np.empty(0, np.int64)
    return codes, list(labels)


def _int64(col: Any) -> np.ndarray:
    arr = pa.chunked_array(col) if not isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_timestamp(arr.type):
        arr = arr.cast(pa.int64())
    return arr.to_numpy()


def long_frame(table: pa.Table, *, with_run: bool = True) -> pd.DataFrame:
    """The long form: ``run_id`` (when ``with_run``), ``metric``, ``step``, ``time``, ``value``."""
    cols: dict[str, Any] = {}
    if with_run:
        codes, labels = _codes(table.column("run_id"))
        cols["run_id"] = pd.Categorical.from_codes(codes, pd.Index(labels))
    codes, labels = _codes(table.column("metric_name"))
    cols["metric"] = pd.Categorical.from_codes(codes, pd.Index(labels))
    cols["step"] = _int64(table.column("step"))
    cols["time"] = pd.to_datetime(_int64(table.column("time")), unit="us", utc=True)
    cols["value"] = table.column("value").to_numpy()
    return pd.DataFrame(cols)


def _wide_arrays(
    codes: np.ndarray, steps: np.ndarray, times: np.ndarray, values: np.ndarray, nnames: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row steps, row times µs, values[rows, names]) with one row per step (more when a
    metric repeats a step: its k-th point at that step goes to the step's k-th row)."""
    n = codes.shape[0]
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, nnames))
    sorted_ok = bool(
        np.all((codes[1:] > codes[:-1]) | ((codes[1:] == codes[:-1]) & (steps[1:] >= steps[:-1])))
    )
    if not sorted_ok:
        order = np.lexsort((times, steps, codes))
        codes, steps, times, values = codes[order], steps[order], times[order], values[order]
    counts = np.bincount(codes, minlength=nnames)
    m = int(counts[0])
    if (counts == m).all() and m * nnames == n:  # fast path: every metric at the same steps
        grid = steps.reshape(nnames, m)
        if (grid == grid[0]).all() and (m < 2 or (grid[0, 1:] > grid[0, :-1]).all()):
            return grid[0].copy(), times.reshape(nnames, m).min(axis=0), values.reshape(nnames, m).T
    new = np.ones(n, dtype=bool)
    new[1:] = (codes[1:] != codes[:-1]) | (steps[1:] != steps[:-1])
    idx = np.arange(n)
    dup = idx - np.maximum.accumulate(np.where(new, idx, 0))
    if not dup.any():
        row_steps, inv = np.unique(steps, return_inverse=True)
    else:
        pairs, inv = np.unique(np.stack([steps, dup], axis=1), axis=0, return_inverse=True)
        row_steps = pairs[:, 0]
    inv = inv.reshape(-1)
    wide = np.full((row_steps.shape[0], nnames), np.nan)
    wide[inv, codes] = values
    row_times = np.full(row_steps.shape[0], np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(row_times, inv, times)
    return row_steps, row_times, wide


def wide_frame(table: pa.Table, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """The wide form of one run: ``step``, ``time`` (earliest point of the row), one column
    per metric (in ``keys`` order when given), NaN where a metric has no point."""
    codes, labels = _codes(table.column("metric_name"))
    steps, times = _int64(table.column("step")), _int64(table.column("time"))
    values = table.column("value").to_numpy()
    row_steps, row_times, wide = _wide_arrays(codes, steps, times, values, len(labels))
    cols: dict[str, Any] = {
        "step": row_steps,
        "time": pd.to_datetime(row_times, unit="us", utc=True),
    }
    order = list(keys) if keys is not None else sorted(labels)
    pos = {name: j for j, name in enumerate(labels)}
    for name in order:
        cols[name] = wide[:, pos[name]] if name in pos else np.full(row_steps.shape[0], np.nan)
    return pd.DataFrame(cols)


def wide_frames(table: pa.Table, keys: Iterable[str] | None = None) -> pd.DataFrame:
    """Wide form of several runs stacked, with a leading ``run_id`` column."""
    if table.num_rows == 0:
        return pd.DataFrame({"run_id": pd.Series(dtype=str), "step": pd.Series(dtype=np.int64)})
    codes, labels = _codes(table.column("run_id"))
    keys = list(keys) if keys is not None else sorted(_codes(table.column("metric_name"))[1])
    parts = []
    for j, rid in enumerate(labels):
        sub = table.filter(pa.array(codes == j))
        df = wide_frame(sub, keys)
        df.insert(0, "run_id", rid)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


def with_x(df: pd.DataFrame, x: str) -> pd.DataFrame:
    """Order rows by ``x`` ("step", "time" or a metric, whose NaN rows are dropped), x first."""
    if x == "step":
        return df
    if x not in df.columns:
        raise KeyError(f"x={x!r} is neither 'step', 'time' nor a metric of this history")
    if x != "time":
        df = df[df[x].notna()]
    cols = [x] + [c for c in df.columns if c != x]
    return df[cols].sort_values(x, kind="stable").reset_index(drop=True)


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def runs_frame(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: id, name, project, state, times, tags, notes, host, exit_code,
    ``git.*``, ``config.*`` and ``summary.*`` (nested keys joined with ``.``)."""
    rows = []
    for r in runs:
        row = {
            k: r.get(k)
            for k in (
                "id",
                "name",
                "project",
                "state",
                *RUN_TIME_FIELDS,
                "tags",
                "notes",
                "host",
                "exit_code",
            )
        }
        for section in ("git", "config", "summary"):
            for k, v in (r.get(section) or {}).items():
                _flatten(f"{section}.{k}", v, row)
        rows.append(row)
    df = pd.DataFrame(rows, columns=None if rows else ["id", "name", "project", "state"])
    for col in RUN_TIME_FIELDS:
        if col in df:
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    for col in df.columns:
        if col.startswith("summary.") and df[col].dtype == object:
            df[col] = df[col].map(_summary_float)
    return df


def _summary_float(v: Any) -> Any:
    return (
        {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}.get(v, v)
        if isinstance(v, str)
        else v
    )
