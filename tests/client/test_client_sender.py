"""Unit tests of the sender with a fake transport: retries, spooling, replay order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

from wanllm_jupyter._columns import Columns
from wanllm_jupyter._sender import Sender
from wanllm_jupyter._spool import Spool, read_ops
from wanllm_jupyter._wire import ColumnarBatch
from wanllm_jupyter.errors import ServerError, ServerUnreachable


class FakeTransport:
    """Records delivered operations; ``down`` makes it raise ServerUnreachable."""

    def __init__(self) -> None:
        self.down = False
        self.delivered: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.timeout = 30.0

    def deliver(self, kind: str, body: Any) -> Any:
        if self.down:
            raise ServerUnreachable("down")
        if kind == "patch" and body.get("notes") == "bad":
            raise ServerError(422, "invalid", method="PATCH", path="runs/x")
        if isinstance(body, ColumnarBatch):
            body = body.to_json()
        with self.lock:
            self.delivered.append((kind, orjson.loads(body) if isinstance(body, bytes) else body))
        return {"duplicate": False}

    def heartbeat(self, run_id: str) -> None:
        pass

    def steps(self) -> list[int]:
        return [s for kind, b in self.delivered if kind == "metrics" for s in b["s"]]


def make(tmp_path: Path, transport: FakeTransport | None, **kw: Any) -> Sender:
    sender = Sender(Columns("run"), Spool(tmp_path, "run"), transport, interval=0.01, **kw)
    sender.start()
    return sender


def test_batches_respect_max_batch_and_keep_order(tmp_path: Path) -> None:
    t = FakeTransport()
    s = make(tmp_path, t, max_batch=7)
    for i in range(100):
        s.buffer.append(({"a": i}, None, True, 0.0))
    report = s.close(5)
    assert t.steps() == list(range(100))
    assert max(len(b["v"]) for k, b in t.delivered if k == "metrics") <= 7
    assert report.sent_points == 100 and report.spooled_points == 0


def test_outage_spools_then_replays_in_order(tmp_path: Path) -> None:
    t = FakeTransport()
    s = make(tmp_path, t, retry_for=0.05, probe_every=0.05)
    t.down = True
    for i in range(50):
        s.buffer.append(({"a": i}, None, True, 0.0))
    deadline = time.monotonic() + 5
    while s.online and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not s.online and s.spool.path.exists()
    s.ops.append(("patch", {"run_id": "run", "summary": {"a": 49}}))
    for i in range(50, 80):
        s.buffer.append(({"a": i}, None, True, 0.0))
    time.sleep(0.2)
    t.down = False
    report = s.close(5)
    assert t.steps() == list(range(80))
    kinds = [k for k, _ in t.delivered]
    assert kinds.index("patch") > 0  # the patch kept its place between the points
    assert report.spooled_points == 0 and report.sent_points == 80
    assert not s.spool.path.exists()


def test_offline_spools_everything_durably(tmp_path: Path) -> None:
    s = Sender(
        Columns("run"),
        Spool(tmp_path, "run"),
        None,
        interval=0.01,
        first=[("create", {"id": "run"})],
    )
    s.start()
    for i in range(10):
        s.buffer.append(({"a": i}, None, True, 0.0))
    report = s.close(5)
    ops = list(read_ops(s.spool.path))
    assert ops[0] == ("create", {"id": "run"})
    assert [x for k, b in ops if k == "metrics" for x in b["s"]] == list(range(10))
    assert report.spooled_points == 10 and "wanllm sync" in report.describe()


def test_finish_deadline_spools_instead_of_waiting(tmp_path: Path) -> None:
    t = FakeTransport()
    t.down = True
    s = make(tmp_path, t, retry_for=60)
    for i in range(10):
        s.buffer.append(({"a": i}, None, True, 0.0))
    started = time.monotonic()
    report = s.close(0.5)
    assert time.monotonic() - started < 5
    assert report.spooled_points == 10 and report.unsent_points == 0


def test_rejected_operation_is_reported_not_retried(tmp_path: Path) -> None:
    t = FakeTransport()
    s = make(tmp_path, t)
    s.ops.append(("patch", {"run_id": "run", "notes": "bad"}))
    report = s.close(5)
    assert report.dropped_ops == 1 and "422" in report.errors[0]
