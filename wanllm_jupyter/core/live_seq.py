"""How a live subscriber follows a run's sequence numbers (docs/api.md, "Live
message ordering"); the sidebar's TypeScript (js/shared/liveSeq.ts) mirrors it.

Every ``metrics`` message of ``wanllm/ws/metrics/<run_id>`` carries
``seq: [first, last]``: it holds every wanted point of the run's committed
batches ``first..last``. A message whose ``first`` is past the last number
seen + 1 reveals a hole (treat it like a ``gap``: re-query); one whose
``last`` was seen already is a replay (drop it). A ``gap`` with ``seq``
accounts for the numbers up to it. A new socket starts with nothing seen.
"""

from __future__ import annotations

from typing import Any


class LiveSequence:
    """The sequence numbers seen on one socket."""

    def __init__(self) -> None:
        self.last: int | None = None

    def metrics(self, msg: dict[str, Any]) -> tuple[bool, bool]:
        """``(apply, gap)`` for a metrics message: apply its points unless it is
        a replay; ``gap`` when numbers before it were missed."""
        seq = msg.get("seq")
        if not (isinstance(seq, list) and len(seq) == 2 and all(type(s) is int for s in seq)):
            return True, False  # a server without sequence numbers
        first, last = seq
        if self.last is not None and last <= self.last:
            return False, False
        hole = self.last is not None and first > self.last + 1
        self.last = last
        return True, hole

    def gap(self, msg: dict[str, Any]) -> None:
        """Note a gap notice (the subscriber re-queries)."""
        seq = msg.get("seq")
        if type(seq) is int and (self.last is None or seq > self.last):
            self.last = seq
