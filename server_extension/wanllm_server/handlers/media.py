"""Media routes: ``media/batch`` (upload), a run's media keys, images, histograms
and tables, and ``media/{digest}`` (the stored bytes, immutable and cacheable)."""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
import orjson
import pyarrow as pa
from jupyter_server.auth.decorator import authorized
from tornado import web

from .. import telemetry
from ..store.media_base import HistogramRow, ImageRow, MediaWrite, TableRow
from .base import ARROW_TYPE, JSON_TYPE, ApiError, WanllmHandler, dumps
from .media_input import media_write
from .wire import wire_float

MSGPACK_TYPE = "application/msgpack"
IMAGES_DEFAULT_LIMIT, IMAGES_MAX_LIMIT = 100, 1000
HISTOGRAMS_DEFAULT_STEPS, HISTOGRAMS_MAX_STEPS = 200, 2000
INLINE_BODY_BYTES = 64 * 1024  # smaller bodies are checked on the loop
_DIGEST = re.compile("^[0-9a-f]{64}$")


def _decode(raw: bytes | bytearray, binary: bool) -> Any:
    try:
        return msgspec.msgpack.decode(raw) if binary else orjson.loads(raw)
    except (msgspec.DecodeError, orjson.JSONDecodeError) as e:
        kind = "msgpack" if binary else "JSON"
        raise ApiError(400, f"malformed {kind}: {str(e)[:200]}") from None


def _checked(raw: bytes | bytearray, binary: bool, max_table_bytes: int) -> MediaWrite:
    return media_write(_decode(raw, binary), binary, max_table_bytes)


class MediaBatchHandler(WanllmHandler):
    """``media/batch``: a :class:`~wanllm_jupyter.core.api.MediaBatch` (msgpack or JSON)."""

    ingest_kind = "media"

    @web.authenticated
    @authorized
    async def post(self) -> None:
        async with self.tracked_write():
            start = time.perf_counter()
            raw = self.raw_body(MSGPACK_TYPE, JSON_TYPE)
            binary = self.media_type() == MSGPACK_TYPE
            limit = self.wanllm.max_arrow_decompressed_size
            if len(raw) < INLINE_BODY_BYTES:
                batch = _checked(raw, binary, limit)
            else:
                batch = await self.wanllm.offload(_checked, bytes(raw), binary, limit)
            store = await self.store()
            async with self.wanllm.ingest_slots:
                await store.write_media(batch)
            run = str(batch.run_id)
            self.live.publish_media(run, [(e.key, e.kind, e.step) for e in batch.entries])
            await self.wanllm.heartbeats.traffic(store, [batch.run_id])
            telemetry.INGEST_LATENCY.labels(kind="media").observe(time.perf_counter() - start)
        self.send_json({"run_id": run, "accepted": len(batch.entries)})


class MediaKeysHandler(WanllmHandler):
    """``runs/{run_id}/media``: the run's media keys."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        rid = self.run_id_arg(run_id)
        with self.timed("media_keys"):
            infos = await (await self.store()).media_keys(rid)
        keys = [
            {
                "key": i.key,
                "kind": i.kind,
                "steps": i.steps,
                "first_step": i.first_step,
                "last_step": i.last_step,
                "last_time": i.last_time / 1e6,
            }
            for i in infos
        ]
        self.send_json({"run_id": str(rid), "keys": keys})


def _image(r: ImageRow) -> dict[str, Any]:
    return {
        "step": r.step,
        "index": r.index,
        "time": r.time / 1e6,
        "caption": r.caption,
        "width": r.width,
        "height": r.height,
        "digest": r.digest,
    }


class ImagesHandler(WanllmHandler):
    """``runs/{run_id}/images/{key}``: the images of the latest ``limit`` steps."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        rid, key = self.run_id_arg(run_id), self.metric_name_arg(key)
        limit = self.int_arg("limit", IMAGES_DEFAULT_LIMIT, lo=1, hi=IMAGES_MAX_LIMIT)
        start, end = self.int_arg("start_step"), self.int_arg("end_step")
        with self.timed("images"):
            steps, rows = await (await self.store()).images(
                rid, key, start_step=start, end_step=end, limit=limit
            )
        body = {"run_id": str(rid), "key": key, "steps": steps, "images": [_image(r) for r in rows]}
        self.send_json(body)


def _histogram(r: HistogramRow) -> dict[str, Any]:
    return {"step": r.step, "time": r.time / 1e6, "edges": r.edges, "counts": r.counts}


class HistogramsHandler(WanllmHandler):
    """``runs/{run_id}/histograms/{key}``: at most ``max_steps`` steps, evenly chosen."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        rid, key = self.run_id_arg(run_id), self.metric_name_arg(key)
        budget = self.int_arg("max_steps", HISTOGRAMS_DEFAULT_STEPS, lo=1, hi=HISTOGRAMS_MAX_STEPS)
        start, end = self.int_arg("start_step"), self.int_arg("end_step")
        with self.timed("histograms"):
            steps, rows = await (await self.store()).histograms(
                rid, key, start_step=start, end_step=end, max_steps=budget
            )
        body = {"run_id": str(rid), "key": key, "steps": steps}
        body["histograms"] = [_histogram(r) for r in rows]
        self.finish(await self.wanllm.offload.maybe(len(rows) * 100, dumps, body))


def _table_step(r: TableRow) -> dict[str, Any]:
    return {"step": r.step, "time": r.time / 1e6, "rows": r.rows, "digest": r.digest}


def _cell(value: Any) -> Any:
    return wire_float(value) if isinstance(value, float) else value


def table_json(at: TableRow, data: bytes, steps: list[TableRow], rid: str, key: str) -> bytes:
    """The ``TableData`` body of a stored Arrow IPC stream (CPU work)."""
    table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    columns = [[_cell(v) for v in col.to_pylist()] for col in table.columns]
    body = {
        "run_id": rid,
        "key": key,
        "step": at.step,
        "columns": table.column_names,
        "data": [list(row) for row in zip(*columns, strict=True)],
        "steps": [_table_step(r) for r in steps],
    }
    return orjson.dumps(body, default=str)


class TableHandler(WanllmHandler):
    """``runs/{run_id}/tables/{key}?step=&format=json|arrow``."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str, key: str) -> None:
        rid, key = self.run_id_arg(run_id), self.metric_name_arg(key)
        step, fmt = self.int_arg("step"), self.format_arg()
        with self.timed("table"):
            at, data, steps = await (await self.store()).table(rid, key, step)
            if fmt == "arrow":
                self.finish(data, set_content_type=ARROW_TYPE)
                return
            cost = at.rows * 10
            body = await self.wanllm.offload.maybe(cost, table_json, at, data, steps, str(rid), key)
        self.finish(body)


class BlobHandler(WanllmHandler):
    """``media/{digest}``: stored bytes by content hash, cacheable for good."""

    @web.authenticated
    @authorized
    async def get(self, digest: str) -> None:
        if not _DIGEST.match(digest):
            raise ApiError(400, f"digest {digest[:80]!r} is not a sha256 hex string")
        self.set_header("ETag", f'"{digest}"')
        self.set_header("Cache-Control", "private, max-age=31536000, immutable")
        self.set_header("X-Content-Type-Options", "nosniff")
        if self._matches(digest):
            self.set_status(304)
            self.finish()
            return
        blob = await (await self.store()).media_blob(digest)
        if blob is None:
            self.clear_header("ETag")
            self.clear_header("Cache-Control")
            raise ApiError(404, f"no stored media {digest}")
        self.finish(blob.data, set_content_type=blob.media_type)

    def _matches(self, digest: str) -> bool:
        header = self.request.headers.get("If-None-Match", "")
        tags = {t.strip().removeprefix("W/") for t in header.split(",")}
        return f'"{digest}"' in tags or "*" in tags
