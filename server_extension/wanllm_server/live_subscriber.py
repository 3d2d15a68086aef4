"""One live subscriber: a metric-name filter and a bounded message buffer.

The hub offers encoded messages without ever waiting; the subscriber's owner
either awaits :meth:`Subscriber.get`, or sets ``on_ready`` (called after each
offer and on close) and takes messages with :meth:`Subscriber.pop` as fast as
it can write them (a WebSocket). When the buffer would exceed its
bounds the backlog is dropped and replaced by one ``gap`` message, so a slow
reader costs bounded memory and never slows the hub or other subscribers.

All subscribers of a hub share one :class:`Budget`: the bytes their queues
and unfinished socket writes hold (each distinct message or frame counted
once, however many subscribers hold it). Past the budget the hub evicts the
slowest subscribers (:meth:`Subscriber.evict`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable

from .live_wire import gap_message

DEFAULT_MAX_MESSAGES = 64  # ~6 s of 100 ms ticks
DEFAULT_MAX_BYTES = 8 * 1024 * 1024
MAX_SUBSCRIBED_NAMES = 1000  # metric names one subscriber may select (or exclude)


class SubscriberClosed(Exception):
    """The subscriber was unsubscribed; no more messages will come."""


class Budget:
    """Bytes held for subscribers, each distinct object counted once."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._held: dict[int, tuple[object, int, int]] = {}  # id -> (object, bytes, holders)

    def hold(self, obj: str | bytes) -> None:
        key = id(obj)
        entry = self._held.get(key)
        if entry is None:
            self._held[key] = (obj, len(obj), 1)
            self.used += len(obj)
        else:
            self._held[key] = (obj, entry[1], entry[2] + 1)

    def release(self, obj: str | bytes) -> None:
        key = id(obj)
        entry = self._held.get(key)
        if entry is None:
            return
        if entry[2] == 1:
            del self._held[key]
            self.used -= entry[1]
        else:
            self._held[key] = (obj, entry[1], entry[2] - 1)

    @property
    def over(self) -> bool:
        return self.used > self.limit


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
        budget: Budget | None = None,
    ) -> None:
        self.run_id = run_id
        self.names = names  # None = every metric
        self.excluded: set[str] = set()  # only used while names is None
        self.filter_key = self._filter_key()
        self._chosen = False  # until the first select/deselect, names is a default
        self.gaps = 0  # gap notices issued
        self.seq: int | None = None  # highest live sequence number offered (docs/api.md)
        self.evicted: str | None = None  # why the hub evicted this subscriber
        self.on_ready: Callable[[], None] | None = None
        self._max_messages, self._max_bytes = max_messages, max_bytes
        self._budget = budget if budget is not None else Budget(1 << 62)
        self._queue: deque[str] = deque()
        self._bytes = 0
        self._inflight: bytes | None = None  # a frame the socket is still writing
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
        call replaces the default selection given at creation. ValueError
        (nothing changed) past MAX_SUBSCRIBED_NAMES names."""
        chosen = set(names or ())
        new_names, new_excluded = (
            (set(), set()) if not self._chosen else (self.names, self.excluded)
        )
        if not chosen:
            new_names, new_excluded = None, set()
        elif new_names is None:
            new_excluded = new_excluded - chosen
        else:
            new_names = new_names | chosen
        self._apply(new_names, new_excluded)

    def deselect(self, names: Iterable[str] | None) -> None:
        """Remove metric names; None or empty removes every metric. ValueError
        (nothing changed) past MAX_SUBSCRIBED_NAMES excluded names."""
        dropped = set(names or ())
        new_names, new_excluded = self.names, self.excluded
        if not dropped:
            new_names, new_excluded = set(), set()
        elif new_names is None:
            new_excluded = new_excluded | dropped
        else:
            new_names = new_names - dropped
        self._apply(new_names, new_excluded)

    def _apply(self, names: set[str] | None, excluded: set[str]) -> None:
        count = len(excluded) if names is None else len(names)
        if count > MAX_SUBSCRIBED_NAMES:
            raise ValueError(
                f"a subscription may name at most {MAX_SUBSCRIBED_NAMES} metrics "
                f"({count} requested); subscribe to all metrics with an empty list instead"
            )
        self._chosen = True
        self.names, self.excluded = names, excluded
        self.filter_key = self._filter_key()

    # ---------------------------------------------------------------- buffer
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def buffered(self) -> int:
        """Bytes this subscriber holds (its queue and unfinished write)."""
        return self._bytes + (len(self._inflight) if self._inflight is not None else 0)

    def offer(self, message: str, seq: int | None = None) -> None:
        """Queue a message without waiting; on overflow drop the backlog and
        queue a gap notice instead. ``seq``: the highest live sequence number
        the message covers."""
        if self._closed:
            return
        if len(self._queue) >= self._max_messages or self._bytes + len(message) > self._max_bytes:
            dropped = len(self._queue)
            self._clear()
            self.gaps += 1
            notice = gap_message(
                self.run_id, f"subscriber too slow: {dropped} updates dropped", self.seq
            )
            self._push(notice)
            if len(message) + self._bytes > self._max_bytes:
                self._notify()
                return
        self._push(message)
        if seq is not None:
            self.seq = seq
        self._notify()

    def _push(self, message: str) -> None:
        self._queue.append(message)
        self._bytes += len(message)
        self._budget.hold(message)

    def _clear(self) -> None:
        for message in self._queue:
            self._budget.release(message)
        self._queue.clear()
        self._bytes = 0

    def _notify(self) -> None:
        self._ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def gap(self, reason: str) -> None:
        """Tell the subscriber that updates may have been missed."""
        self.offer(gap_message(self.run_id, reason))

    def evict(self, reason: str) -> None:
        """Drop the backlog and leave only a gap notice: the owner sends it and
        closes (the hub unsubscribes the subscriber right after)."""
        if self._closed or self.evicted is not None:
            return
        self._clear()
        self.gaps += 1
        self.evicted = reason
        self._push(gap_message(self.run_id, reason, self.seq))
        self._notify()

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
        self._budget.release(message)
        return message

    def pending(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------- writes
    def writing(self, frame: bytes | None) -> None:
        """The frame the owner is still writing (None once written): counted
        in the budget until then."""
        if self._inflight is not None:
            self._budget.release(self._inflight)
        self._inflight = frame
        if frame is not None and not self._closed:
            self._budget.hold(frame)
        elif frame is not None:
            self._inflight = None

    def close(self) -> None:
        """No more messages; an eviction's gap notice stays to be taken."""
        self._closed = True
        if self.evicted is None:
            self._clear()
        self.writing(None)
        self._notify()
