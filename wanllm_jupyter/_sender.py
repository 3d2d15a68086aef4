"""The run's one thread (``wanllm-sender``): turns logged items into batches and
delivers them. A thread, not a task on the kernel's I/O loop, because delivery
blocks (HTTP requests, retry back-off, spool writes and replays): on the loop's
one blocking helper a request stuck on one run would hold back every run's
delivery and heartbeat; and waking a thread costs ``log()`` a third of what
waking the loop does (measured: docs/kernel-threads.md).

``Run.log`` appends ``(data, step, commit, time)`` to :attr:`Sender.buffer` (a
:class:`~._send_buffer.LogBuffer`: atomic append, no lock). The thread drains it into
:class:`~._columns.Columns`, cuts batches of at most ``max_batch`` points, and
delivers them, then any queued control operations (config/summary patches,
system metrics), in order (each an :data:`._ops.Op`); what is slow to gather
and not needed first (the run's package versions) is gathered by ``deferred``
:data:`DEFER_FOR` seconds after the start (or at close), when the first
points are out; not when the interpreter is already exiting (its first imports
could change the exit status of a ``KeyboardInterrupt``, see
:func:`._transport.exiting`). Batching is a
leading-edge throttle: the first ``log()`` into an empty buffer wakes the
thread, which sends at once when nothing was sent for ``interval`` seconds,
else at the end of that interval (at most one round of batches per
``interval``, so live charts see a point within milliseconds while a fast loop
still gets large batches). The thread also wakes every ``interval`` for
operations queued without a wake-up.

Delivery retries retryable failures with exponential backoff for up to
``retry_for`` seconds; after that (or with no transport at all: offline mode)
operations go to the run's :class:`~._spool.Spool` and every later operation
follows them there, so order is kept. While spooling, the server is probed
every few seconds; once it answers, the spool is replayed in order and live
delivery resumes. Idempotent batch ids make every replay safe. A spool left by
an earlier process of the same run is replayed before anything new is sent.

No operation blocks the ones behind it: one the server rejects for good (a 4xx
other than 408/429) is set aside beside the spool (:mod:`._rejected`) and
delivery goes on; one that keeps failing with 5xx while later ones get through
is set aside too (:mod:`._replay`). The report says what was set aside and why.

``close(timeout)`` bounds everything, replays included: while spooling it keeps
probing and replaying until the deadline; what has not reached the server by
then is in the spool when it returns (for the next connection or ``wanllm
sync``), and the report says how much.
"""

from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import repeat, starmap
from typing import Any

from . import _rejected
from ._columns import Columns, WanllmWarning
from ._ops import Media, Metrics, Op
from ._replay import Replayer
from ._send_buffer import BUFFER_POINTS, LogBuffer
from ._send_report import SendReport
from ._spool import Spool
from ._transport import Transport, exiting, is_rejection, is_retryable, is_server_fault

FINISH_PROBE_EVERY = 0.5  # seconds between probes while close() waits for the server
DEFER_FOR = 0.5  # seconds before the deferred operations are gathered
SPILL_AFTER = 1.0  # seconds a failing server may hold log() before data goes to the spool


class Sender:
    """Batches and delivers one run's operations on a daemon thread."""

    def __init__(
        self,
        columns: Columns,
        spool: Spool,
        transport: Transport | None,
        *,
        max_batch: int = 1000,
        interval: float = 0.1,
        retry_for: float = 10.0,
        probe_every: float = 2.0,
        periodic: Callable[[], list[Op]] | None = None,
        periodic_every: float = 10.0,
        first: list[Op] | None = None,
        deferred: Callable[[], list[Op]] | None = None,
        buffer_points: int = BUFFER_POINTS,
    ) -> None:
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wanllm-sender", daemon=True)
        self.buffer_points = buffer_points
        # the item limit follows the points per log() call seen (up to 100 until then)
        self.buffer = LogBuffer(self._wake.set, max(1, buffer_points // 100), self._thread.is_alive)
        self.ops: deque[Op] = deque()
        self._first = list(first or [])  # delivered before anything else (the run's create)
        self._deferred = deferred  # called once the first points went out (slow metadata)
        self._deferred_at = math.inf  # set when the thread starts
        self.columns, self.spool, self.transport = columns, spool, transport
        self.max_batch, self.interval = max_batch, interval
        self.retry_for, self.probe_every = retry_for, probe_every
        self.periodic, self.periodic_every = periodic, periodic_every
        self.report = SendReport(
            spool_path=str(spool.path), rejected_path=str(spool.dir / _rejected.REJECTED)
        )
        self._replayer = Replayer(
            lambda op: self.transport.deliver(op),  # type: ignore[union-attr]
            spool.dir,
            on_sent=self._replayed,
            on_set_aside=self._replayed_set_aside,
        )
        self._lock = threading.Lock()  # drain/convert; never taken by log()
        self._stop = False
        self._spool_first = False
        self._deadline: float | None = None
        self._spooling = spool.has_pending()  # ops are in the spool and must go first
        self._next_probe = 0.0
        self._to_spool: list[Op] = []
        self._to_spool_points = 0
        self._in_flight = 0  # points cut into batches and not yet delivered or spooled
        self._media_kinds: dict[str, str] = {}  # media key -> its kind (one per key)

    def start(self) -> None:
        self._thread.start()

    @property
    def online(self) -> bool:
        """True while operations go straight to the server."""
        return self.transport is not None and not self._spooling

    def catch_up(self) -> None:
        """Convert everything logged so far (summary and step are then current).

        Safe against Ctrl-C: a KeyboardInterrupt arriving meanwhile is raised after."""
        with sigint_deferred(), self._lock:
            self._drain()

    def flush_soon(self) -> None:
        """Wake the thread now (it still sends at most once per ``interval``)."""
        self._wake.set()

    # ------------------------------------------------------------- loop
    def _wait(self, sent_at: float) -> None:
        """Until woken (or ``interval`` passed), then until ``interval`` after the
        last send: the leading-edge throttle."""
        if not self._wake.wait(self.interval):
            return
        while (
            not self._stop
            and not self.buffer.full()  # log() is held: no throttle
            and (pause := sent_at + self.interval - time.monotonic()) > 0
        ):
            self._wake.clear()
            self._wake.wait(pause)
        self._wake.clear()

    def _loop(self) -> None:
        self._deferred_at = time.monotonic() + DEFER_FOR
        for op in self._first:
            self._deliver(op)
        next_periodic = time.monotonic() + self.periodic_every
        sent_at = -math.inf  # the first point goes at once: the throttle starts with it
        while True:
            if not self._stop:
                self._wait(sent_at)
                if self.buffer or self.ops:
                    sent_at = time.monotonic()
            stopping = self._stop  # read after waking: close() wakes the thread
            try:
                if stopping and self._spool_first:
                    self._spooling = True  # all to disk first, then replayed as time allows
                if self._spooling and not stopping and time.monotonic() >= self._next_probe:
                    self._try_replay()
                if self.periodic is not None and (stopping or time.monotonic() >= next_periodic):
                    self.ops.extend(self.periodic())
                    next_periodic = time.monotonic() + self.periodic_every
                self._cycle()
                if self._deferred is not None and (
                    stopping or time.monotonic() >= self._deferred_at
                ):
                    self._queue_deferred(now=stopping)
                if stopping:
                    self._replay_until_deadline()
            except Exception as exc:  # never let the thread die: report and go on
                self.report.errors.append(repr(exc))
                warnings.warn(f"wanllm: sender error: {exc!r}", WanllmWarning, 1)
            if stopping:
                self._flush_spool()
                return

    def _queue_deferred(self, now: bool) -> None:
        """Queue the deferred operations ahead of those waiting (a finish() may already
        have queued the final patch); deliver them ``now`` when the thread is stopping."""
        deferred, self._deferred = self._deferred, None
        if deferred is None or exiting():
            return
        self.ops.extendleft(reversed(deferred()))
        if now:
            self._cycle()

    def _drain(self) -> None:
        buf = self.buffer
        n = len(buf)
        if n:  # popped in one C call: a log() from another thread is never lost
            items = list(starmap(buf.popleft, repeat((), n)))
            buf.drained()
            columns = self.columns
            before, media_before = len(columns), columns.media_bytes
            columns.add(items)
            per_item = max(1, (len(columns) - before) // n)
            media_per_item = max(1, (columns.media_bytes - media_before) // n)
            buf.resize(self.buffer_points, per_item, media_per_item)

    def _room(self) -> bool:
        """True while the points converted or in flight are within the budget."""
        return len(self.columns) + self._in_flight < self.buffer_points

    def _cycle(self) -> None:
        while True:
            with self._lock:
                self._drain()
                batches = list(self.columns.batches(self.max_batch))
                media = self.columns.take_media()
            if not batches and not media:
                break
            self._in_flight = sum(n for _, n in batches)
            for batch, n in batches:
                self._deliver(Metrics(batch))
                self._in_flight -= n
                if self.buffer.full() and self._room():  # let a held log() go on
                    with self._lock:
                        self._drain()
            if media:  # encoded here, outside the lock (wl.Image etc. imported the module)
                from ._media_batch import media_batches

                c = self.columns
                for media_batch in media_batches(c.run_id, media, c.warn, self._media_kinds):
                    self._deliver(Media(media_batch))
        while self.ops:
            self._deliver(self.ops.popleft())
        self._flush_spool()

    # ------------------------------------------------------------- delivery
    def _past_deadline(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _deliver(self, op: Op) -> None:
        if not self.online or self._past_deadline():
            self._queue_spool(op)
            return
        started, delay = time.monotonic(), 0.1
        while True:
            try:
                result = self.transport.deliver(op)  # type: ignore[union-attr]
            except Exception as exc:
                if is_rejection(exc):
                    self._set_aside(op, exc)
                    return
                now = time.monotonic()
                # not the server's answer: keep the op on disk
                local = not (is_retryable(exc) or is_server_fault(exc))
                if local:
                    self._failed_locally(op.kind, exc)
                # a held log() waits at most SPILL_AFTER for a failing server: then to disk
                patience = SPILL_AFTER if self.buffer.full() else self.retry_for
                give_up = local or now - started >= patience or self._past_deadline()
                if give_up:
                    self._spooling = True
                    self._next_probe = now + self.probe_every
                    self._queue_spool(op)
                    return
                wait = getattr(exc, "retry_after", None) or delay
                if self._deadline is not None:
                    wait = min(wait, max(0.0, self._deadline - now))
                time.sleep(min(wait, 5.0))
                delay = min(delay * 2, 2.0)
                continue
            self._count_sent(op.points, result)
            return

    def _count_sent(self, points: int, result: Any) -> None:
        self.report.sent_points += points
        if isinstance(result, dict):
            self.report.duplicate_batches += bool(result.get("duplicate"))
            self.report.sent_media += result.get("accepted", 0)  # a MediaWriteResult

    def _failed_locally(self, kind: str, exc: Exception) -> None:
        self.report.errors.append(f"{kind}: {exc!r}")
        warnings.warn(
            f"wanllm: sending a {kind} operation failed here ({exc!r}); it is kept in the spool",
            WanllmWarning,
            1,
        )

    def _set_aside(self, op: Op, exc: Exception) -> None:
        status, message = _rejected.reason_of(exc)
        self.spool.lock()  # `wanllm sync --retry-rejected` must not rewrite the file meanwhile
        _rejected.append(self.spool.dir, op, status, message)
        self._note_set_aside(op, status, message)

    def _note_set_aside(self, op: Op, status: int | None, message: str) -> None:
        report = self.report
        report.set_aside_ops += 1
        report.set_aside_points += op.points
        report.set_aside_first = report.set_aside_first or message
        warnings.warn(
            f"wanllm: the server rejected a {op.kind} operation ({message}); it is set aside in "
            f"{report.rejected_path} and later operations go on "
            "(`wanllm sync --retry-rejected` sends it again)",
            WanllmWarning,
            1,
        )

    def _queue_spool(self, op: Op) -> None:
        self._to_spool.append(op)
        self._to_spool_points += op.points

    def _flush_spool(self) -> None:
        if self._to_spool:
            self.spool.append(self._to_spool)
            self.report.spooled_ops += len(self._to_spool)
            self.report.spooled_points += self._to_spool_points
            self._to_spool, self._to_spool_points = [], 0

    def _left_spool(self, points: int) -> None:
        # ops of an earlier process were not counted in, hence the floor at 0
        self.report.spooled_ops = max(0, self.report.spooled_ops - 1)
        self.report.spooled_points = max(0, self.report.spooled_points - points)

    def _replayed(self, op: Op, result: Any) -> None:
        self._count_sent(op.points, result)
        self._left_spool(op.points)

    def _replayed_set_aside(self, op: Op, status: int | None, message: str) -> None:
        self._note_set_aside(op, status, message)
        self._left_spool(op.points)

    def _try_replay(self) -> bool:
        """Replay the spool now; False when trying again cannot help (a local failure)."""
        if self.transport is None:
            return False
        self._flush_spool()
        try:
            empty = self._replayer.replay(self.spool, stop=self._past_deadline)
        except Exception as exc:
            self._next_probe = time.monotonic() + self.probe_every
            if is_retryable(exc) or is_server_fault(exc):
                return True
            self._failed_locally("replay", exc)
            return False
        self._spooling = not empty
        return True

    def _replay_until_deadline(self) -> None:
        """At close, while spooling: probe and replay until the spool is delivered or
        the deadline passes (the server may come back meanwhile)."""
        while self._spooling and self._try_replay() and self._spooling:
            remaining = (self._deadline or 0.0) - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(self.probe_every, FINISH_PROBE_EVERY, remaining))

    # ------------------------------------------------------------- stop
    def close(self, timeout: float, spool_first: bool = False) -> SendReport:
        """Deliver everything (spooling what cannot reach the server within
        ``timeout`` seconds), stop the thread, and report.

        Returns within about ``timeout`` plus one request's timeout (at most
        ``timeout / 2``, at least 0.5 s: a request in flight at the deadline).
        ``spool_first``: write everything still pending to the spool before sending
        it, for when the process may be killed at the deadline (kernel shutdown)."""
        self._deadline = time.monotonic() + timeout
        self._spool_first = spool_first
        grace = 1.0
        if self.transport is not None and hasattr(self.transport, "timeout"):
            request_timeout = max(0.5, min(self.transport.timeout, timeout / 2))
            self.transport.timeout = request_timeout
            grace += request_timeout
        self._stop = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout + grace)
        if self._thread.is_alive():
            self.report.unsent_items = len(self.buffer)
            self.report.unsent_points = len(self.columns) + self._in_flight
        else:
            self.spool.close()
        return self.report


@contextmanager
def sigint_deferred() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) in the main thread until the block ends, so a
    KeyboardInterrupt cannot stop it half-way; the interrupt is delivered right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed by C code: it could not be restored
        yield
        return
    caught: list[Any] = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            if callable(previous):
                previous(signal.SIGINT, caught[0])
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signal.SIGINT)
