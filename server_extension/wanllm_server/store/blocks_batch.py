"""Many packed tier rows (:func:`.blocks.encode_partials`) encoded or decoded at once.

Decoding a row field by field costs a dozen numpy calls a field, whatever
its size, and a chart query reads up to a few dozen rows. Here every row is
decoded together: the tag and offset of each row's column of a field are
gathered in one step (each row's offset advanced by its column's size), then
all the columns with one tag (of any field and row) are decoded with a fixed
number of numpy calls: delta columns by one cumulative sum restarted at every
column (wrapping like the encoding), constant columns by one multiply-add, raw
floats by one gather (every partial field is 8 bytes: values land in their
field's cells as bits). Rows with big-endian columns (written by the SQL
migration) are decoded one by one.

Encoding runs the same way backwards: every int column's differences come
from one subtraction over all rows, their per-column minimum and maximum
(which pick the constant form or the width) from one reduction, and the
columns of each form are scattered into one buffer, cut into rows at the end.
Columns sit at any byte offset: their 8-, 4- or 2-byte items are read and
written whole, through a sliding-window view of the buffer (one index an item,
not one a byte).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import aggregates as agg
from .blocks import TAG_BIG_ENDIAN, TAG_CONST, TAG_DELTA, TAG_RAW, decode_partials

assert agg.PARTIAL_DTYPE.itemsize == 8 * len(agg.PARTIAL_FIELDS)  # see above
_KNOWN = np.zeros(256, bool)  # the tags a column can start with
_KNOWN[[TAG_CONST, TAG_RAW, TAG_BIG_ENDIAN, *(TAG_DELTA | w for w in (1, 2, 4, 8))]] = True
_INT = np.array([agg.PARTIAL_DTYPE[f].kind == "i" for f in agg.PARTIAL_FIELDS])
_I64 = np.iinfo(np.int64)
_WIDTHS = ((1, np.iinfo(np.int8)), (2, np.iinfo(np.int16)), (4, np.iinfo(np.int32)))


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``starts[i] .. starts[i] + lengths[i] - 1``."""
    local = np.cumsum(lengths) - lengths
    out: np.ndarray = np.arange(int(lengths.sum()), dtype=np.int64)
    out += np.repeat(starts - local, lengths)
    return out


def _ints(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian int64 at each offset ``at`` of ``buf``."""
    return buf[at[:, None] + np.arange(8)].view("<i8").ravel()


def _items(at: np.ndarray, counts: np.ndarray, w: int) -> np.ndarray:
    """Byte offsets of the ``w``-byte items of pieces of ``counts`` items at
    offsets ``at``, concatenated."""
    first = np.cumsum(counts) - counts  # each piece's first item
    out: np.ndarray = np.arange(int(counts.sum()), dtype=np.int64) * w
    out += np.repeat(at - w * first, counts)
    return out


def _take(buf: np.ndarray, at: np.ndarray, counts: np.ndarray, w: int) -> np.ndarray:
    """The ``w``-byte little-endian ints of pieces of ``counts`` items at byte
    offsets ``at`` of ``buf``, concatenated (one gather of ``w``-byte windows)."""
    windows: np.ndarray = sliding_window_view(buf, w)[_items(at, counts, w)]
    out: np.ndarray = windows.view(f"<i{w}").reshape(-1)
    return out


def _decode(buf: np.ndarray, tag: int, at: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The concatenated values of the columns of ``tag`` at offsets ``at`` (not big-endian)."""
    out: np.ndarray
    if tag == TAG_RAW:
        out = _take(buf, at + 1, n, 8).view("<f8")
        return out
    first = _ints(buf, at + 1)
    with np.errstate(over="ignore"):
        if tag == TAG_CONST:
            index = np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
            out = np.repeat(first, n) + np.repeat(_ints(buf, at + 9), n) * index
            return out
        width = tag & 0x0F
        seq = np.empty(int(n.sum()), np.int64)
        heads = np.cumsum(n) - n
        rest = np.ones(len(seq), bool)
        rest[heads] = False
        seq[heads] = first
        seq[rest] = _take(buf, at + 9, n - 1, width)
        total = np.cumsum(seq)  # wraps like the encoding's differences
        out = total - np.repeat(total[heads] - first, n)
        return out


def decode_partials_rows(rows: Sequence[tuple[bytes, int]]) -> np.ndarray:
    """The partials of packed tier rows ``(data, n)``, concatenated in row order
    (equal to ``concat_partials([decode_partials(d, n) for d, n in rows])``)."""
    counts = np.array([n for _, n in rows], np.int64)
    out = np.empty(int(counts.sum()), agg.PARTIAL_DTYPE)
    if not rows:
        return out
    lengths = np.array([len(d) for d, _ in rows], np.int64)
    buf = np.frombuffer(b"".join([d for d, _ in rows]), np.uint8)
    ends = np.cumsum(lengths)
    at = ends - lengths  # each row's current column, in ``buf``
    fields = len(agg.PARTIAL_FIELDS)
    tags = np.empty((fields, len(rows)), np.uint8)
    where = np.empty((fields, len(rows)), np.int64)
    for f in range(fields):  # every row's column of field f: its tag and its size
        if (at >= ends).any():
            raise ValueError("tier row shorter than its columns")
        t = tags[f] = buf[at]
        if not _KNOWN[t].all():
            raise ValueError(f"unknown column tag {int(t[~_KNOWN[t]][0]):#x}")
        where[f] = at
        delta = 9 + (t & 0x0F) * (counts - 1)
        at = at + np.where(
            t == TAG_CONST, 17, np.where(t & 0xF0 == TAG_DELTA, delta, 1 + 8 * counts)
        )
    if (at != ends).any():
        raise ValueError("tier row longer than its columns")
    cells = out.view(np.int64).reshape(-1)  # every field is 8 bytes: floats copied as bits
    starts = np.cumsum(counts) - counts  # each row's first partial, in ``out``
    for tag in np.unique(tags).tolist():
        if tag == TAG_BIG_ENDIAN:
            continue
        fs, rs = np.nonzero(tags == tag)
        n = counts[rs]
        cells[_ranges(starts[rs], n) * fields + np.repeat(fs, n)] = _decode(
            buf, tag, where[fs, rs], n
        ).view(np.int64)
    for row in np.unique(np.nonzero(tags == TAG_BIG_ENDIAN)[1]).tolist():  # SQL-migrated
        out[starts[row] : starts[row] + counts[row]] = decode_partials(*rows[row])
    return out


def _put(buf: np.ndarray, at: np.ndarray, data: np.ndarray, counts: np.ndarray) -> None:
    """Write ``data`` (pieces of ``counts`` items each, concatenated) into the
    bytes ``buf``, piece ``i`` at byte offset ``at[i]`` (the inverse of :func:`_take`)."""
    data = np.ascontiguousarray(data).reshape(-1)
    w = data.itemsize
    windows = sliding_window_view(buf, w, writeable=True)
    windows[_items(at, counts, w)] = data.view(np.uint8).reshape(-1, w)


def encode_partials_rows(p: np.ndarray, starts: np.ndarray) -> list[bytes]:
    """Partials ``p`` cut at ``starts`` (increasing, the first 0) into rows, each
    packed as :func:`.blocks.encode_partials` packs it, byte for byte."""
    total, rows, fields = len(p), len(starts), len(agg.PARTIAL_FIELDS)
    if rows == 0:
        return []
    n = np.diff(np.append(starts, total))
    cols = np.ascontiguousarray(np.ascontiguousarray(p).view(np.int64).reshape(total, fields).T)
    ints = cols[_INT]
    d = ints[:, 1:] - ints[:, :-1]  # wraps like encode_ints' np.diff
    lo = np.zeros((len(ints), rows), np.int64)  # one partial: constant, delta 0
    hi = np.zeros((len(ints), rows), np.int64)
    multi = n > 1
    if multi.any():
        cut = starts[1:] - 1  # differences across two rows
        masked = d.copy()
        masked[:, cut] = _I64.max
        lo[:, multi] = np.minimum.reduceat(masked, starts[multi], axis=1)
        masked[:, cut] = _I64.min
        hi[:, multi] = np.maximum.reduceat(masked, starts[multi], axis=1)
    width = np.full(lo.shape, 8, np.int64)
    for w, info in reversed(_WIDTHS):
        width[(info.min <= lo) & (hi <= info.max)] = w
    const = lo == hi
    tags = np.full((fields, rows), TAG_RAW, np.uint8)
    size = np.repeat((1 + 8 * n)[None, :], fields, 0)
    tags[_INT] = np.where(const, TAG_CONST, TAG_DELTA | width)
    size[_INT] = np.where(const, 17, 9 + width * (n - 1))
    flat = size.T.reshape(-1)  # row by row, field by field
    ends = np.cumsum(flat)
    off = (ends - flat).reshape(rows, fields).T  # each (field, row) column's offset
    buf = np.empty(int(ends[-1]), np.uint8)
    buf[off] = tags
    ioff = off[_INT]
    _put(buf, ioff.reshape(-1) + 1, ints[:, starts], np.ones(ioff.size, np.int64))
    fi, ri = np.nonzero(const)
    _put(buf, ioff[fi, ri] + 9, lo[fi, ri], np.ones(len(fi), np.int64))
    for w in (1, 2, 4, 8):
        fi, ri = np.nonzero(~const & (width == w))
        if len(fi):
            k = n[ri] - 1
            diffs = d[fi.repeat(k), _ranges(starts[ri], k)]
            _put(buf, ioff[fi, ri] + 9, diffs.astype(f"<i{w}"), k)
    floats = ~_INT
    _put(buf, off[floats].reshape(-1) + 1, cols[floats], np.tile(n, int(floats.sum())))
    data, at = buf.tobytes(), off[0].tolist()
    return [data[a:b] for a, b in zip(at, [*at[1:], len(data)], strict=True)]
