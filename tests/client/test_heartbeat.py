"""A run's heartbeat is a task on the kernel's one I/O loop, not a thread of its
own: it reaches a real server while the sender is online, and a failing streak
is logged once, not per beat."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

import wanllm_jupyter as wl
from wanllm_jupyter._heartbeat import Heartbeat
from wanllm_jupyter._http import Connection
from wanllm_jupyter._transport import HttpTransport


def eventually(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_heartbeats_reach_the_server_from_the_io_loop(api: wl.Api) -> None:
    run = wl.init(project="t-hb", system_metrics=False)
    assert run._heartbeat is not None
    run._heartbeat.stop()  # its 5 s period is too slow for a test: a faster one
    before = api.run(run.id).data["heartbeat_at"]
    beat = Heartbeat(run.id, run._heartbeat.transport, run.sender, every=0.05)  # type: ignore[arg-type]
    beat.start()
    try:
        assert eventually(lambda: api.run(run.id).data["heartbeat_at"] > before)
    finally:
        beat.stop()
    names = {t.name for t in threading.enumerate()}
    assert {"wanllm-io", "wanllm-io-blocking"} <= names
    assert not any("heartbeat" in n for n in names)
    wl.finish(quiet=True)


class Online:
    online = True


def test_a_failing_heartbeat_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    transport = HttpTransport(Connection(f"http://127.0.0.1:{port}/"))
    caplog.set_level(logging.DEBUG, logger="wanllm_jupyter")
    beat = Heartbeat("run-1", transport, cast(Any, Online()), every=0.02)
    beat.start()
    try:
        assert eventually(lambda: len(caplog.records) >= 5, timeout=5)  # several beats
    finally:
        beat.stop()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "heartbeat of run run-1 failed" in warnings[0].getMessage()


def test_a_heartbeat_stopped_before_its_start_never_beats(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``init()`` starts heartbeats on a starter thread (wanllm_jupyter._loop_start): a
    run finished before that thread ran must not beat afterwards."""
    transport = HttpTransport(Connection("http://127.0.0.1:9/"))  # nothing listens
    caplog.set_level(logging.DEBUG, logger="wanllm_jupyter")
    beat = Heartbeat("run-2", transport, cast(Any, Online()), every=0.01)
    beat.stop()
    beat.start()
    time.sleep(0.3)
    assert not [r for r in caplog.records if "heartbeat of run run-2" in r.getMessage()]
