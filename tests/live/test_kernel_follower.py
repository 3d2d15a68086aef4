"""The kernel widgets' live dispatch (wanllm_jupyter/widgets/_live.py) treats a
sequence jump like a gap and drops replays (no Jupyter, no socket)."""

from __future__ import annotations

from typing import Any

from wanllm_jupyter.core.live_seq import LiveSequence
from wanllm_jupyter.widgets._live import LiveHub

RUN = "00000000-0000-4000-8000-000000000001"


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def on_points(self, run_id: str, points: dict[str, Any]) -> None:
        self.events.append(("points", points["loss"]["steps"]))

    def on_run(self, run: dict[str, Any]) -> None:
        self.events.append(("run", run["state"]))

    def on_gap(self, run_id: str) -> None:
        self.events.append(("gap", run_id))


def metrics(first: int, last: int) -> dict[str, Any]:
    steps = list(range(first, last + 1))
    return {
        "type": "metrics",
        "run_id": RUN,
        "seq": [first, last],
        "points": {"loss": {"steps": steps}},
    }


def test_jump_is_a_gap_and_replay_is_dropped() -> None:
    hub = LiveHub()  # dispatch only: no socket is opened
    key, target, seq = ("http://x/", RUN), Recorder(), LiveSequence()
    hub._listeners[key] = {target}
    for msg in (metrics(1, 2), metrics(3, 3), metrics(5, 5), metrics(4, 4)):
        assert hub._dispatch(key, RUN, msg, seq) is False
    hub._dispatch(key, RUN, {"type": "gap", "run_id": RUN, "reason": "r", "seq": 7}, seq)
    hub._dispatch(key, RUN, metrics(8, 8), seq)
    assert target.events == [
        ("points", [1, 2]),
        ("points", [3]),
        ("points", [5]),
        ("gap", RUN),  # 4 was missed: re-query
        ("gap", RUN),  # the server's own gap notice
        ("points", [8]),  # 4's late replay was dropped; 8 follows the gap's 7
    ]
