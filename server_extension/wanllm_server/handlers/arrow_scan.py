"""What an Arrow IPC stream would cost to decode, read from its message headers alone.

A compressed stream can claim any size: 32 KiB of zstd can hold 50M rows. The
row count of each record batch and the decompressed length of each of its
buffers (the int64 prefix of a compressed buffer) are in the stream itself, so
the stream is measured message by message, nothing decompressed, before a byte
of it is decoded. The flatbuffer reading below covers only the fields needed
(``Message.header``, ``RecordBatch.length/buffers/compression``,
``DictionaryBatch.data``), per the Arrow columnar format spec (Message.fbs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import pyarrow as pa

_SCHEMA, _DICTIONARY_BATCH, _RECORD_BATCH = 1, 2, 3  # MessageHeader union tags


class StreamTooLarge(Exception):
    """The stream passes a limit; ``what`` names it (``rows`` or ``bytes``)."""

    def __init__(self, what: str, size: int, limit: int) -> None:
        super().__init__(f"{what} {size} > {limit}")
        self.what, self.size, self.limit = what, size, limit


class MalformedStream(ValueError):
    """The message headers cannot be read."""


@dataclass
class StreamCost:
    """Rows of all record batches and decompressed bytes of all message bodies."""

    rows: int = 0
    bytes: int = 0


class _Table:
    """One flatbuffer table inside ``buf`` at ``pos``."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        vtable = pos - _unpack("<i", buf, pos)
        self.vtable = vtable
        self.vsize = _unpack("<H", buf, vtable)

    def _field(self, index: int) -> int:
        """The absolute position of field ``index``; 0 when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vsize:
            return 0
        off = _unpack("<H", self.buf, self.vtable + slot)
        return self.pos + off if off else 0

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        at = self._field(index)
        return _unpack(fmt, self.buf, at) if at else default

    def table(self, index: int) -> _Table | None:
        at = self._field(index)
        return _Table(self.buf, at + _unpack("<I", self.buf, at)) if at else None

    def structs(self, index: int, size: int) -> list[int]:
        """Positions of the elements of a vector of ``size``-byte structs."""
        at = self._field(index)
        if not at:
            return []
        start = at + _unpack("<I", self.buf, at)
        count = _unpack("<I", self.buf, start)
        if start + 4 + count * size > len(self.buf):
            raise MalformedStream("vector past the end of the message header")
        return [start + 4 + i * size for i in range(count)]


def _unpack(fmt: str, buf: bytes, pos: int) -> int:
    try:
        return struct.unpack_from(fmt, buf, pos)[0]
    except struct.error:
        raise MalformedStream("offset past the end of the message header") from None


def _batch_cost(batch: _Table, body: pa.Buffer | None) -> tuple[int, int]:
    """Rows and decompressed body bytes of one ``RecordBatch`` header."""
    rows = batch.scalar(0, "<q")
    compressed = batch.table(3) is not None
    view = memoryview(body) if body is not None else memoryview(b"")
    total = 0
    for at in batch.structs(2, 16):  # struct Buffer { offset: long; length: long }
        offset, length = struct.unpack_from("<qq", batch.buf, at)
        if not compressed or length == 0:
            total += max(length, 0)
            continue
        if offset < 0 or offset + 8 > len(view):
            raise MalformedStream("compressed buffer past the end of the message body")
        raw = struct.unpack_from("<q", view, offset)[0]
        total += length - 8 if raw == -1 else max(raw, 0)  # -1: stored uncompressed
    return max(rows, 0), total


def scan_stream(body: bytes | bytearray, max_rows: int, max_bytes: int) -> StreamCost:
    """The stream's cost from its headers alone. :class:`StreamTooLarge` at the first
    message that takes it past ``max_bytes`` decompressed, or once all headers are
    read when its record batches hold more than ``max_rows`` rows (exact count)."""
    cost = StreamCost()
    try:
        reader = pa.ipc.MessageReader.open_stream(pa.py_buffer(body))
        for message in reader:
            meta = message.metadata.to_pybytes()
            header = _Table(meta, _unpack("<I", meta, 0))  # the root table: Message
            kind = header.scalar(1, "<B")
            union = header.table(2)
            if union is None or kind == _SCHEMA:
                continue
            if kind == _DICTIONARY_BATCH:
                union = union.table(1)  # DictionaryBatch.data: RecordBatch
                if union is None:
                    continue
                rows, size = _batch_cost(union, message.body)
                rows = 0  # dictionary entries are not points; their bytes still count
            elif kind == _RECORD_BATCH:
                rows, size = _batch_cost(union, message.body)
            else:
                continue
            cost.rows += rows
            cost.bytes += size
            if cost.bytes > max_bytes:
                raise StreamTooLarge("bytes", cost.bytes, max_bytes)
    except (pa.ArrowException, OSError) as e:
        raise MalformedStream(str(e)) from None
    if cost.rows > max_rows:
        raise StreamTooLarge("rows", cost.rows, max_rows)
    return cost
