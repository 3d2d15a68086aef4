"""One live subscriber: a metric-name filter and a bounded message buffer.

The hub offers encoded messages without ever waiting; the subscriber's owner
either awaits :meth:`Subscriber.get`, or sets ``on_ready`` (called after each
offer and on close) and takes messages with :meth:`Subscriber.pop` as fast as
it can write them (a WebSocket). When the buffer would exceed its
bounds the backlog is dropped and replaced by one ``gap`` message, so a slow
reader costs bounded memory and never slows the hub or other subscribers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from .live_wire import gap_message

DEFAULT_MAX_MESSAGES = 64  # ~6 s of 100 ms ticks
DEFAULT_MAX_BYTES = 8 * 1024 * 1024


class SubscriberClosed(Exception):
    """The subscriber was unsubscribed; no more messages will come."""


class Subscriber:
    """Receives the live messages of one run (or of all runs' state, when
    ``run_id`` is None) through a bounded buffer."""

    def __init__(
        self,
        run_id: str | None,
        names: set[str] | None,
        *,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.run_id = run_id
        self.names = names  # None = every metric
        self.excluded: set[str] = set()  # only used while names is None
        self.filter_key = self._filter_key()
        self._chosen = False  # until the first select/deselect, names is a default
        self.gaps = 0  # gap notices issued
        self.on_ready: Callable[[], None] | None = None
        self._max_messages, self._max_bytes = max_messages, max_bytes
        self._queue: deque[str] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._closed = False

    # ---------------------------------------------------------------- filter
    def wants(self, name: str) -> bool:
        if self.names is None:
            return name not in self.excluded
        return name in self.names

    def _filter_key(self) -> tuple[frozenset[str] | None, frozenset[str]]:
        """Equal for subscribers that select the same metric names (kept in
        ``filter_key``, updated by select/deselect: the hub reads it every tick)."""
        return (None if self.names is None else frozenset(self.names), frozenset(self.excluded))

    def select(self, names: Iterable[str] | None) -> None:
        """Add metric names; None or empty selects every metric. The first
        call replaces the default selection given at creation."""
        chosen = set(names or ())
        if not self._chosen:
            self._chosen = True
            self.names, self.excluded = set(), set()
        if not chosen:
            self.names, self.excluded = None, set()
        elif self.names is None:
            self.excluded -= chosen
        else:
            self.names |= chosen
        self.filter_key = self._filter_key()

    def deselect(self, names: Iterable[str] | None) -> None:
        """Remove metric names; None or empty removes every metric."""
        dropped = set(names or ())
        self._chosen = True
        if not dropped:
            self.names, self.excluded = set(), set()
        elif self.names is None:
            self.excluded |= dropped
        else:
            self.names -= dropped
        self.filter_key = self._filter_key()

    # ---------------------------------------------------------------- buffer
    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, message: str) -> None:
        """Queue a message without waiting; on overflow drop the backlog and
        queue a gap notice instead."""
        if self._closed:
            return
        if len(self._queue) >= self._max_messages or self._bytes + len(message) > self._max_bytes:
            dropped = len(self._queue)
            self._queue.clear()
            self.gaps += 1
            notice = gap_message(self.run_id, f"subscriber too slow: {dropped} updates dropped")
            self._queue.append(notice)
            self._bytes = len(notice)
            if len(message) + self._bytes > self._max_bytes:
                self._notify()
                return
        self._queue.append(message)
        self._bytes += len(message)
        self._notify()

    def _notify(self) -> None:
        self._ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def gap(self, reason: str) -> None:
        """Tell the subscriber that updates may have been missed."""
        self.offer(gap_message(self.run_id, reason))

    async def get(self) -> str:
        """The next message; raises SubscriberClosed once closed."""
        while (message := self.pop()) is None:
            if self._closed:
                raise SubscriberClosed
            self._ready.clear()
            await self._ready.wait()
        return message

    def pop(self) -> str | None:
        """The next message, or None when there is none (yet)."""
        if not self._queue:
            return None
        message = self._queue.popleft()
        self._bytes -= len(message)
        return message

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._closed = True
        self._queue.clear()
        self._bytes = 0
        self._notify()
