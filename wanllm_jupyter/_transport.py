"""Deliver client operations (create/metrics/media/system/patch) to the server over HTTP."""

from __future__ import annotations

import functools
import sys
import threading
from typing import Any, Protocol

import numpy as np

from ._http import API, ARROW, Connection, encode_json
from ._ops import Create, Media, Metrics, Op, Patch, System, unhandled
from ._wire import COLUMNAR_CONTENT_TYPE, ColumnarBatch
from .core.errors import ServerError, ServerUnreachable

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# Metrics batches of at least this many points go as Arrow, smaller ones as columnar
# JSON: cheaper to encode and decode while small (a live loop's batches), and a
# process that never sends a large batch never imports pyarrow (nor imports it for
# the first time while the interpreter exits: see _sender.exiting).
ARROW_MIN_POINTS = 1000


def exiting() -> bool:
    """True once the interpreter is exiting (its main thread has ended: ``atexit``
    time). Nothing should be imported for the first time then: an import that runs
    ``exec`` (``namedtuple`` does) makes CPython exit with status 1 instead of the
    130 of an uncaught ``KeyboardInterrupt``."""
    return not threading.main_thread().is_alive()


@functools.cache
def arrow_schema() -> Any:
    """The Arrow batch schema (imports pyarrow on first use, on the sender's thread)."""
    import pyarrow as pa

    from .core.arrow import NAME_DICT

    return pa.schema(
        [
            ("metric_name", NAME_DICT),
            ("step", pa.int64()),
            ("time", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
        ]
    )


def is_retryable(exc: Exception) -> bool:
    """True when trying again later may succeed (unreachable, 5xx, 429)."""
    return isinstance(exc, ServerUnreachable) or (
        isinstance(exc, ServerError) and exc.status in RETRYABLE_STATUS
    )


def is_rejection(exc: Exception) -> bool:
    """True when the server answered that it will never accept the operation (a 4xx
    other than 408/429)."""
    return isinstance(exc, ServerError) and exc.status < 500 and not is_retryable(exc)


def is_server_fault(exc: Exception) -> bool:
    """True when the server answered with a 5xx (a bug or an outage behind it)."""
    return isinstance(exc, ServerError) and exc.status >= 500


class Transport(Protocol):
    """Where the sender delivers operations; raises on failure."""

    def deliver(self, op: Op) -> Any: ...

    def heartbeat(self, run_id: str) -> None: ...


class HttpTransport:
    """Operations as requests of docs/api.md over one keep-alive ``Connection``."""

    def __init__(self, conn: Connection, timeout: float = 30.0) -> None:
        self.conn = conn
        self.timeout = timeout

    def deliver(self, op: Op) -> Any:
        """Send one operation; the server's answer (decoded JSON, None when empty)."""
        conn, timeout = self.conn, self.timeout
        if isinstance(op, Metrics):
            return self._metrics(op.batch)
        if isinstance(op, Media):
            return self._media(op)
        if isinstance(op, System):
            return conn.post_json(API + "metrics/system/batch", op.body, timeout=timeout)
        if isinstance(op, Create):
            return conn.post_json(API + "runs", {**op.body, "resume": "allow"}, timeout=timeout)
        if isinstance(op, Patch):
            return conn.patch_json(f"{API}runs/{op.run_id}", op.change, timeout=timeout)
        unhandled(op)

    def _metrics(self, batch: ColumnarBatch | dict[str, Any]) -> Any:
        """A :class:`ColumnarBatch` as Arrow from :data:`ARROW_MIN_POINTS` points, else
        as columnar JSON; a spooled batch (its columnar JSON) as JSON."""
        arrow = (
            isinstance(batch, ColumnarBatch)
            and len(batch) >= ARROW_MIN_POINTS
            and ("pyarrow" in sys.modules or not exiting())
        )
        if isinstance(batch, ColumnarBatch):
            data = arrow_batch(batch) if arrow else batch.to_json()
        else:
            data = encode_json(batch)
        resp = self.conn.request(
            "POST",
            API + "metrics/batch",
            body=data,
            content_type=ARROW if arrow else COLUMNAR_CONTENT_TYPE,
            timeout=self.timeout,
        )
        return resp.json() if resp.data else None

    def _media(self, op: Media) -> Any:
        """A :class:`MediaBatch` as msgpack; a spooled one (its JSON form) as JSON."""
        if isinstance(op.batch, dict):
            return self.conn.post_json(API + "media/batch", op.batch, timeout=self.timeout)
        from ._media_batch import MEDIA_CONTENT_TYPE, encode_msgpack

        resp = self.conn.request(
            "POST",
            API + "media/batch",
            body=encode_msgpack(op.batch),
            content_type=MEDIA_CONTENT_TYPE,
            timeout=self.timeout,
        )
        return resp.json() if resp.data else None

    def heartbeat(self, run_id: str) -> None:
        self.conn.request("POST", f"{API}runs/{run_id}/heartbeat", timeout=10.0)


def arrow_batch(batch: ColumnarBatch) -> bytes:
    """The Arrow IPC form of a columnar batch (docs/api.md): ``metric_name``
    dictionary, ``step``, ``time`` (µs, UTC), ``value``; run and batch ids in the
    schema metadata. Built from the numpy buffers without per-point work."""
    import pyarrow as pa

    from .core.arrow import dictionary_array, numpy_array

    schema = arrow_schema().with_metadata({"run_id": batch.run_id, "batch_id": batch.batch_id})
    times = np.rint(batch.t * 1e6).astype(np.int64)
    record = pa.record_batch(
        [
            dictionary_array(batch.k, batch.names),
            numpy_array(batch.s.astype(np.int64, copy=False), pa.int64()),
            numpy_array(times, schema.field("time").type),
            numpy_array(batch.v.astype(np.float64, copy=False), pa.float64()),
        ],
        schema=schema,
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(record)
    return sink.getvalue().to_pybytes()
