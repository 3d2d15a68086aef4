"""Many packed tier rows (:func:`.blocks.encode_partials`) decoded at once.

Decoding a row field by field costs a dozen numpy calls a field, whatever
its size, and a chart query reads up to a few dozen rows. Here the rows are
decoded together, field by field: the tags of a field's column in every row
are gathered in one step (each row's offset advanced by its column's size),
then each tag's columns are decoded for all the rows using it with a fixed
number of numpy calls: delta columns by one cumulative sum restarted at
every row (wrapping like the encoding), constant columns by one
multiply-add, raw floats by one gather. Big-endian columns (rows written by
the SQL migration) are decoded row by row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import aggregates as agg
from .blocks import TAG_BIG_ENDIAN, TAG_CONST, TAG_DELTA, TAG_RAW, decode_partials

_WIDTHS = (1, 2, 4, 8)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``starts[i] .. starts[i] + lengths[i] - 1``."""
    local = np.cumsum(lengths) - lengths
    out: np.ndarray = np.arange(int(lengths.sum()), dtype=np.int64)
    out += np.repeat(starts - local, lengths)
    return out


def _ints(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian int64 at each offset ``at`` of ``buf``."""
    return buf[at[:, None] + np.arange(8)].view("<i8").ravel()


def _size(tag: int, n: np.ndarray) -> np.ndarray | int:
    """Bytes of columns of ``tag`` holding ``n`` values."""
    if tag == TAG_CONST:
        return 17
    if tag & 0xF0 == TAG_DELTA and tag & 0x0F in _WIDTHS:
        return 9 + (tag & 0x0F) * (n - 1)
    if tag in (TAG_RAW, TAG_BIG_ENDIAN):
        return 1 + 8 * n
    raise ValueError(f"unknown column tag {tag:#x}")


def _decode(buf: np.ndarray, tag: int, at: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The concatenated values of the columns of ``tag`` at offsets ``at`` (not big-endian)."""
    out: np.ndarray
    if tag == TAG_RAW:
        out = buf[_ranges(at + 1, 8 * n)].view("<f8")
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
        seq[rest] = buf[_ranges(at + 9, width * (n - 1))].view(f"<i{width}")
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
    at = np.cumsum(lengths) - lengths  # each row's current column, in ``buf``
    starts = np.cumsum(counts) - counts  # each row's first partial, in ``out``
    migrated: dict[int, np.ndarray] = {}
    for field in agg.PARTIAL_FIELDS:
        col = out[field]
        tags = buf[at]
        for tag in np.unique(tags).tolist():
            rows_of = np.flatnonzero(tags == tag)
            n = counts[rows_of]
            if tag == TAG_BIG_ENDIAN:
                for r in rows_of.tolist():
                    if r not in migrated:
                        migrated[r] = decode_partials(*rows[r])
                    col[starts[r] : starts[r] + counts[r]] = migrated[r][field]
            elif len(rows_of) == len(rows):
                col[:] = _decode(buf, tag, at, n)
            else:
                col[_ranges(starts[rows_of], n)] = _decode(buf, tag, at[rows_of], n)
            at[rows_of] += _size(tag, n)
    if (at != np.cumsum(lengths)).any():
        raise ValueError("tier row length does not match its columns")
    return out
