"""JSON wire forms shared by client and server (docs/api.md).

* Non-finite floats travel as the strings ``"NaN"``, ``"Infinity"``,
  ``"-Infinity"`` wherever a number is expected.
* The compact columnar metrics batch::

      {"batch_id", "run_id", "names": [str], "k": [name index], "s": [step],
       "t": [epoch seconds], "v": [value]}

  sent with content type :data:`COLUMNAR_CONTENT_TYPE`.

Only numpy and orjson are imported, so the server may import this module.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

COLUMNAR_CONTENT_TYPE = "application/vnd.wanllm.columnar+json"
NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"
_FROM_WIRE = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}


class WireError(ValueError):
    """A malformed wire payload: ``field`` at ``index`` (None for the whole field)."""

    def __init__(self, field: str, reason: str, index: int | None = None) -> None:
        self.field, self.reason, self.index = field, reason, index
        where = f"{field}[{index}]" if index is not None else field
        super().__init__(f"{where}: {reason}")


# ------------------------------------------------------------------ scalars
def encode_float(x: float) -> float | str:
    """``x`` as it travels in JSON: itself when finite, else its wire string."""
    if math.isfinite(x):
        return x
    return NAN if x != x else (POS_INF if x > 0 else NEG_INF)


def decode_float(v: Any) -> float:
    """A JSON number or wire string as a float; ``ValueError`` for anything else."""
    if isinstance(v, bool):
        raise ValueError(f"not a number: {v!r}")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and v in _FROM_WIRE:
        return _FROM_WIRE[v]
    raise ValueError(f"not a number: {v!r}")


# ------------------------------------------------------------------ arrays
def encode_values(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64] | list[float | str]:
    """Values ready for ``orjson.dumps(..., option=OPT_SERIALIZE_NUMPY)``.

    The array itself when every value is finite (the fast path), else a list
    with wire strings in place of NaN/±Inf.
    """
    finite = np.isfinite(values)
    if finite.all():
        return values
    out: list[float | str] = values.tolist()
    for i in np.flatnonzero(~finite).tolist():
        out[i] = encode_float(float(values[i]))
    return out


def decode_values(values: Sequence[Any], field: str = "v") -> npt.NDArray[np.float64]:
    """A JSON list of numbers/wire strings as a float64 array (``WireError`` names the item)."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values), dtype=np.float64)
    for i, v in enumerate(values):
        try:
            out[i] = decode_float(v)
        except ValueError as exc:
            raise WireError(field, str(exc), i) from None
    return out


def decode_ints(values: Sequence[Any], field: str) -> npt.NDArray[np.int64]:
    """A JSON list of integers as int64 (``WireError`` names the first bad item)."""
    try:
        arr = np.asarray(values)
    except (TypeError, ValueError):
        arr = np.asarray(values, dtype=object)
    if arr.ndim == 1 and (arr.dtype.kind in "iu" or arr.size == 0):
        return arr.astype(np.int64, copy=False)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int):
            raise WireError(field, f"not an integer: {v!r}", i)
        if not -(2**63) <= v < 2**63:
            raise WireError(field, f"out of int64 range: {v!r}", i)
    raise WireError(field, "not a list of integers")


# ------------------------------------------------------------------ columnar batch
@dataclass(slots=True)
class ColumnarBatch:
    """A decoded columnar batch: point ``i`` is metric ``names[k[i]]`` at step
    ``s[i]``, time ``t[i]`` (epoch seconds) with value ``v[i]``."""

    batch_id: str
    run_id: str
    names: list[str]
    k: npt.NDArray[np.int64]
    s: npt.NDArray[np.int64]
    t: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.v.shape[0])

    def to_json(self) -> bytes:
        """The JSON wire form (what the spool stores)."""
        return encode_columnar(
            self.batch_id, self.run_id, self.names, self.k, self.s, self.t, self.v
        )


def encode_columnar(
    batch_id: str,
    run_id: str,
    names: Sequence[str],
    k: npt.NDArray[np.integer[Any]],
    s: npt.NDArray[np.integer[Any]],
    t: npt.NDArray[np.floating[Any]],
    v: npt.NDArray[np.float64],
) -> bytes:
    """The JSON body of a columnar batch (NaN/±Inf values as wire strings)."""
    return orjson.dumps(
        {
            "batch_id": batch_id,
            "run_id": run_id,
            "names": list(names),
            "k": k,
            "s": s,
            "t": t,
            "v": encode_values(np.asarray(v, dtype=np.float64)),
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def decode_columnar(body: dict[str, Any]) -> ColumnarBatch:
    """Validate the shape of a decoded columnar body; ``WireError`` names the bad field/item."""
    if not isinstance(body, dict):
        raise WireError("body", "must be a JSON object")
    for key in ("batch_id", "run_id"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise WireError(key, "must be a non-empty string")
    names = body.get("names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise WireError("names", "must be a list of strings")
    cols = {}
    for key in ("k", "s", "t", "v"):
        if not isinstance(body.get(key), list):
            raise WireError(key, "must be a list")
        cols[key] = body[key]
    n = len(cols["v"])
    for key in ("k", "s", "t"):
        if len(cols[key]) != n:
            raise WireError(key, f"has {len(cols[key])} items, v has {n}")
    k = decode_ints(cols["k"], "k")
    bad = np.flatnonzero((k < 0) | (k >= len(names)))
    if bad.size:
        raise WireError("k", f"name index out of range (names has {len(names)})", int(bad[0]))
    t = decode_values(cols["t"], "t")
    bad = np.flatnonzero(~np.isfinite(t))
    if bad.size:
        raise WireError("t", "time must be finite", int(bad[0]))
    return ColumnarBatch(
        body["batch_id"],
        body["run_id"],
        names,
        k,
        decode_ints(cols["s"], "s"),
        t,
        decode_values(cols["v"], "v"),
    )
