"""The sender's leading-edge throttle: log() into an empty buffer wakes the
sender, which sends at once after an idle ``interval`` and at most once per
``interval`` otherwise (with a fake transport)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.client.test_client_sender import FakeTransport, make
from wanllm_jupyter._send_buffer import LogBuffer


def test_buffer_wakes_the_sender_when_it_stops_being_empty() -> None:
    wakes: list[int] = []
    buf = LogBuffer(lambda: wakes.append(len(buf)), limit=100, running=lambda: True)
    for i in range(3):
        buf.append(i)
    assert wakes == [1] and list(buf) == [0, 1, 2]
    buf.popleft(), buf.popleft(), buf.popleft()
    buf.append(3)
    assert wakes == [1, 1]


def wait_for_steps(t: FakeTransport, n: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while len(t.steps()) < n and time.monotonic() < deadline:
        time.sleep(0.005)
    return len(t.steps()) >= n


def test_idle_sender_sends_at_once_then_at_most_once_per_interval(tmp_path: Path) -> None:
    t = FakeTransport()
    s = make(tmp_path, t, interval=1.0)
    try:
        time.sleep(1.2)  # idle for more than an interval
        s.buffer.append(({"a": 0}, None, True, 0.0))
        # sent on the wake-up, not at the next 1 s tick (at least 0.8 s away)
        assert wait_for_steps(t, 1, 0.5)
        s.buffer.append(({"a": 1}, None, True, 0.0))
        time.sleep(0.3)
        assert t.steps() == [0]  # within an interval of the last send: held back
        assert wait_for_steps(t, 2, 2.0)
    finally:
        s.close(5)
    assert t.steps() == [0, 1]
