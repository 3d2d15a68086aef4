"""Encodings of the live feed: the Redis payload between servers and the
WebSocket messages to browsers (docs/api.md, "WebSocket").

Redis payload of one committed batch of one run (one PUBLISH per batch and
run): an orjson header line, then the raw little-endian arrays::

    {"o": origin, "r": run_id, "s": live seq, "n": [names], "c": count,
     "t": commit epoch s, "l": 1 when the points are not known}\\n
    name_idx int32[c] | steps int64[c] | times int64[c] (µs) | values float64[c]

``s`` is the run's live sequence number the batch took at commit (docs/api.md,
"Live message ordering"); ``l`` marks a re-published replay whose stored
points are not in hand (auto steps): subscribers that missed it get a ``gap``.

Values keep NaN/±Inf exactly; JSON messages carry them as the wire strings
``"NaN"``, ``"Infinity"``, ``"-Infinity"``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from .store.base import Float64Array, Int32Array, Int64Array, MetricBatch, Run

_LE_I32: np.dtype[np.int32] = np.dtype("<i4")
_LE_I64: np.dtype[np.int64] = np.dtype("<i8")
_LE_F64: np.dtype[np.float64] = np.dtype("<f8")


class PayloadError(ValueError):
    """A Redis live payload is malformed (another version, or not ours)."""


@dataclass(slots=True)
class Chunk:
    """Points of one run from one committed batch, in batch order."""

    run_id: str
    names: list[str]
    name_idx: Int32Array
    steps: Int64Array
    times: Int64Array  # µs since epoch
    values: Float64Array
    committed: float  # epoch seconds when the batch was handed to the hub
    seq: int  # the run's live sequence number of the batch
    lost: bool = False  # a replay whose points are not known: subscribers get a gap

    def __len__(self) -> int:
        return int(self.values.shape[0])


def split_batch(
    batch: MetricBatch, committed: float, seqs: dict[str, int], *, lost: bool = False
) -> list[Chunk]:
    """One chunk per run of ``batch`` that has a live sequence number in
    ``seqs`` (a batch usually holds a single run); ``lost``: publish the
    numbers only (subscribers that missed them get a gap)."""
    if len(batch) == 0:
        return []
    chunks = []
    for i, run_id in enumerate(batch.run_ids):
        seq = seqs.get(str(run_id))
        if seq is None:
            continue
        if lost:
            chunks.append(Chunk(str(run_id), [], *_EMPTY, committed, seq, True))
            continue
        mask = slice(None) if len(batch.run_ids) == 1 else batch.run_idx == i
        chunks.append(
            Chunk(
                str(run_id),
                batch.names,
                batch.name_idx[mask],
                batch.steps[mask],
                batch.times[mask],
                batch.values[mask],
                committed,
                seq,
            )
        )
    return [c for c in chunks if c.lost or len(c)]


_EMPTY = (
    np.empty(0, np.int32),
    np.empty(0, np.int64),
    np.empty(0, np.int64),
    np.empty(0, np.float64),
)


def encode_chunk(chunk: Chunk, origin: str) -> bytes:
    fields = {
        "o": origin,
        "r": chunk.run_id,
        "s": chunk.seq,
        "n": chunk.names,
        "c": len(chunk),
        "t": chunk.committed,
    }
    header = orjson.dumps({**fields, "l": 1} if chunk.lost else fields)
    return b"".join(
        (
            header,
            b"\n",
            chunk.name_idx.astype(_LE_I32, copy=False).tobytes(),
            chunk.steps.astype(_LE_I64, copy=False).tobytes(),
            chunk.times.astype(_LE_I64, copy=False).tobytes(),
            chunk.values.astype(_LE_F64, copy=False).tobytes(),
        )
    )


def payload_origin(payload: bytes) -> str:
    """The origin server id of a payload (cheap: parses the header only)."""
    return str(_header(payload)[0]["o"])


def decode_chunk(payload: bytes) -> Chunk:
    header, offset = _header(payload)
    try:
        count, names = int(header["c"]), [str(n) for n in header["n"]]
        run_id, committed, seq = str(header["r"]), float(header["t"]), int(header["s"])
        lost = bool(header.get("l"))
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadError(f"bad live payload header: {exc!r}") from exc
    if len(payload) - offset != count * 28:
        raise PayloadError(f"live payload of {count} points has {len(payload) - offset} bytes")
    name_idx = np.frombuffer(payload, dtype=_LE_I32, count=count, offset=offset)
    steps = np.frombuffer(payload, dtype=_LE_I64, count=count, offset=offset + count * 4)
    times = np.frombuffer(payload, dtype=_LE_I64, count=count, offset=offset + count * 12)
    values = np.frombuffer(payload, dtype=_LE_F64, count=count, offset=offset + count * 20)
    if count and (name_idx.min() < 0 or name_idx.max() >= len(names)):
        raise PayloadError("live payload name index out of range")
    return Chunk(run_id, names, name_idx, steps, times, values, committed, seq, lost)


def _header(payload: bytes) -> tuple[dict[str, Any], int]:
    end = payload.find(b"\n")
    try:
        header = orjson.loads(payload[:end]) if end > 0 else None
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict):
        raise PayloadError("live payload has no JSON header line")
    return header, end + 1


# ------------------------------------------------------------------ JSON side
def wire_floats(values: Float64Array) -> list[float | str]:
    """Values as JSON-ready numbers, non-finite ones as their wire strings."""
    out: list[Any] = values.tolist()
    bad = ~np.isfinite(values)
    if bad.any():
        for i in np.flatnonzero(bad).tolist():
            v = out[i]
            out[i] = "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return out


def series_fragment(name: str, steps: Int64Array, times: Int64Array, values: Float64Array) -> bytes:
    """``"<name>": {"steps", "times", "values"}`` of a metrics message."""
    body = orjson.dumps(
        {
            "steps": steps.tolist(),
            "times": (times / 1e6).tolist(),
            "values": wire_floats(values),
        }
    )
    return orjson.dumps(name) + b":" + body


def metrics_message(run_id: str, first: int, last: int, fragments: list[bytes]) -> str:
    """A ``metrics`` message holding every wanted point of the run's batches
    ``first..last`` (live sequence numbers)."""
    head = b'{"type":"metrics","run_id":%b,"seq":[%d,%d],"points":{' % (
        orjson.dumps(run_id),
        first,
        last,
    )
    return (head + b",".join(fragments) + b"}}").decode()


def gap_message(run_id: str | None, reason: str, seq: int | None = None) -> str:
    """A ``gap`` notice; ``seq``: the live sequence number it accounts up to
    (the subscriber re-queries and expects ``seq + 1`` next)."""
    body: dict[str, Any] = {"type": "gap", "run_id": run_id, "reason": reason}
    if seq is not None:
        body["seq"] = seq
    return orjson.dumps(body).decode()


def error_message(message: str) -> str:
    return orjson.dumps({"type": "error", "message": message}).decode()


def run_message(run: dict[str, Any]) -> str:
    return orjson.dumps({"type": "run", "run": run}).decode()


def run_deleted_message(run_id: str) -> str:
    return orjson.dumps({"type": "run_deleted", "run_id": run_id}).decode()


def run_to_wire(run: Run) -> dict[str, Any]:
    """The ``Run`` JSON of docs/api.md (µs times as ISO 8601 strings)."""
    out = dataclasses.asdict(run)
    out["id"] = str(run.id)
    for key in ("created_at", "updated_at", "heartbeat_at", "finished_at"):
        us = out[key]
        out[key] = None if us is None else f"{np.datetime64(us, 'us')}Z"
    return out
