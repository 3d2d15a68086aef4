"""Every request of the client is bounded in time: a server that accepts the
connection but never answers makes a call fail (ServerUnreachable), not hang."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wanllm_jupyter._http import API, Connection
from wanllm_jupyter._ops import Create, Op, Patch, System
from wanllm_jupyter._transport import HttpTransport
from wanllm_jupyter.core.errors import ServerUnreachable


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A listening socket whose connections are accepted (by the kernel) and never read."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"


def outcome(call: Callable[[], Any], wait: float = 30.0) -> BaseException | None:
    """What ``call`` raised, run on a thread; fails if it has not returned by ``wait`` s."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            box.append(None)
        except BaseException as exc:  # handed to the test
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(wait)
    assert box, f"still waiting after {wait} s: the request has no timeout"
    return box[0]


@pytest.mark.parametrize(
    "op",
    [
        Patch("00000000-0000-0000-0000-000000000001", {"summary": {"a": 1}}),
        Create({"project": "p"}),
        System({"run_id": "00000000-0000-0000-0000-000000000001", "metrics": []}),
    ],
    ids=lambda op: op.kind,
)
def test_transport_operations_time_out(silent_url: str, op: Op) -> None:
    transport = HttpTransport(Connection(silent_url), timeout=0.3)
    assert isinstance(outcome(lambda: transport.deliver(op)), ServerUnreachable)


def test_requests_without_a_timeout_use_the_connections(silent_url: str) -> None:
    conn = Connection(silent_url, timeout=0.3)
    assert isinstance(outcome(lambda: conn.get_json(API + "projects")), ServerUnreachable)
    assert isinstance(outcome(lambda: conn.patch_json(API + "runs/x", {})), ServerUnreachable)
