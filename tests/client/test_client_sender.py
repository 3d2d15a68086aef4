"""Unit tests of the sender with a fake transport: retries, spooling, replay order."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from wanllm_jupyter._columns import Columns, WanllmWarning
from wanllm_jupyter._ops import Create, Op, Patch, System, wire_body
from wanllm_jupyter._sender import Sender
from wanllm_jupyter._spool import SYNCED, Spool, body_json, read_ops, replay_file
from wanllm_jupyter.core.errors import ServerError, ServerUnreachable


class FakeTransport:
    """Records delivered operations as ``(kind, body as spooled)``; ``down`` makes it
    raise ServerUnreachable."""

    def __init__(self) -> None:
        self.down = False
        self.delay = 0.0  # seconds per delivered operation
        self.local_error: Exception | None = None  # raised without reaching the server
        self.delivered: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.timeout = 30.0

    def deliver(self, op: Op) -> Any:
        if self.down:
            raise ServerUnreachable("down")
        time.sleep(self.delay)
        if self.local_error is not None:
            raise self.local_error
        if isinstance(op, Patch) and op.change.get("config") == {"bad": 1}:
            raise ServerError(422, "invalid", method="PATCH", path="runs/x")
        with self.lock:
            self.delivered.append((op.kind, orjson.loads(body_json(wire_body(op)))))
        return {"duplicate": False}

    def heartbeat(self, run_id: str) -> None:
        pass

    def steps(self) -> list[int]:
        return [s for kind, b in self.delivered if kind == "metrics" for s in b["s"]]


def make(tmp_path: Path, transport: FakeTransport | None, **kw: Any) -> Sender:
    kw.setdefault("interval", 0.01)
    sender = Sender(Columns("run"), Spool(tmp_path, "run"), transport, **kw)
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
    while (s.online or not s.spool.path.exists()) and time.monotonic() < deadline:
        time.sleep(0.01)  # offline, and the first spooled batch is on disk
    assert not s.online and s.spool.path.exists()
    s.ops.append(Patch("run", {"summary": {"a": 49}}))
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
        first=[Create({"id": "run"})],
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
    s.ops.append(Patch("run", {"config": {"bad": 1}}))
    with pytest.warns(WanllmWarning, match="rejected a patch"):
        report = s.close(5)
    assert report.set_aside_ops == 1 and "422" in (report.set_aside_first or "")


def spool_steps(path: Path) -> list[int]:
    return [x for k, b in read_ops(path) if k == "metrics" for x in b["s"]]


def spool_during_outage(tmp_path: Path, t: FakeTransport, points: int) -> Sender:
    """A sender whose ``points`` (in batches of 10) all went to the spool while ``t`` was down."""
    s = make(tmp_path, t, max_batch=10, retry_for=0.05, probe_every=3600)
    t.down = True
    for i in range(points):
        s.buffer.append(({"a": i}, None, True, 0.0))
    deadline = time.monotonic() + 10
    while s.report.spooled_points < points and time.monotonic() < deadline:
        time.sleep(0.01)
    assert s.report.spooled_points == points
    t.down = False
    return s


def test_close_bounds_a_long_replay_and_sync_finishes_it(tmp_path: Path) -> None:
    t = FakeTransport()
    s = spool_during_outage(tmp_path, t, 300)  # 30 spooled batches
    t.delay = 0.2  # replaying them all would take 6 s
    started = time.monotonic()
    report = s.close(0.4)
    assert time.monotonic() - started < 2.5  # 0.4 s + one request in flight + fsyncs on a busy disk
    assert 0 < report.spooled_points < 300 and report.sent_points + report.spooled_points == 300
    assert "wanllm sync" in report.describe()
    left = spool_steps(s.spool.path)  # exactly what was not delivered, in order
    assert t.steps() + left == list(range(300)) and len(left) == report.spooled_points
    t.delay = 0.0
    ops_left = len(list(read_ops(s.spool.path)))  # batches of 10 but where a drain cut one
    assert replay_file(s.spool.path, t.deliver) == ops_left  # what `wanllm sync` does
    assert t.steps() == list(range(300)) and not s.spool.path.exists()
    assert spool_steps(s.spool.dir / SYNCED) == left  # kept for offline queries


def test_spool_first_is_durable_even_when_delivery_hangs(tmp_path: Path) -> None:
    t = FakeTransport()
    s = make(tmp_path, t, max_batch=10, interval=3600)  # sends only when closed
    t.delay = 3.0  # the server hangs (a kernel would be killed meanwhile)
    for i in range(50):
        s.buffer.append(({"a": i}, None, True, 0.0))
    s.ops.append(Patch("run", {"state": "finished"}))
    started = time.monotonic()
    report = s.close(0.2, spool_first=True)
    assert time.monotonic() - started < 5
    ops = list(read_ops(s.spool.path))
    assert spool_steps(s.spool.path) == list(range(50)) and ops[-1][0] == "patch"
    assert report.spooled_points == 50 and report.unsent_points == report.unsent_items == 0


def test_spool_replay_stopped_early_keeps_only_undelivered_ops(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run")
    spool.append([System({"n": i}) for i in range(5)])
    got: list[int] = []

    def deliver(op: Op, up_to: int = 2) -> None:
        assert isinstance(op, System)
        if op.body["n"] > up_to:
            raise ServerUnreachable("down")
        got.append(op.body["n"])

    with pytest.raises(ServerUnreachable):
        spool.replay(deliver)
    assert got == [0, 1, 2] and [b["n"] for _, b in read_ops(spool.path)] == [3, 4]
    assert spool.replay(lambda op: None, stop=lambda: True) is False
    assert [b["n"] for _, b in read_ops(spool.path)] == [3, 4]
    assert spool.replay(lambda op: deliver(op, up_to=4)) is True
    assert got == [0, 1, 2, 3, 4] and spool.path.stat().st_size == 0
    spool.close()
    assert not spool.path.exists()


def test_a_torn_last_line_is_cut_before_appending(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run")
    spool.dir.mkdir(parents=True)
    spool.path.write_bytes(b'{"op":"system","body":{"n":0}}\n{"op":"sys')  # the writer died
    spool.append([System({"n": 1})])
    assert [b["n"] for _, b in read_ops(spool.path)] == [0, 1]
    spool.close()


def test_an_earlier_processs_spool_is_replayed_first(tmp_path: Path) -> None:
    Spool(tmp_path, "run").append([Patch("run", {"config": {"earlier": 1}})])
    t = FakeTransport()
    s = make(tmp_path, t)
    s.buffer.append(({"a": 0}, None, True, 0.0))
    s.close(5)
    assert [k for k, _ in t.delivered] == ["patch", "metrics"]


class Interrupting:
    """A tensor-like scalar whose conversion is interrupted by Ctrl-C."""

    size = 1

    def item(self) -> float:
        signal.raise_signal(signal.SIGINT)
        return 1.0


def test_ctrl_c_during_catch_up_loses_nothing(tmp_path: Path) -> None:
    s = Sender(Columns("run"), Spool(tmp_path, "run"), FakeTransport())  # thread not started
    for i in range(10):
        s.buffer.append(({"a": i}, None, True, 0.0))
    s.buffer.append(({"a": Interrupting()}, None, True, 0.0))
    for i in range(10):
        s.buffer.append(({"a": i}, None, True, 0.0))
    with pytest.raises(KeyboardInterrupt):
        s.catch_up()  # e.g. reading wl.summary in the main thread
    assert len(s.columns) == 21 and s.columns.step == 21 and not s.buffer


def test_a_local_failure_keeps_the_data_in_the_spool(tmp_path: Path) -> None:
    t = FakeTransport()
    t.local_error = RuntimeError("can't register atexit after shutdown")
    with pytest.warns(WanllmWarning, match="kept in the spool"):
        s = make(tmp_path, t)
        for i in range(10):
            s.buffer.append(({"a": i}, None, True, 0.0))
        report = s.close(2)
    assert report.set_aside_ops == 0 and report.spooled_points == 10
    assert spool_steps(s.spool.path) == list(range(10)) and "atexit" in report.errors[0]
