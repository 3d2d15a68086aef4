"""Hostile request bodies cannot grow the server's memory (issue 9, items 4 and 6).

Against a real ``jupyter server`` process (its RSS is read with psutil): a
32 KiB zstd Arrow bomb of 50M rows is refused from its headers; a body past
``max_body_size`` or without authentication is refused from the request's
headers, before it is sent; a chunked body is cut off at the cap.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import numpy as np
import orjson
import psutil
import pyarrow as pa
import pytest
import urllib3
from wanllm_server.handlers.arrow_scan import MalformedStream, StreamTooLarge, scan_stream
from wanllm_server.handlers.metrics import MetricBatchHandler

from tests.jupyter_process import JupyterServer
from tests.server.server_helpers import create_run

API = "wanllm/api/v1/"
ARROW = "application/vnd.apache.arrow.stream"
LIMIT = 1 << 20  # the server's max_body_size in this module
HUGE = 300 * 1000 * 1000


@pytest.fixture(scope="module")
def server() -> Iterator[JupyterServer]:
    with JupyterServer(
        extra_args=[f"--WanllmApp.max_body_size={LIMIT}", "--ServerApp.log_level=WARN"]
    ) as s:
        yield s


def arrow_stream(n: int, run_id: str, compression: str | None = None, chunk: int = 0) -> bytes:
    """``n`` zero points; ``np.zeros`` pages are never touched, so even 50M rows
    cost this process no memory to compress."""
    names = pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), ["loss"])
    table = pa.table(
        {"metric_name": names, "step": np.zeros(n, np.int64), "value": np.zeros(n)}
    ).replace_schema_metadata({"run_id": run_id})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression=compression)
    with pa.ipc.new_stream(sink, table.schema, options=options) as w:
        w.write_table(table, max_chunksize=chunk or None)
    return sink.getvalue().to_pybytes()


def request(
    server: JupyterServer, head: str, body: bytes = b"", *, auth: bool = True
) -> tuple[int, dict, float]:
    """Send ``head`` (request line and headers, no blank line) and ``body`` over a
    raw socket, send nothing more, and read the answer: (status, JSON, seconds)."""
    token = f"Authorization: token {server.token}\r\n" if auth else ""
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"{head}\r\nHost: 127.0.0.1\r\n{token}\r\n".encode() + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < _expected(data):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - start
    header, _, payload = data.partition(b"\r\n\r\n")
    status = int(header.split(b" ", 2)[1])
    return status, orjson.loads(payload) if payload else {}, elapsed


def _expected(data: bytes) -> int:
    header, sep, _ = data.partition(b"\r\n\r\n")
    for line in header.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(header) + len(sep) + int(value)
    return len(data) + 1


def post(server: JupyterServer, path: str, body: bytes, ctype: str = "application/json"):
    http = urllib3.PoolManager(retries=False, timeout=60)
    headers = {**server.headers, "Content-Type": ctype}
    return http.request("POST", server.url + API + path, body=body, headers=headers)


def rss(server: JupyterServer) -> int:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss


@pytest.fixture(scope="module")
def run_id(server: JupyterServer) -> str:
    r = post(server, "runs", orjson.dumps({"project": "limits"}))
    assert r.status in (200, 201), r.data
    return orjson.loads(r.data)["id"]


def test_decompression_bomb_is_413_without_growing_the_server(server, run_id):
    small = arrow_stream(10, run_id, "zstd")
    assert post(server, "metrics/batch", small, ARROW).status == 200  # warm: imports loaded
    bomb = arrow_stream(50_000_000, run_id, "zstd")
    assert len(bomb) < 32 * 1024
    before = rss(server)
    r = post(server, "metrics/batch", bomb, ARROW)
    grown = rss(server) - before
    assert r.status == 413, r.data
    assert orjson.loads(r.data)["message"].startswith("Arrow stream decompresses to at least ")
    assert grown < 50 * 2**20, f"server RSS grew {grown / 2**20:.0f} MiB"


@pytest.mark.parametrize(
    "framing",
    [f"Content-Length: {HUGE}", f"Content-Length: {HUGE}, {HUGE}", "Transfer-Encoding: chunked"],
)
def test_unauthenticated_huge_body_is_403_before_it_is_sent(server, framing):
    head = f"POST /{API}metrics/batch HTTP/1.1\r\n{framing}"
    head += "\r\nContent-Type: application/json"
    status, _, seconds = request(server, head, b"{" * 65536, auth=False)
    assert status == 403
    assert seconds < 5


def test_unauthorized_body_is_403_before_it_is_sent():
    args = ["--ServerApp.authorizer_class=tests.server.read_only_authorizer.ReadOnly"]
    with JupyterServer(extra_args=[*args, "--ServerApp.log_level=WARN"]) as read_only:
        head = f"POST /{API}metrics/batch HTTP/1.1\r\nContent-Length: {HUGE}"
        head += "\r\nContent-Type: application/json"
        status, answer, seconds = request(read_only, head, b"{" * 65536)
    assert status == 403
    assert answer["message"] == "User is not authorized to write on resource: wanllm."
    assert seconds < 5


def test_authenticated_body_past_the_limit_is_413_before_it_is_sent(server):
    head = f"POST /{API}metrics/batch HTTP/1.1\r\nContent-Length: {HUGE}"
    head += "\r\nContent-Type: application/json"
    status, answer, seconds = request(server, head, b"{" * 65536)
    assert status == 413
    assert answer["message"] == f"request body of {HUGE} bytes exceeds max_body_size {LIMIT}"
    assert seconds < 5


def test_chunked_body_past_the_limit_is_413_once_the_cap_is_passed(server):
    head = f"POST /{API}runs HTTP/1.1\r\nTransfer-Encoding: chunked"
    head += "\r\nContent-Type: application/json"
    piece = 64 * 1024
    chunks = b"".join(b"%x\r\n%s\r\n" % (piece, b" " * piece) for _ in range(LIMIT // piece + 1))
    status, answer, _ = request(server, head, chunks)  # no terminating chunk is sent
    assert status == 413
    assert answer["message"] == f"request body exceeds max_body_size {LIMIT}"


@pytest.mark.parametrize(
    ("method", "path", "auth", "body", "status"),
    [
        ("POST", "metrics/batch", False, b" " * 1000, 403),
        ("POST", "metrics/batch", True, b" " * (LIMIT + 1), 413),
        ("GET", "runs/00000000-0000-0000-0000-000000000000/metrics/a%FFb", True, None, 400),
    ],
    ids=["unauthenticated", "past-the-limit", "path-not-utf8"],
)
def test_an_early_error_closes_its_connection_and_says_so(server, method, path, auth, body, status):
    """A request answered before it was read to its end leaves its connection
    unusable; the answer says ``Connection: close`` so a keep-alive client does
    not reuse it (it got a reset on its next request)."""
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1, retries=False)
    headers = {"Content-Type": "application/json", **(server.headers if auth else {})}
    refused = pool.request(method, f"/{API}{path}", body=body, headers=headers)
    assert refused.status == status
    assert refused.headers.get("Connection") == "close"
    for _ in range(3):  # the next requests on the same pool get fresh connections
        assert pool.request("GET", f"/{API}health", headers=server.headers).status == 200
    pool.close()


def test_bodies_within_the_limit_are_read_whole(server, run_id):
    head = f"POST /{API}runs HTTP/1.1\r\nTransfer-Encoding: chunked"
    head += "\r\nContent-Type: application/json"
    doc = orjson.dumps({"project": "limits", "name": "chunked"})
    status, answer, _ = request(server, head, b"%x\r\n%s\r\n0\r\n\r\n" % (len(doc), doc))
    assert status in (200, 201) and answer["name"] == "chunked"
    raw = arrow_stream(50_000, run_id, "lz4", chunk=10_000)  # 1 MB decompressed, 5 batches
    r = post(server, "metrics/batch", raw, ARROW)
    assert r.status == 200 and orjson.loads(r.data)["written"] == 50_000


def test_scan_counts_rows_and_decompressed_bytes_from_headers_alone():
    rid = str(uuid.uuid4())
    for compression in (None, "lz4", "zstd"):
        cost = scan_stream(arrow_stream(1000, rid, compression, chunk=300), 10**9, 10**9)
        assert cost.rows == 1000
        assert 1000 * 20 <= cost.bytes < 1000 * 20 + 4096  # int32 + int64 + float64 a row
    with pytest.raises(StreamTooLarge) as rows:
        scan_stream(arrow_stream(1000, rid, chunk=300), 999, 10**9)
    assert (rows.value.what, rows.value.size) == ("rows", 1000)
    with pytest.raises(StreamTooLarge) as size:
        scan_stream(arrow_stream(50_000_000, rid, "zstd"), 10**9, 10**6)
    assert size.value.what == "bytes" and size.value.size > 10**9
    with pytest.raises(MalformedStream):
        scan_stream(b"\xff\xff\xff\xff\x10\x00\x00\x00not a flatbuffer", 10, 10)


@pytest.fixture
def backend() -> str:
    """The in-process server (``api``) of this module runs on SQLite only: body
    reading does not depend on the store."""
    return "sqlite"


async def test_arrow_bodies_that_decompress_large_are_decoded_off_the_event_loop(
    api, monkeypatch: pytest.MonkeyPatch
):
    readers: list[str] = []
    real_read = MetricBatchHandler.read_batch

    def read_spy(self):
        readers.append(threading.current_thread().name)
        return real_read(self)

    monkeypatch.setattr(MetricBatchHandler, "read_batch", read_spy)
    rid = (await create_run(api))["id"]
    small_but_large = arrow_stream(100_000, rid, "zstd")  # ~2 MB decompressed
    assert len(small_but_large) < 16 * 1024
    for raw in (small_but_large, arrow_stream(10, rid)):
        resp = await api("POST", "metrics/batch", body=raw, headers={"Content-Type": ARROW})
        assert resp.code == 200, resp.body
    assert readers[0].startswith("wanllm-cpu")
    assert readers[1] == threading.current_thread().name
