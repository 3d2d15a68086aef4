"""PostgreSQL binary COPY built and parsed with numpy (no per-row Python).

Rows whose variable-width fields (uuid, name) are constant within a group are
fixed-width records, so a whole group is one structured array. Times are
``int64`` µs since the Unix epoch here and µs since 2000-01-01 on the wire.

The encoding is PostgreSQL's documented binary COPY format (header, big-endian
tuples, trailer), unchanged since PostgreSQL 7.4, with timestamps as int64 µs
(``integer_datetimes``, the only build since PostgreSQL 10). So there is no
library bound to state: :func:`copy_rows` checks the server it talks to
(:func:`binary_copy`) and otherwise lets asyncpg's ``copy_records_to_table``
encode the same rows (docs/fast-paths.md).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
import numpy as np
import orjson

PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 - 1970-01-01 in µs
HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"

# wire type code -> numpy big-endian dtype of the value
_WIRE = {"i2": ">i2", "i4": ">i4", "i8": ">i8", "f8": ">f8", "ts": ">i8"}

Field = tuple[str, Any]  # (kind, array | constant bytes | None); kind: i2 i4 i8 f8 ts bytes null


def _record_dtype(fields: Sequence[Field]) -> np.dtype:
    spec: list[tuple[str, str]] = [("nf", ">i2")]
    for i, (kind, value) in enumerate(fields):
        spec.append((f"l{i}", ">i4"))
        if kind == "bytes":
            spec.append((f"v{i}", f"S{_bytes_width(value)}"))
        elif kind != "null":
            spec.append((f"v{i}", _WIRE[kind]))
    return np.dtype(spec)


def _bytes_width(value: bytes | np.ndarray) -> int:
    return value.dtype.itemsize if isinstance(value, np.ndarray) else len(value)


def _fill(rec: np.ndarray, fields: Sequence[Field]) -> None:
    rec["nf"] = len(fields)
    for i, (kind, value) in enumerate(fields):
        if kind == "null":
            rec[f"l{i}"] = -1
            continue
        rec[f"l{i}"] = _bytes_width(value) if kind == "bytes" else np.dtype(_WIRE[kind]).itemsize
        rec[f"v{i}"] = value - PG_EPOCH_US if kind == "ts" else value


def encode_group(
    n: int, fields: Sequence[Field], head: bytes = b"", tail: bytes = b""
) -> bytearray:
    """``n`` rows of binary COPY data between ``head`` and ``tail``, built in place.

    Each field is ``("i8"|"f8"|"i2"|"ts", array_or_scalar)``, ``("bytes", b)``
    (the same bytes in every row: uuid, name...; or an ``S<k>`` array of
    per-row values of the same width ``k``) or ``("null", None)``.
    """
    dtype = _record_dtype(fields)
    out = bytearray(len(head) + n * dtype.itemsize + len(tail))
    out[: len(head)] = head
    out[len(out) - len(tail) :] = tail
    _fill(np.frombuffer(out, dtype, n, len(head)), fields)
    return out


def encode_row(fields: Sequence[Field]) -> bytes:
    """One row, any field widths (slow path, e.g. rows carrying metadata)."""
    out = [struct.pack(">h", len(fields))]
    for kind, value in fields:
        if kind == "null" or value is None:
            out.append(b"\xff\xff\xff\xff")
        elif kind == "bytes":
            out.append(struct.pack(">i", len(value)) + value)
        else:
            v = int(value) - PG_EPOCH_US if kind == "ts" else value
            raw = np.asarray(v, dtype=_WIRE[kind]).tobytes()
            out.append(struct.pack(">i", len(raw)) + raw)
    return b"".join(out)


def jsonb(value: Any) -> bytes:
    """jsonb binary format: version byte 1, then the JSON text."""
    return b"\x01" + orjson.dumps(value)


# ----------------------------------------------------------------- typed rows
Row = tuple[Any, ...]  # a row's values in column order (times: int µs since the epoch)
BINARY_COPY = True  # off: every copy_rows goes through asyncpg's public encoder
BINARY_COPY_SINCE = (7, 4)  # PostgreSQL's binary COPY format has not changed since


def binary_copy(conn: asyncpg.Connection) -> bool:
    """Whether :func:`encode_rows` data is what ``conn``'s server reads: binary COPY
    (PostgreSQL >= 7.4) with int64 timestamps."""
    settings = conn.get_settings()
    return (
        BINARY_COPY
        and tuple(conn.get_server_version()[:2]) >= BINARY_COPY_SINCE
        and getattr(settings, "integer_datetimes", "on") == "on"
    )


def encode_rows(kinds: Sequence[str], rows: Iterable[Row]) -> bytes:
    """Binary COPY data (header to trailer) of ``rows``; ``kinds`` per column: a
    :data:`Field` kind or ``uuid`` (``uuid.UUID``), ``text`` (str), ``jsonb``
    (a JSON value); None is SQL NULL."""
    out = [HEADER]
    for row in rows:
        fields: list[Field] = []
        for kind, value in zip(kinds, row, strict=True):
            if value is None:
                fields.append(("null", None))
            elif kind == "uuid":
                fields.append(("bytes", value.bytes))
            elif kind == "text":
                fields.append(("bytes", value.encode()))
            elif kind == "jsonb":
                fields.append(("bytes", jsonb(value)))
            else:
                fields.append((kind, value))
        out.append(encode_row(fields))
    out.append(TRAILER)
    return b"".join(out)


async def copy_rows(
    conn: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    kinds: Sequence[str],
    rows: Sequence[Row],
) -> None:
    """COPY ``rows`` (see :func:`encode_rows`) into ``table``: as our binary data when
    :func:`binary_copy`, else through ``copy_records_to_table`` (the values as the
    store's connection codecs take them: int µs timestamps, Python jsonb)."""
    if binary_copy(conn):
        await conn.copy_to_table(
            table,
            # asyncpg copies from any buffer; asyncpg-stubs name only files and iterables
            source=memoryview(encode_rows(kinds, rows)),  # type: ignore[arg-type]
            columns=list(columns),
            format="binary",
        )
    else:
        await conn.copy_records_to_table(table, records=rows, columns=list(columns))


# --------------------------------------------------------------------- decoding
def fixed_dtype(kinds: Sequence[str]) -> np.dtype:
    """Record dtype of COPY rows whose fields are all non-null fixed-width."""
    spec: list[tuple[str, str]] = [("nf", ">i2")]
    for i, kind in enumerate(kinds):
        spec += [(f"l{i}", ">i4"), (f"v{i}", _WIRE[kind])]
    return np.dtype(spec)


def decode_fixed(body: bytes | memoryview, kinds: Sequence[str]) -> list[np.ndarray]:
    """Columns (native dtypes) of COPY rows without header/trailer."""
    rec = np.frombuffer(body, dtype=fixed_dtype(kinds))
    cols = []
    for i, kind in enumerate(kinds):
        col = rec[f"v{i}"].astype(_WIRE[kind][1:])
        cols.append(col + PG_EPOCH_US if kind == "ts" else col)
    return cols


def strip_copy(data: bytes) -> memoryview:
    """The rows of a complete binary COPY output (header and trailer removed)."""
    if not data.startswith(HEADER[:11]):
        raise ValueError("not a binary COPY stream")
    ext = int.from_bytes(data[15:19], "big")
    return memoryview(data)[19 + ext : len(data) - len(TRAILER)]
