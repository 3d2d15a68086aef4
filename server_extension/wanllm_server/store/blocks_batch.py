"""Many packed tier rows (:func:`.blocks.encode_partials`) decoded at once.

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
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import aggregates as agg
from .blocks import TAG_BIG_ENDIAN, TAG_CONST, TAG_DELTA, TAG_RAW, decode_partials

assert agg.PARTIAL_DTYPE.itemsize == 8 * len(agg.PARTIAL_FIELDS)  # see above
_KNOWN = np.zeros(256, bool)  # the tags a column can start with
_KNOWN[[TAG_CONST, TAG_RAW, TAG_BIG_ENDIAN, *(TAG_DELTA | w for w in (1, 2, 4, 8))]] = True


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The concatenated index ranges ``starts[i] .. starts[i] + lengths[i] - 1``."""
    local = np.cumsum(lengths) - lengths
    out: np.ndarray = np.arange(int(lengths.sum()), dtype=np.int64)
    out += np.repeat(starts - local, lengths)
    return out


def _ints(buf: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The little-endian int64 at each offset ``at`` of ``buf``."""
    return buf[at[:, None] + np.arange(8)].view("<i8").ravel()


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
