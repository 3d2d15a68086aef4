"""Point blocks and tier partials as packed columns, shared by every store, and
blocks read back as one sorted, filtered :class:`.base.Series`.

A block holds ``n`` points of one series as three byte strings (steps, times,
values); ``n`` is stored beside them. Each column is one of:

* raw little-endian (``8 * n`` bytes, no tag): float columns, and the int
  columns of SQLite databases written before they were packed;
* ``TAG_CONST`` + first + delta (17 bytes): an arithmetic progression, e.g.
  consecutive steps or times logged at a fixed rate;
* ``TAG_DELTA | width`` + first (8 bytes) + the ``n - 1`` differences as
  little-endian ints of ``width`` bytes (1, 2, 4 or 8; wrapping int64
  arithmetic, so every int64 round-trips, extremes included);
* ``TAG_BIG_ENDIAN`` + ``8 * n`` big-endian bytes (what SQL's ``int8send`` /
  ``float8send`` produce: the migrations of existing rows).

No tagged form is ``8 * n`` bytes long, so raw columns need no tag. Floats are
stored raw (8 bytes; PostgreSQL's TOAST compression still applies). Tier
partials (:data:`.aggregates.PARTIAL_DTYPE`) pack field by field the same way,
every column tagged (raw floats as ``TAG_RAW``) so each one's length follows
from its tag and ``n``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import aggregates as agg
from .base import Series

TAG_CONST = 0x01
TAG_DELTA = 0x10  # | width in bytes
TAG_BIG_ENDIAN = 0x80
TAG_RAW = 0x00  # raw little-endian, in tier partials (whose columns are all tagged)
TAG_RAW_BYTE = bytes((TAG_RAW,))
_WIDTHS = ((1, np.int8), (2, np.int16), (4, np.int32))
_LE_I8 = np.dtype("<i8")
_LE_F8 = np.dtype("<f8")
EMPTY = Series(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))


def encode_ints(a: np.ndarray) -> bytes:
    """Pack an int64 column (see the module docstring)."""
    a = np.ascontiguousarray(a, _LE_I8)
    n = len(a)
    if n == 0:
        return b""
    d = np.diff(a)  # wraps on overflow; decoding wraps back
    first = a[:1].tobytes()
    if n == 1 or (d == d[0]).all():
        delta = d[:1].tobytes() if n > 1 else bytes(8)
        return bytes((TAG_CONST,)) + first + delta
    lo, hi = int(d.min()), int(d.max())
    for width, dtype in _WIDTHS:
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return bytes((TAG_DELTA | width,)) + first + d.astype(f"<i{width}").tobytes()
    return bytes((TAG_DELTA | 8,)) + first + d.tobytes()


def decode_ints(b: bytes | memoryview, n: int) -> np.ndarray:
    """The int64 column of ``n`` values packed in ``b`` (any form above)."""
    if len(b) == 8 * n:
        return np.frombuffer(b, _LE_I8)
    return _decode_tagged_ints(b, n)


def _decode_tagged_ints(b: bytes | memoryview, n: int, out: np.ndarray | None = None) -> np.ndarray:
    """Decode a tagged column into ``out`` (a new array when None; any int64 view)."""
    out = np.empty(n, np.int64) if out is None else out
    tag = b[0]
    if tag == TAG_BIG_ENDIAN:
        out[:] = np.frombuffer(b, ">i8", n, 1)
        return out
    first = int.from_bytes(b[1:9], "little", signed=True)
    if tag == TAG_CONST:
        delta = int.from_bytes(b[9:17], "little", signed=True)
        np.multiply(np.arange(n, dtype=np.int64), delta, out=out)  # array ops wrap silently
        out += first
        return out
    width = tag & 0x0F
    if tag & 0xF0 != TAG_DELTA or width not in (1, 2, 4, 8):
        raise ValueError(f"unknown column tag {tag:#x}")
    out[0] = first
    out[1:] = np.frombuffer(b, f"<i{width}", n - 1, 9)
    return np.cumsum(out, out=out)  # wraps like the encoding's differences


def encode_floats(a: np.ndarray) -> bytes:
    """A float64 column, raw little-endian (bit-exact: NaN payloads, ±0, ±Inf)."""
    return np.ascontiguousarray(a, _LE_F8).tobytes()


def decode_floats(b: bytes | memoryview, n: int) -> np.ndarray:
    if len(b) == 8 * n:
        return np.frombuffer(b, _LE_F8)
    if b[0] == TAG_BIG_ENDIAN:
        return np.frombuffer(b, ">f8", n, 1).astype(_LE_F8)
    raise ValueError(f"unknown float column tag {b[0]:#x}")


def encode_block(
    steps: np.ndarray, times: np.ndarray, values: np.ndarray, *, packed: bool = True
) -> tuple[bytes, bytes, bytes]:
    """A block's three columns: packed ints, or raw when not ``packed``."""
    if not packed:
        return (np.ascontiguousarray(steps, _LE_I8).tobytes(),
                np.ascontiguousarray(times, _LE_I8).tobytes(), encode_floats(values))  # fmt: skip
    return encode_ints(steps), encode_ints(times), encode_floats(values)


def decode_blocks(
    rows: Sequence[tuple[bytes, bytes, bytes, int]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated steps, times and values of blocks ``(steps, times, vals, n)``."""
    if not rows:
        return EMPTY.steps, EMPTY.times, EMPTY.values
    st = np.concatenate([decode_ints(r[0], r[3]) for r in rows])
    tm = np.concatenate([decode_ints(r[1], r[3]) for r in rows])
    v = np.concatenate([decode_floats(r[2], r[3]) for r in rows])
    return st, tm, v


def _column_size(tag: int, n: int) -> int:
    if tag == TAG_CONST:
        return 17
    if tag & 0xF0 == TAG_DELTA:
        return 9 + (tag & 0x0F) * (n - 1)
    return 1 + 8 * n  # TAG_RAW, TAG_BIG_ENDIAN


def encode_partials(p: np.ndarray) -> bytes:
    """Tier partials (at least one) field by field, each column tagged: ints as
    above, floats ``TAG_RAW`` + raw little-endian."""
    out = []
    for f in agg.PARTIAL_FIELDS:
        col = p[f]
        out.append(encode_ints(col) if col.dtype.kind == "i" else TAG_RAW_BYTE + encode_floats(col))
    return b"".join(out)


def decode_partials(b: bytes | memoryview, n: int) -> np.ndarray:
    """The ``n`` partials packed by :func:`encode_partials` (or by SQL: every
    column ``TAG_BIG_ENDIAN``)."""
    out = np.empty(n, agg.PARTIAL_DTYPE)
    view = memoryview(b)
    at = 0
    for f in agg.PARTIAL_FIELDS:
        tag = view[at]
        size = _column_size(tag, n)
        col = view[at : at + size]
        if tag == TAG_RAW:
            out[f] = np.frombuffer(col, _LE_F8, n, 1)
        elif agg.PARTIAL_DTYPE[f].kind == "i":
            _decode_tagged_ints(col, n, out[f])
        else:
            out[f] = decode_floats(col, n)
        at += size
    return out


def sorted_series(steps: np.ndarray, times: np.ndarray, values: np.ndarray) -> Series:
    """The points in (step, time) order (a stable sort, only when not already)."""
    if len(steps) > 1:
        a, b = steps[:-1], steps[1:]  # compared, not subtracted: int64 extremes
        if not ((b > a) | ((b == a) & (times[1:] >= times[:-1]))).all():
            o = np.lexsort((times, steps))
            steps, times, values = steps[o], times[o], values[o]
    return Series(steps, times, values)


def filter_points(
    st: np.ndarray,
    tm: np.ndarray,
    v: np.ndarray,
    start_step: int | None,
    end_step: int | None,
    start_time: int | None = None,
    end_time: int | None = None,
) -> Series:
    """The points within the (inclusive) bounds, sorted by (step, time)."""
    mask = None
    for arr, lo, hi in ((st, start_step, end_step), (tm, start_time, end_time)):
        for bound, cmp in ((lo, np.greater_equal), (hi, np.less_equal)):
            if bound is not None and len(arr) and not cmp(arr, bound).all():
                m = cmp(arr, bound)
                mask = m if mask is None else mask & m
    if mask is not None:
        st, tm, v = st[mask], tm[mask], v[mask]
    return sorted_series(st, tm, v)


def concat_series(parts: Sequence[Series]) -> Series:
    if not parts:
        return EMPTY
    return Series(
        *(np.concatenate([getattr(s, f) for s in parts]) for f in ("steps", "times", "values"))
    )


def outside(s: Series, ranges: Sequence[tuple[int, int]]) -> Series:
    """The points of ``s`` outside the (inclusive) step ranges."""
    keep = np.ones(len(s), bool)
    for a, b in ranges:
        keep &= (s.steps < a) | (s.steps > b)
    return Series(s.steps[keep], s.times[keep], s.values[keep])


def bounds(lo: int | None, hi: int | None) -> tuple[int, int]:
    """Inclusive int64 bounds, None meaning unbounded."""
    return (
        -(2**63) if lo is None else max(lo, -(2**63)),
        2**63 - 1 if hi is None else min(hi, 2**63 - 1),
    )
