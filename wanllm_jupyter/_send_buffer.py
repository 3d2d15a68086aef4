"""``log()``'s buffer (docs/client-memory.md): a deque the sender drains, which
wakes the sender when an append makes it non-empty and holds ``log()`` back
while it is full (back-pressure)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from ._columns import Item

BUFFER_POINTS = 30_000  # default budget of points logged and not yet delivered
MEDIA_BUFFER_BYTES = 64 * 1024 * 1024  # budget of media logged and not yet encoded
HOLD_CHECK = 0.05  # seconds between checks of a log() held by a full buffer
HOLD_MAX = 2.0  # seconds a log() waits for a sender that does not drain


class LogBuffer(deque[Item]):
    """Wakes the sender when an append makes it non-empty, and holds the caller back
    while it holds ``limit`` items (back-pressure) until the sender has drained it,
    as long as the sender runs. A sender that has not drained for :data:`HOLD_MAX`
    seconds (a request hanging on a stuck server) is not waited for again until it
    drains: the buffer then grows past ``limit``.

    ``append`` is the only Python-level method (about 0.1 µs over the C one); the
    wake-up (an Event set, about 1 µs) happens once per drained buffer."""

    __slots__ = ("_drained", "_running", "_stuck", "_wake", "limit")

    def __init__(self, wake: Callable[[], None], limit: int, running: Callable[[], bool]) -> None:
        super().__init__()
        self._wake = wake
        self.limit = limit
        self._drained = threading.Event()
        self._running = running
        self._stuck = False

    def append(self, item: Item) -> None:
        _append(self, item)
        n = len(self)
        if n == 1:  # was empty (a drain racing in at worst costs one wait)
            self._wake()
        elif n >= self.limit:
            self._hold()

    def full(self) -> bool:
        return len(self) >= self.limit

    def _hold(self) -> None:
        """Wait (the item is already in) until the sender drains the buffer."""
        give_up = time.monotonic() + HOLD_MAX
        while len(self) >= self.limit and not self._stuck and self._running():
            self._drained.clear()
            if len(self) < self.limit:
                return
            self._wake()
            self._drained.wait(HOLD_CHECK)
            self._stuck = time.monotonic() >= give_up

    def drained(self) -> None:
        """Called by the sender once it has taken the items: wake held callers."""
        self._stuck = False
        self._drained.set()

    def resize(self, budget_points: int, points_per_item: int, media_per_item: int) -> None:
        """Size the limit to the points and media bytes per item last seen, within
        ``budget_points`` points and :data:`MEDIA_BUFFER_BYTES`."""
        self.limit = max(
            1, min(budget_points // points_per_item, MEDIA_BUFFER_BYTES // media_per_item)
        )


_append = deque.append
